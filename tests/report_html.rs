//! The HTML report opens in headless Chromium: a screenshot is taken and the
//! charts are in the rendered page.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if std::path::Path::new(c).exists() {
            return Some(c.into());
        }
    }
    common::skip("no chromium; install Debian's `chromium` to run the HTML report test (.ci/run does)");
    None
}

fn headless(bin: &PathBuf, dir: &std::path::Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()));
    c
}

#[test]
fn html_report_renders_in_chromium_with_its_charts() {
    let Some(bin) = chromium() else { return };
    let dir = std::env::temp_dir().join(format!("jazari-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report-2026-Q1.html");
    let url = format!("file://{}", html.display());
    let shot = dir.join("report.png");
    let out = headless(&bin, &dir)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1100,2400")
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 20_000, "screenshot too small to hold the report: {} bytes", png.len());
    // The DOM as Chromium parsed it: three charts with their bars and lines.
    let dom = headless(&bin, &dir).arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg").count(), 3, "charts in the page");
    assert!(dom.matches("<rect").count() > 10 && dom.contains("<polyline"));
    assert!(dom.contains("Ibn Sina Institute for Language AI"));
    let _ = std::fs::copy(&shot, std::env::temp_dir().join("jazari-report-screenshot.png"));
    std::fs::remove_dir_all(dir).unwrap();
}
