//! Golden files for every format from a constructed ledger; totals in every
//! format equal the ledger's.

use super::*;
use crate::accounting::{Amounts, DayRow, HourRow};
use crate::config::{Config, EXAMPLE};
use crate::report::coverage::CoveredHour;

const DAY: i64 = 86_400;

/// Daily rows, hourly institute rows and (node, hour, covered) rows.
type Ledger = (Vec<DayRow>, Vec<HourRow>, Vec<CoveredHour>);

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
                // The first institute's GPUs measure GPM activity; the others' do not.
                gpm_s: if n == 0 && !acct.is_empty() { gpus * 86400.0 } else { 0.0 },
                sm_active_s: if n == 0 && !acct.is_empty() { gpus * 86400.0 * 0.18 } else { 0.0 },
                tensor_active_s: 0.0,
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
                    peak_held_gpus: (a.allocated_s + a.unscheduled_s) / 86400.0,
                    peak_busy_gpus: a.busy_s / 86400.0,
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
                    let at = (d + h * 3600) * 1000;
                    cov.push(CoveredHour {
                        node: node.to_string(),
                        hour: d + h * 3600,
                        covered_s: 3600.0,
                        reports: 360,
                        first_ms: at,
                        last_ms: at + 3_600_000,
                    });
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
        nodes: None,
        now_ms: (period.end_s + DAY) * 1000,
        findings: &[],
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
    let (r, _) = report(&p, &Options { anonymise: true, key: "test".into(), ..Default::default() });
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
    let shown = super::text::h(allocated);
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
            nodes: None,
            now_ms: q.end_s * 1000,
            findings: &[],
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
    let o = Options { anonymise: true, key: "s".into(), ..Default::default() };
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

#[test]
fn a_pro_rated_grant_says_so_in_words() {
    let m = ReportPeriod::named("2026-02").unwrap();
    let (r, _) = report(&m, &Options::default());
    let md = render(&r, Format::Md);
    assert!(
        md.contains(
            "Grant: 120,000.0 GPU-h per quarter; 37,333.3 of them fall in this period of 28 days (pro-rated by time)."
        ),
        "{md}"
    );
    let html = render(&r, Format::Html);
    assert!(html.contains("120,000.0 GPU-h per quarter; 37,333.3 of them fall in this period of 28 days"));
    // A report over exactly the quota's period: no pro-rating to explain.
    let q = ReportPeriod::named("2026-Q1").unwrap();
    let (r, _) = report(&q, &Options::default());
    let ibn = r.institutes.iter().find(|i| i.id == "ibn-sina").unwrap();
    assert_eq!(ibn.grant.as_ref().map(|g| g.prorated), Some(false));
    assert!(render(&r, Format::Md).contains("Grant: 120,000.0 GPU-h per quarter.\n"));
}

#[test]
fn lists_cut_to_n_rows_say_n_of_m() {
    let q = ReportPeriod::named("2026-Q1").unwrap();
    let (r, _) = report(&q, &Options::default());
    let ibn = r.institutes.iter().find(|i| i.id == "ibn-sina").unwrap();
    assert_eq!((ibn.top_jobs.len(), ibn.jobs), (10, 30));
    let md = render(&r, Format::Md);
    assert!(md.contains("The 10 of 30 jobs with the most GPU-hours:"), "{md}");
    assert!(render(&r, Format::Html).contains("the 10 of 30 jobs with the most GPU-hours"));
    // Many gaps: the text says how many it shows.
    let mut many = r.clone();
    many.cluster.coverage.gaps = (0..64)
        .map(|k| Gap { node: format!("n{k}"), from_s: q.start_s, to_s: q.start_s + 3600, missing_hours: 1.0 })
        .collect();
    let md = render(&many, Format::Md);
    assert!(md.contains("64 gaps; the 20 largest:") && md.contains("20 of 64 gaps shown"), "{md}");
    assert!(render(&many, Format::Html).contains("64 gaps, the 20 largest shown"));
}

#[test]
fn every_user_and_job_row_has_all_its_amounts() {
    // carol's job (al-biruni) holds GPUs idle 4 h a day: her rows show it, with energy.
    let q = ReportPeriod::named("2026-01").unwrap();
    let (r, days) = report(&q, &Options::default());
    let biruni = r.institutes.iter().find(|i| i.id == "al-biruni").unwrap();
    let carol = biruni.top_users.iter().find(|u| u.user == "carol").unwrap();
    let idle = sum(&days.iter().filter(|d| d.user == "carol").cloned().collect::<Vec<_>>(), |a| a.idle_allocated_s);
    assert!(idle > 0.0);
    assert!((carol.figures.idle_allocated_gpu_hours - idle).abs() < 1e-9);
    assert!(carol.figures.energy_kwh > 0.0);
    let csv = render(&r, Format::Csv);
    let col = |name: &str| super::csv::COLUMNS.iter().position(|c| *c == name).unwrap();
    let row: Vec<&str> =
        csv.lines().map(|l| l.split(',').collect::<Vec<_>>()).find(|c| c[0] == "user" && c[2] == "carol").unwrap();
    assert!((row[col("idle_allocated_gpu_hours")].parse::<f64>().unwrap() - idle).abs() < 1e-3);
    assert!(row[col("energy_kwh")].parse::<f64>().unwrap() > 0.0);
    let job_rows = csv.lines().filter(|l| l.starts_with("job,al-biruni,")).count();
    assert_eq!(job_rows, biruni.top_jobs.len());
    for j in &biruni.top_jobs {
        assert!(j.figures.idle_allocated_gpu_hours > 0.0 && j.figures.energy_kwh > 0.0, "{j:?}");
    }
}

#[test]
fn a_chart_with_one_day_of_data_still_draws_it() {
    let q = ReportPeriod::named("2026-01").unwrap();
    let (mut r, _) = report(&q, &Options::default());
    r.daily.truncate(1);
    let html = render(&r, Format::Html);
    let chart = html.split("Utilisation over time").nth(1).unwrap();
    assert!(chart.contains("<circle"), "one day is drawn as points");
}

#[test]
fn an_institute_scoped_report_shows_only_its_own() {
    let q = ReportPeriod::named("2026-Q1").unwrap();
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let (days, hours, cov) = ledger(&q);
    // ibn-sina ran on n1 only; n2 (another institute's) has the gap.
    let nodes: std::collections::BTreeSet<String> = ["n1".to_string()].into();
    let inp = Inputs {
        cluster_name: "c",
        institutes: &cfg.institutes,
        days: &days,
        hours: &hours,
        coverage: &CoverageInput::from_hours(&cov),
        nodes: Some(&nodes),
        now_ms: q.end_s * 1000,
        findings: &findings(),
    };
    let r = build(&inp, &q, &Options { institute: Some("ibn-sina".into()), ..Default::default() }, 0);
    // Its own findings only: the GPU that failed under its job, not al-haytham's.
    assert_eq!(r.findings.failed_gpus.len(), 1, "{:?}", r.findings);
    assert_eq!(r.findings.failed_gpus[0].node.as_deref(), Some("n1"));
    assert!(r.findings.counts.iter().all(|c| c.kind != crate::api::findings::FindingKind::Xid));
    assert_eq!(r.institutes.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["ibn-sina"]);
    assert!(r.cluster.coverage.gaps.is_empty(), "{:?}", r.cluster.coverage.gaps);
    assert_eq!(r.cluster.coverage.nodes, 1);
    let ibn = &r.institutes[0].figures;
    assert!((r.total.allocated_gpu_hours - ibn.allocated_gpu_hours).abs() < 1e-9);
    for f in [Format::Md, Format::Html, Format::Csv, Format::Json] {
        let text = render(&r, f);
        assert!(!text.contains("all institutes") && !text.contains("n2") && !text.contains("bob"), "{f:?}");
        assert!(!text.contains("Al-Haytham") && !text.contains("unassigned"), "{f:?}");
    }
    assert!(!render(&r, Format::Csv).lines().any(|l| l.starts_with("total,")));
}

/// A GPU lost under ibn-sina's job on n1, an XID under al-haytham's on n2, an idle job.
fn findings() -> Vec<crate::api::findings::Finding> {
    use crate::api::findings::{Finding, FindingKind, Severity};
    let f = |kind, severity, node: &str, institute: &str| Finding {
        id: format!("{kind:?}/{node}"),
        kind,
        severity,
        node: Some(node.into()),
        gpu: Some(format!("GPU-{node}")),
        job: None,
        institute: Some(institute.into()),
        message: format!("{kind:?} on {node}"),
        first_seen_ms: 1_770_000_000_000,
        last_seen_ms: 1_770_000_600_000,
        cleared_ms: Some(1_770_000_600_000),
    };
    vec![
        f(FindingKind::GpuLost, Severity::Critical, "n1", "ibn-sina"),
        f(FindingKind::Xid, Severity::Critical, "n2", "al-haytham"),
        f(FindingKind::IdleAllocated, Severity::Warning, "n1", "ibn-sina"),
    ]
}

#[test]
fn the_findings_of_the_period_are_in_every_format() {
    let q = ReportPeriod::named("2026-Q1").unwrap();
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let (days, hours, cov) = ledger(&q);
    let found = findings();
    let inp = Inputs {
        cluster_name: "c",
        institutes: &cfg.institutes,
        days: &days,
        hours: &hours,
        coverage: &CoverageInput::from_hours(&cov),
        nodes: None,
        now_ms: q.end_s * 1000,
        findings: &found,
    };
    let r = build(&inp, &q, &Options::default(), 0);
    assert_eq!(r.findings.failed_gpus.len(), 2);
    assert_eq!(r.findings.counts[0].severity, crate::api::findings::Severity::Critical, "most severe first");
    // (CSV holds figures only: its columns are stable, see docs/report-formats.md.)
    for f in [Format::Md, Format::Html, Format::Json] {
        let text = render(&r, f);
        assert!(text.contains("GPU-n1") && text.contains("GPU-n2"), "{f:?}: the failed GPUs are listed");
        assert!(text.contains("idle_allocated"), "{f:?}: the counts by kind are there");
    }
}

#[test]
fn a_network_report_sums_its_clusters_and_names_the_missing_one() {
    use super::network::{Missing, NetworkReport, build, render as render_network};
    let p = ReportPeriod::named("2026-Q1").unwrap();
    let (r, _) = report(&p, &Options::default());
    let (mut east, mut west) = (r.clone(), r.clone());
    east.cluster_name = "east".into();
    west.cluster_name = "west".into();
    let missing =
        [Missing { cluster: "north".into(), url: "https://north:9470".into(), error: "unreachable: refused".into() }];
    let n = build(vec![east, west], &missing, 1_790_000_000_000).unwrap();
    let s = &n.network;
    let c = &r.cluster.figures;
    assert!((s.total.figures.allocated_gpu_hours - 2.0 * c.allocated_gpu_hours).abs() < 1e-6);
    assert!((s.total.figures.idle_allocated_gpu_hours - 2.0 * c.idle_allocated_gpu_hours).abs() < 1e-6);
    assert_eq!(
        s.total.allocated_share_pct.map(|x| (x * 1e6).round()),
        r.cluster.allocated_share_pct.map(|x| (x * 1e6).round())
    );
    assert!((s.institutes_total.allocated_gpu_hours - 2.0 * r.total.allocated_gpu_hours).abs() < 1e-6);
    let ibn = s.institutes.iter().find(|i| i.id == "ibn-sina").unwrap();
    let one = r.institutes.iter().find(|i| i.id == "ibn-sina").unwrap();
    assert_eq!(ibn.clusters, ["east", "west"]);
    assert_eq!(ibn.granted_gpu_hours, one.granted_gpu_hours.map(|g| 2.0 * g));
    assert_eq!(ibn.share_of_grant_pct.map(|x| x.round()), one.share_of_grant_pct.map(|x| x.round()));
    // An institute without a grant has none across the network either.
    let jaz = s.institutes.iter().find(|i| i.id == "al-jazari").unwrap();
    assert_eq!(jaz.granted_gpu_hours, None);

    let md = render_network(&n, Format::Md);
    assert!(md.starts_with("# GPU usage report: east, west · 2026-Q1\n"), "{md}");
    assert!(md.contains("**Incomplete: no answer from north (https://north:9470): unreachable: refused."));
    assert!(
        md.contains("\n## GPU usage report: east · 2026-Q1\n") && md.contains("\n### Cluster\n"),
        "demoted one level"
    );
    assert_eq!(md.lines().filter(|l| l.starts_with("# ")).count(), 1);
    let html = render_network(&n, Format::Html);
    assert_eq!((html.matches("<!DOCTYPE").count(), html.matches("</body></html>").count()), (1, 1));
    assert!(html.contains("<h1>GPU usage report: west · 2026-Q1</h1>") && html.contains("<h2>Network</h2>"));
    assert_eq!(html.matches("<svg").count(), 6, "each cluster's charts");
    let csv = render_network(&n, Format::Csv);
    let fields = |l: &str| {
        l.chars().fold((1, false), |(n, q), ch| match ch {
            '"' => (n, !q),
            ',' if !q => (n + 1, q),
            _ => (n, q),
        })
    };
    for l in csv.lines() {
        assert_eq!(fields(l).0, super::csv::COLUMNS.len() + 1, "{l}");
    }
    assert!(
        csv.starts_with("cluster,section,") && csv.contains("\nwest,cluster,,west,") && csv.contains("\n,network,,,")
    );
    assert!(csv.contains("\nnorth,unreachable,,unreachable: refused,2026-01-01,2026-03-31,"), "{csv}");
    let back: NetworkReport = serde_json::from_str(&render_network(&n, Format::Json)).unwrap();
    assert_eq!(back, n);
}
