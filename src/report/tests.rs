//! Golden files for every format from a constructed ledger; totals in every
//! format equal the ledger's.

use super::*;
use crate::accounting::{Amounts, DayRow, HourRow};
use crate::config::{Config, EXAMPLE};

const DAY: i64 = 86_400;

/// Daily rows, hourly institute rows and (node, hour, covered) rows.
type Ledger = (Vec<DayRow>, Vec<HourRow>, Vec<(String, i64, f64)>);

fn ledger(period: &ReportPeriod) -> Ledger {
    let mut days = vec![];
    let mut hours = vec![];
    let mut cov = vec![];
    let accounts = [
        ("ibn-sina", "nlp-lab", "alice"),
        ("al-haytham", "vision-lab", "bob"),
        ("al-biruni", "climate", "carol"),
        ("unassigned", "", "zed"),
    ];
    let mut d = period.start_s;
    let mut k = 0u64;
    while d < period.end_s {
        for (n, (inst, acct, user)) in accounts.iter().enumerate() {
            let gpus = (n as f64 + 1.0) * 2.0 + (k % 3) as f64;
            let a = Amounts {
                capacity_s: gpus * 86400.0,
                allocated_s: if acct.is_empty() { 0.0 } else { gpus * 86400.0 },
                busy_s: if acct.is_empty() { 0.0 } else { gpus * 86400.0 * (0.3 + 0.1 * n as f64) },
                idle_allocated_s: if n == 2 { 4.0 * 3600.0 } else { 0.0 },
                unscheduled_s: if acct.is_empty() { gpus * 86400.0 } else { 0.0 },
                energy_j: gpus * 86400.0 * 400.0,
            };
            days.push(DayRow {
                day: d,
                institute: inst.to_string(),
                account: acct.to_string(),
                user: user.to_string(),
                job: if acct.is_empty() { String::new() } else { format!("{}", 1000 + k / 3 + 100 * n as u64) },
                amounts: a,
            });
            for h in 0..24 {
                let s = 1.0 / 24.0;
                hours.push(HourRow {
                    hour: d + h * 3600,
                    institute: inst.to_string(),
                    amounts: Amounts {
                        allocated_s: a.allocated_s * s,
                        unscheduled_s: a.unscheduled_s * s,
                        ..Default::default()
                    },
                });
            }
        }
        // Idle capacity.
        days.push(DayRow {
            day: d,
            institute: String::new(),
            account: String::new(),
            user: String::new(),
            job: String::new(),
            amounts: Amounts { capacity_s: 8.0 * 86400.0, energy_j: 8.0 * 86400.0 * 70.0, ..Default::default() },
        });
        for node in ["n1", "n2"] {
            for h in 0..24 {
                // n2 misses the afternoon of the 10th day.
                let missing = node == "n2" && k == 9 && (12..18).contains(&h);
                if !missing {
                    cov.push((node.to_string(), d + h * 3600, 3600.0));
                }
            }
        }
        d += DAY;
        k += 1;
    }
    (days, hours, cov)
}

fn report(period: &ReportPeriod, opts: &Options) -> (Report, Vec<DayRow>) {
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let (days, hours, cov) = ledger(period);
    let inp = Inputs {
        cluster_name: "jazari-test",
        institutes: &cfg.institutes,
        days: &days,
        hours: &hours,
        coverage: &CoverageInput::from_hours(&cov),
        now_s: period.end_s + DAY,
    };
    (build(&inp, period, opts, 1_790_000_000_000), days)
}

fn sum(rows: &[DayRow], f: impl Fn(&Amounts) -> f64) -> f64 {
    rows.iter().filter(|r| !r.institute.is_empty()).map(|r| f(&r.amounts)).sum::<f64>() / 3600.0
}

fn golden(name: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no golden file {}; run with UPDATE_GOLDEN=1", path.display()));
    assert!(want == text, "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it after review)");
}

#[test]
fn golden_files_for_every_format() {
    let p = ReportPeriod::named("2026-Q1").unwrap();
    let (r, _) = report(&p, &Options::default());
    for f in [Format::Csv, Format::Json, Format::Md, Format::Html] {
        let ext = format!("{f:?}").to_lowercase();
        golden(&format!("report-2026-Q1.{ext}"), &render(&r, f));
    }
    let p = ReportPeriod::dates("2026-02-01", "2026-02-14").unwrap();
    let (r, _) = report(&p, &Options { anonymise: true, salt: "test".into(), ..Default::default() });
    assert_eq!(r.breakdown_by, "week");
    golden("report-2026-02-01-14-anonymised.md", &render(&r, Format::Md));
}

#[test]
fn totals_in_every_format_equal_the_ledger() {
    let p = ReportPeriod::named("2026-Q1").unwrap();
    let (r, days) = report(&p, &Options::default());
    let allocated = sum(&days, |a| a.allocated_s);
    let utilised = sum(&days, |a| a.busy_s);
    let unscheduled = sum(&days, |a| a.unscheduled_s);
    assert!((r.total.allocated_gpu_hours - allocated).abs() < 1e-6);
    assert!((r.total.utilised_gpu_hours - utilised).abs() < 1e-6);
    assert!((r.total.unscheduled_gpu_hours - unscheduled).abs() < 1e-6);
    // Institutes add up to the total, and months add up to each institute.
    let inst: f64 = r.institutes.iter().map(|i| i.figures.allocated_gpu_hours).sum();
    assert!((inst - allocated).abs() < 1e-6);
    for i in &r.institutes {
        let months: f64 = i.breakdown.iter().map(|s| s.figures.allocated_gpu_hours).sum();
        assert!((months - i.figures.allocated_gpu_hours).abs() < 1e-6, "{}", i.id);
        assert_eq!(i.breakdown.len(), if i.id == "al-jazari" { 0 } else { 3 });
    }
    // JSON.
    let j: serde_json::Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
    assert!((j["total"]["allocated_gpu_hours"].as_f64().unwrap() - allocated).abs() < 1e-6);
    // CSV: the total row, and the institute rows.
    let csv = render(&r, Format::Csv);
    let col = |name: &str| super::csv::COLUMNS.iter().position(|c| *c == name).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let total = rows.iter().find(|r| r[0] == "total").unwrap();
    assert!((total[col("allocated_gpu_hours")].parse::<f64>().unwrap() - allocated).abs() < 1e-3);
    let inst_csv: f64 = rows
        .iter()
        .filter(|r| r[0] == "institute")
        .map(|r| r[col("allocated_gpu_hours")].parse::<f64>().unwrap())
        .sum();
    assert!((inst_csv - allocated).abs() < 1e-3);
    // Markdown and HTML show the same total, rounded to 0.1.
    let shown = super::md::h(allocated);
    assert!(render(&r, Format::Md).contains(&format!("**{shown}**")), "{shown}");
    assert!(render(&r, Format::Html).contains(&format!(r#"<td class="n">{shown}</td>"#)));
}

#[test]
fn sub_periods_add_up_to_the_whole() {
    let q = ReportPeriod::named("2026-Q1").unwrap();
    let (whole, _) = report(&q, &Options::default());
    let mut parts = 0.0;
    for m in ["2026-01", "2026-02", "2026-03"] {
        let p = ReportPeriod::named(m).unwrap();
        let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
        let (days, hours, cov) = ledger(&q);
        let inp = Inputs {
            cluster_name: "c",
            institutes: &cfg.institutes,
            days: &days,
            hours: &hours,
            coverage: &CoverageInput::from_hours(&cov),
            now_s: q.end_s,
        };
        parts += build(&inp, &p, &Options::default(), 0).total.allocated_gpu_hours;
    }
    assert!((parts - whole.total.allocated_gpu_hours).abs() < 1e-6);
}

#[test]
fn grants_are_pro_rated_and_gaps_listed() {
    let p = ReportPeriod::named("2026").unwrap();
    let (r, _) = report(&p, &Options::default());
    let ibn = r.institutes.iter().find(|i| i.id == "ibn-sina").unwrap();
    // 120,000 per quarter → 480,000 for the year.
    assert!((ibn.granted_gpu_hours.unwrap() - 480_000.0).abs() < 1e-6);
    let m = ReportPeriod::named("2026-02").unwrap();
    let (r2, _) = report(&m, &Options::default());
    let ibn2 = r2.institutes.iter().find(|i| i.id == "ibn-sina").unwrap();
    // February: 28 of Q1's 90 days.
    assert!((ibn2.granted_gpu_hours.unwrap() - 120_000.0 * 28.0 / 90.0).abs() < 1e-6);
    assert_eq!(r.institutes.iter().find(|i| i.id == "al-jazari").unwrap().granted_gpu_hours, None);
    let gaps = &r.cluster.coverage.gaps;
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].node, "n2");
    assert_eq!(gaps[0].missing_hours, 6.0);
    assert!(r.cluster.coverage.coverage_pct.unwrap() < 100.0);
    assert!(r.institutes.iter().any(|i| i.id == "unassigned"));
}

#[test]
fn anonymised_reports_hide_names_stably() {
    let p = ReportPeriod::named("2026-01").unwrap();
    let o = Options { anonymise: true, salt: "s".into(), ..Default::default() };
    let (a, _) = report(&p, &o);
    let (b, _) = report(&p, &o);
    let text = render(&a, Format::Json);
    assert!(!text.contains("alice") && !text.contains("\"bob\""));
    assert_eq!(text, render(&b, Format::Json), "same pseudonyms each time");
    assert_eq!(pseudonym("s", "alice"), pseudonym("s", "alice"));
    assert_ne!(pseudonym("s", "alice"), pseudonym("t", "alice"));
}

#[test]
fn bad_periods_are_refused() {
    assert!(ReportPeriod::dates("2026-03-01", "2026-02-01").unwrap_err().contains("inverted"));
    assert!(ReportPeriod::named("2026-Q7").is_err());
    assert_eq!(ReportPeriod::dates("2026-03-01", "2026-03-01").unwrap().days(), 1);
}
