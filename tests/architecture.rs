//! The layout's rules, checked on the sources: every module of `src/` has a
//! layer and imports only from its own layer or below; no import cycle
//! between modules (top level, and one level down); no source file over 500
//! lines (tests and fixtures aside). Unit-test code may reach anywhere and is
//! left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first. A module may import from its layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["time", "format", "api", "tls"]),
    ("accounting", &["accounting"]),
    ("domain", &["quota", "scheduler"]),
    ("settings", &["config"]),
    ("reports", &["report"]),
    ("state", &["store", "auth", "live", "findings"]),
    ("collector", &["server"]),
    ("client", &["client", "sim"]),
    ("front", &["tui", "cli"]),
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under `src/` (`src/server/read.rs` → `server::read`).
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root().join("src")).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// Source without unit-test modules.
fn without_tests(src: &str) -> &str {
    match src.find("#[cfg(test)]\nmod tests {").or_else(|| src.find("#[cfg(test)]\npub(crate) mod tests {")) {
        Some(i) => &src[..i],
        None => src,
    }
}

/// Paths after `prefix::` at every occurrence, groups expanded: `crate::{a::b, c}` → [a, b], [c].
fn paths_after(src: &str, prefix: &str) -> Vec<Vec<String>> {
    fn ident(s: &[u8], mut i: usize) -> (String, usize) {
        let start = i;
        while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
            i += 1;
        }
        (String::from_utf8_lossy(&s[start..i]).into_owned(), i)
    }
    /// Parses `a::b::{c, d::e}` from `i`, appending complete paths (with `base`) to `out`.
    fn path(s: &[u8], mut i: usize, base: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let mut cur = base;
        loop {
            while i < s.len() && s[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < s.len() && s[i] == b'{' {
                i += 1;
                loop {
                    i = path(s, i, cur.clone(), out);
                    while i < s.len() && s[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    match s.get(i) {
                        Some(b',') => i += 1,
                        Some(b'}') => return i + 1,
                        _ => return i,
                    }
                    while i < s.len() && s[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    if s.get(i) == Some(&b'}') {
                        return i + 1;
                    }
                }
            }
            let (id, j) = ident(s, i);
            if id.is_empty() {
                out.push(cur);
                return j;
            }
            cur.push(id);
            i = j;
            if s.get(i..i + 2) == Some(b"::") {
                i += 2;
            } else {
                out.push(cur);
                return i;
            }
        }
    }
    let s = src.as_bytes();
    let pat = format!("{prefix}::");
    let mut out = vec![];
    let mut from = 0;
    while let Some(k) = src[from..].find(&pat) {
        let at = from + k;
        let word_start = at == 0 || !(s[at - 1].is_ascii_alphanumeric() || s[at - 1] == b'_');
        from = at + pat.len();
        if word_start {
            path(s, from, vec![], &mut out);
        }
    }
    out
}

struct Sources {
    /// (file, module path, source without unit tests).
    files: Vec<(PathBuf, Vec<String>, String)>,
}

/// The crate's sources; `tests.rs` files (a module's unit tests in their own file) only with `with_tests`.
fn sources_with(with_tests: bool) -> Sources {
    let mut files = vec![];
    rust_files(&root().join("src"), &mut files);
    files.sort();
    Sources {
        files: files
            .into_iter()
            .filter(|f| with_tests || f.file_name().is_some_and(|n| n != "tests.rs"))
            .map(|f| {
                let text = std::fs::read_to_string(&f).unwrap();
                let m = module_path(&f);
                (f, m, without_tests(&text).to_string())
            })
            .collect(),
    }
}

fn sources() -> Sources {
    sources_with(false)
}

/// Edges between modules cut at `depth` components (1: top level, 2: one level down).
fn edges(s: &Sources, depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let cut = |p: &[String]| p.iter().take(depth).cloned().collect::<Vec<_>>().join("::");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, m, text) in &s.files {
        if m.is_empty() {
            continue; // lib.rs and main.rs declare and start everything
        }
        let me = cut(m);
        let mut targets: Vec<Vec<String>> = paths_after(text, "crate");
        for p in paths_after(text, "super") {
            // `super::` from a file is relative to its parent module (a mod.rs file is its own module).
            let parent = &m[..m.len().saturating_sub(1)];
            targets.push(parent.iter().cloned().chain(p).collect());
        }
        for t in targets {
            let to = cut(&t);
            if !to.is_empty() && to != me && !me.starts_with(&format!("{to}::")) {
                g.entry(me.clone()).or_default().insert(to);
            }
        }
    }
    g
}

/// Tarjan's algorithm: strongly connected components with more than one module.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    #[derive(Default)]
    struct Walk {
        next: usize,
        /// Index and low link of each visited module.
        seen: BTreeMap<String, (usize, usize)>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        found: Vec<Vec<String>>,
    }
    fn visit(v: &str, g: &BTreeMap<String, BTreeSet<String>>, w: &mut Walk) {
        let i = w.next;
        w.next += 1;
        w.seen.insert(v.to_string(), (i, i));
        w.stack.push(v.to_string());
        w.on_stack.insert(v.to_string());
        for to in g.get(v).into_iter().flatten() {
            let low = if !w.seen.contains_key(to) {
                visit(to, g, w);
                Some(w.seen[to].1)
            } else if w.on_stack.contains(to) {
                Some(w.seen[to].0)
            } else {
                None
            };
            if let Some(low) = low {
                let e = w.seen.get_mut(v).unwrap();
                e.1 = e.1.min(low);
            }
        }
        if w.seen[v].0 == w.seen[v].1 {
            let mut c = vec![];
            loop {
                let m = w.stack.pop().unwrap();
                w.on_stack.remove(&m);
                let done = m == v;
                c.push(m);
                if done {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                w.found.push(c);
            }
        }
    }
    let mut w = Walk::default();
    let nodes: BTreeSet<&String> = g.keys().chain(g.values().flatten()).collect();
    for v in nodes {
        if !w.seen.contains_key(v) {
            visit(v, g, &mut w);
        }
    }
    w.found
}

#[test]
fn every_module_has_a_layer_and_imports_only_downwards() {
    let s = sources();
    let g = edges(&s, 1);
    let mut bad = vec![];
    for (_, m, _) in &s.files {
        if let Some(top) = m.first() {
            assert!(rank(top).is_some(), "module `{top}` has no layer in tests/architecture.rs: give it one");
        }
    }
    for (from, tos) in &g {
        for to in tos {
            let (a, b) = (rank(from).unwrap(), rank(to).unwrap_or_else(|| panic!("`{from}` imports unknown `{to}`")));
            if b > a {
                bad.push(format!("{from} ({}) -> {to} ({})", LAYERS[a].0, LAYERS[b].0));
            }
        }
    }
    assert!(bad.is_empty(), "imports that point up a layer:\n{}", bad.join("\n"));
}

#[test]
fn no_import_cycles_between_modules() {
    // Unit tests in their own files count too: a test reaching across makes a cycle as well.
    let s = sources_with(true);
    for depth in [1, 2] {
        let c = cycles(&edges(&s, depth));
        assert!(c.is_empty(), "import cycles at depth {depth}: {c:?}");
    }
}

#[test]
fn the_checker_sees_a_cycle_and_an_upward_import() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    let p = paths_after("use crate::{api::{quota::X, usage}, time};\nlet x = crate::server::App::open();", "crate");
    assert!(p.contains(&vec!["api".into(), "quota".into(), "X".into()]), "{p:?}");
    assert!(p.contains(&vec!["api".into(), "usage".into()]), "{p:?}");
    assert!(p.contains(&vec!["time".into()]), "{p:?}");
    assert!(p.contains(&vec!["server".into(), "App".into(), "open".into()]), "{p:?}");
    assert!(rank("server") > rank("store"));
}

#[test]
fn no_source_file_over_500_lines() {
    let mut files = vec![];
    for dir in ["src", "agent/src", "wire/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let big: Vec<String> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 500).then(|| format!("{} ({n})", f.display()))
        })
        .collect();
    assert!(big.is_empty(), "source files over 500 lines: {big:?}");
}
