//! Numbers and words for people: the one place figures are formatted for
//! the terminal, the quota table and the reports.

/// `v` with `decimals` decimals and thousands separators: 1234567.8 → "1,234,568" (0) or "1,234,567.8" (1).
pub fn grouped(v: f64, decimals: usize) -> String {
    let s = if decimals == 0 { format!("{}", v.abs().round() as u64) } else { format!("{:.decimals$}", v.abs()) };
    let (int, frac) = s.split_once('.').map(|(a, b)| (a, Some(b))).unwrap_or((&s, None));
    let mut out = String::with_capacity(s.len() + s.len() / 3 + 1);
    if v < 0.0 {
        out.push('-');
    }
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// 1234567.8 → "1,234,568".
pub fn thousands(v: f64) -> String {
    grouped(v, 0)
}

/// A configured figure with the precision it was given (up to 3 decimals):
/// 0.5 → "0.5", 120000 → "120,000", 2.25 → "2.25".
pub fn exact(v: f64) -> String {
    let s = grouped(v, 3);
    match s.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
        }
        None => s,
    }
}

/// GPU-hours for a table: one decimal under 10, else whole with separators.
pub fn hours(v: f64) -> String {
    if v.abs() < 10.0 { format!("{v:.1}") } else { thousands(v) }
}

/// `s` broken at spaces into lines of at most `w` characters (a word longer
/// than that keeps its own line), continuation lines starting with `indent`.
pub fn wrap(s: &str, w: usize, indent: &str) -> String {
    let mut out = String::new();
    let (mut len, mut fresh) = (0, true);
    for word in s.split_whitespace() {
        let n = word.chars().count();
        if !fresh && len + 1 + n > w {
            out.push('\n');
            out.push_str(indent);
            (len, fresh) = (indent.chars().count(), true);
        }
        if !fresh {
            out.push(' ');
            len += 1;
        }
        out.push_str(word);
        (len, fresh) = (len + n, false);
    }
    out
}

/// Shortens `s` to `w` characters, ending with '…' when cut.
pub fn fit(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A span of milliseconds as "42 s", "17 min", "5 h" or "3 d".
pub fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86400),
    }
}

/// A window of time for people: "7 days", "2.5 days", "5 h", "40 min".
pub fn span(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s >= 86_400.0 {
        let d = s / 86_400.0;
        if (d - d.round()).abs() < 0.05 { format!("{:.0} days", d.round()) } else { format!("{d:.1} days") }
    } else if s >= 3600.0 {
        let h = s / 3600.0;
        if (h - h.round()).abs() < 0.05 { format!("{:.0} h", h.round()) } else { format!("{h:.1} h") }
    } else {
        format!("{:.0} min", s / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let s = "jazari: warning: token file /tmp/a/admin.tok has mode 644: others on this machine can read the secret";
        let w = wrap(s, 40, "  ");
        assert!(w.lines().all(|l| l.chars().count() <= 40), "{w}");
        assert!(w.lines().skip(1).all(|l| l.starts_with("  ") && !l.starts_with("   ")), "{w}");
        assert_eq!(w.split_whitespace().collect::<Vec<_>>(), s.split_whitespace().collect::<Vec<_>>());
        assert_eq!(wrap("short", 40, "  "), "short");
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.6), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-4321.0), "-4,321");
        assert_eq!(grouped(1234567.84, 1), "1,234,567.8");
        assert_eq!(grouped(-1234.5, 1), "-1,234.5");
        assert_eq!(exact(0.5), "0.5");
        assert_eq!(exact(120_000.0), "120,000");
        assert_eq!(exact(2.25), "2.25");
        assert_eq!(exact(1.0 / 3.0), "0.333");
        assert_eq!(hours(9.94), "9.9");
        assert_eq!(hours(12.4), "12");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(ago(61_000), "61 s");
        assert_eq!(span(7.0 * 86_400.0), "7 days");
        assert_eq!(span(2.5 * 86_400.0), "2.5 days");
        assert_eq!(span(5.0 * 3600.0), "5 h");
        assert_eq!(span(1500.0), "25 min");
    }
}
