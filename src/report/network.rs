//! A report for several clusters at once (`jazari report` with several
//! collectors): the network's summary (a line per cluster, their sum, and
//! each institute across the clusters), then each cluster's own report, in
//! every format. Clusters whose collector did not answer are named, and
//! their figures are missing from the sums.

use super::html::esc;
use super::text::{h, pct};
use super::{Figures, Format, Report, ReportPeriod, SCHEMA_VERSION};
use crate::time::format_rfc3339;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// A cluster whose collector did not answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missing {
    /// Its name in the client file, else its URL.
    pub cluster: String,
    pub url: String,
    /// What went wrong, one line.
    pub error: String,
}

/// One cluster in the network's table, or their sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterLine {
    pub cluster: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub allocated_share_pct: Option<f64>,
    pub utilised_share_pct: Option<f64>,
    pub availability_pct: Option<f64>,
    pub coverage_pct: Option<f64>,
}

/// An institute over the clusters whose reports have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstituteLine {
    pub id: String,
    pub name: String,
    pub clusters: Vec<String>,
    /// The sum of the grants for the period, when every one of the clusters grants it.
    pub granted_gpu_hours: Option<f64>,
    #[serde(flatten)]
    pub figures: Figures,
    pub share_of_grant_pct: Option<f64>,
    pub efficiency_pct: Option<f64>,
    /// Jobs with use in the period, summed (a job runs on one cluster).
    pub jobs: usize,
}

/// The network's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub clusters: Vec<ClusterLine>,
    /// The clusters' figures summed.
    pub total: ClusterLine,
    pub institutes: Vec<InstituteLine>,
    /// All institutes of all clusters (`unassigned` included).
    pub institutes_total: Figures,
    pub unreachable: Vec<Missing>,
}

/// The whole report: the summary and every cluster's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkReport {
    pub schema_version: u32,
    pub generated_ms: i64,
    pub period: ReportPeriod,
    pub network: Summary,
    pub clusters: Vec<Report>,
}

/// `a` plus `b`, figure by figure.
pub fn plus(a: &Figures, b: &Figures) -> Figures {
    Figures {
        capacity_gpu_hours: a.capacity_gpu_hours + b.capacity_gpu_hours,
        allocated_gpu_hours: a.allocated_gpu_hours + b.allocated_gpu_hours,
        utilised_gpu_hours: a.utilised_gpu_hours + b.utilised_gpu_hours,
        idle_allocated_gpu_hours: a.idle_allocated_gpu_hours + b.idle_allocated_gpu_hours,
        unscheduled_gpu_hours: a.unscheduled_gpu_hours + b.unscheduled_gpu_hours,
        energy_kwh: a.energy_kwh + b.energy_kwh,
        gpm_measured_gpu_hours: a.gpm_measured_gpu_hours + b.gpm_measured_gpu_hours,
        sm_active_gpu_hours: a.sm_active_gpu_hours + b.sm_active_gpu_hours,
        tensor_active_gpu_hours: a.tensor_active_gpu_hours + b.tensor_active_gpu_hours,
    }
}

/// The summary of the clusters' reports (all for the same period).
pub fn summarise(reports: &[Report], unreachable: &[Missing]) -> Summary {
    let clusters: Vec<ClusterLine> = reports
        .iter()
        .map(|r| ClusterLine {
            cluster: r.cluster_name.clone(),
            figures: r.cluster.figures,
            allocated_share_pct: r.cluster.allocated_share_pct,
            utilised_share_pct: r.cluster.utilised_share_pct,
            availability_pct: r.cluster.availability_pct,
            coverage_pct: r.cluster.coverage.coverage_pct,
        })
        .collect();
    let sum = clusters.iter().fold(Figures::default(), |a, c| plus(&a, &c.figures));
    let share = |x: f64| (sum.capacity_gpu_hours > 0.0).then(|| x / sum.capacity_gpu_hours * 100.0);
    // Expected GPU-hours of each cluster, from its capacity and availability.
    let expected: Option<f64> = clusters
        .iter()
        .map(|c| match c.availability_pct {
            Some(a) if a > 0.0 => Some(c.figures.capacity_gpu_hours / a * 100.0),
            _ => (c.figures.capacity_gpu_hours == 0.0).then_some(0.0),
        })
        .sum();
    let (received, expected_nodes) = reports.iter().fold((0.0, 0.0), |(a, b), r| {
        (a + r.cluster.coverage.received_node_hours, b + r.cluster.coverage.expected_node_hours)
    });
    let total = ClusterLine {
        cluster: "network".into(),
        figures: sum,
        allocated_share_pct: share(sum.allocated_gpu_hours),
        utilised_share_pct: share(sum.utilised_gpu_hours),
        availability_pct: expected.filter(|e| *e > 0.0).map(|e| (sum.capacity_gpu_hours / e * 100.0).min(100.0)),
        coverage_pct: (expected_nodes > 0.0).then(|| (received / expected_nodes * 100.0).min(100.0)),
    };
    let mut institutes: Vec<(InstituteLine, bool)> = vec![];
    for r in reports {
        for i in &r.institutes {
            let k = match institutes.iter().position(|(x, _)| x.id == i.id) {
                Some(k) => k,
                None => {
                    let line = InstituteLine {
                        id: i.id.clone(),
                        name: i.name.clone(),
                        clusters: vec![],
                        granted_gpu_hours: Some(0.0),
                        figures: Figures::default(),
                        share_of_grant_pct: None,
                        efficiency_pct: None,
                        jobs: 0,
                    };
                    institutes.push((line, true));
                    institutes.len() - 1
                }
            };
            let (x, every_grants) = &mut institutes[k];
            x.clusters.push(r.cluster_name.clone());
            x.figures = plus(&x.figures, &i.figures);
            x.jobs += i.jobs;
            *every_grants &= i.granted_gpu_hours.is_some();
            x.granted_gpu_hours = x.granted_gpu_hours.map(|g| g + i.granted_gpu_hours.unwrap_or(0.0));
        }
    }
    let institutes = institutes
        .into_iter()
        .map(|(mut x, every_grants)| {
            x.granted_gpu_hours = x.granted_gpu_hours.filter(|_| every_grants);
            let used = x.figures.allocated_gpu_hours + x.figures.unscheduled_gpu_hours;
            x.share_of_grant_pct = x.granted_gpu_hours.filter(|g| *g > 0.0).map(|g| used / g * 100.0);
            x.efficiency_pct = x.figures.efficiency_pct();
            x
        })
        .collect();
    Summary {
        clusters,
        total,
        institutes,
        institutes_total: reports.iter().fold(Figures::default(), |a, r| plus(&a, &r.total)),
        unreachable: unreachable.to_vec(),
    }
}

/// The network report of these clusters' reports.
pub fn build(reports: Vec<Report>, unreachable: &[Missing], generated_ms: i64) -> Option<NetworkReport> {
    let period = reports.first()?.period.clone();
    Some(NetworkReport {
        schema_version: SCHEMA_VERSION,
        generated_ms,
        period,
        network: summarise(&reports, unreachable),
        clusters: reports,
    })
}

/// Renders the network report in a format.
pub fn render(n: &NetworkReport, f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string_pretty(n).expect("report serialises") + "\n",
        Format::Csv => csv(n),
        Format::Md => md(n),
        Format::Html => html(n),
    }
}

const CLUSTER_COLUMNS: [&str; 11] = [
    "cluster",
    "capacity GPU-h",
    "allocated GPU-h",
    "allocated",
    "utilised GPU-h",
    "utilised",
    "idle-allocated GPU-h",
    "unscheduled GPU-h",
    "availability",
    "data coverage",
    "energy kWh",
];

fn cluster_cells(c: &ClusterLine) -> [String; 11] {
    let f = &c.figures;
    [
        c.cluster.clone(),
        h(f.capacity_gpu_hours),
        h(f.allocated_gpu_hours),
        pct(c.allocated_share_pct),
        h(f.utilised_gpu_hours),
        pct(c.utilised_share_pct),
        h(f.idle_allocated_gpu_hours),
        h(f.unscheduled_gpu_hours),
        pct(c.availability_pct),
        pct(c.coverage_pct),
        h(f.energy_kwh),
    ]
}

const INSTITUTE_COLUMNS: [&str; 11] = [
    "institute",
    "clusters",
    "granted GPU-h",
    "allocated GPU-h",
    "of grant",
    "utilised GPU-h",
    "NVML util. of allocated",
    "idle-allocated GPU-h",
    "unscheduled GPU-h",
    "energy kWh",
    "jobs",
];

fn institute_cells(i: &InstituteLine) -> [String; 11] {
    let f = &i.figures;
    [
        i.name.clone(),
        i.clusters.join(", "),
        i.granted_gpu_hours.map(h).unwrap_or_else(|| "–".into()),
        h(f.allocated_gpu_hours),
        pct(i.share_of_grant_pct),
        h(f.utilised_gpu_hours),
        pct(i.efficiency_pct),
        h(f.idle_allocated_gpu_hours),
        h(f.unscheduled_gpu_hours),
        h(f.energy_kwh),
        i.jobs.to_string(),
    ]
}

fn all_institutes_cells(t: &Figures) -> [String; 11] {
    [
        "all institutes".into(),
        String::new(),
        String::new(),
        h(t.allocated_gpu_hours),
        String::new(),
        h(t.utilised_gpu_hours),
        pct(t.efficiency_pct()),
        h(t.idle_allocated_gpu_hours),
        h(t.unscheduled_gpu_hours),
        h(t.energy_kwh),
        String::new(),
    ]
}

fn title(n: &NetworkReport) -> String {
    let names: Vec<&str> = n.clusters.iter().map(|r| r.cluster_name.as_str()).collect();
    format!("GPU usage report: {} · {}", names.join(", "), n.period.label)
}

fn missing_note(n: &NetworkReport) -> Option<String> {
    let m = &n.network.unreachable;
    (!m.is_empty()).then(|| {
        let each: Vec<String> = m.iter().map(|x| format!("{} ({}): {}", x.cluster, x.url, x.error)).collect();
        format!("Incomplete: no answer from {}. Their figures are not in the totals.", each.join("; "))
    })
}

fn md(n: &NetworkReport) -> String {
    let mut o = String::new();
    let s = &n.network;
    let _ = writeln!(o, "# {}\n", title(n));
    let _ = writeln!(
        o,
        "Period {} to {} (UTC, whole days) · generated {} · {} clusters, each reported in full below.\n",
        n.period.first_day,
        n.period.last_day,
        format_rfc3339(n.generated_ms),
        n.clusters.len()
    );
    if let Some(note) = missing_note(n) {
        let _ = writeln!(o, "**{note}**\n");
    }
    let table = |o: &mut String, cols: &[&str], rows: Vec<Vec<String>>, total: Vec<String>| {
        let _ = writeln!(o, "| {} |\n|---|{}", cols.join(" | "), "---:|".repeat(cols.len() - 1));
        for r in rows {
            let _ = writeln!(o, "| {} |", r.join(" | "));
        }
        let bold: Vec<String> =
            total.iter().map(|c| if c.is_empty() { c.clone() } else { format!("**{c}**") }).collect();
        let _ = writeln!(o, "| {} |\n", bold.join(" | "));
    };
    let _ = writeln!(o, "## Network\n");
    let rows = s.clusters.iter().map(|c| cluster_cells(c).to_vec()).collect();
    table(&mut o, &CLUSTER_COLUMNS, rows, cluster_cells(&s.total).to_vec());
    let _ = writeln!(o, "## Institutes across the network\n");
    let rows = s.institutes.iter().map(|i| institute_cells(i).to_vec()).collect();
    table(&mut o, &INSTITUTE_COLUMNS, rows, all_institutes_cells(&s.institutes_total).to_vec());
    for r in &n.clusters {
        let _ = writeln!(o, "---\n");
        // Each cluster's report one heading level down.
        for line in super::md::render(r).lines() {
            let _ = writeln!(o, "{}{line}", if line.starts_with('#') { "#" } else { "" });
        }
    }
    o
}

fn html(n: &NetworkReport) -> String {
    let s = &n.network;
    let mut o = super::html::head(&esc(&title(n)));
    let _ = write!(
        o,
        "<h1>{}</h1>\n<p class=\"note\">Period {} to {} (UTC, whole days) · generated {} · {} clusters, each reported in full below.</p>\n",
        esc(&title(n)),
        n.period.first_day,
        n.period.last_day,
        format_rfc3339(n.generated_ms),
        n.clusters.len()
    );
    if let Some(note) = missing_note(n) {
        let _ = write!(o, "<p><strong>{}</strong></p>", esc(&note));
    }
    let table = |o: &mut String, cols: &[&str], rows: Vec<Vec<String>>, total: Vec<String>| {
        let ths: Vec<String> = cols.iter().map(|c| format!("<th>{}</th>", esc(c))).collect();
        let _ = write!(o, "<table><tr>{}</tr>", ths.join(""));
        let row = |cells: &[String], class: &str| {
            let tds: Vec<String> =
                cells
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        if k < 2 { format!("<td>{}</td>", esc(c)) } else { format!(r#"<td class="n">{}</td>"#, esc(c)) }
                    })
                    .collect();
            format!("<tr{class}>{}</tr>", tds.join(""))
        };
        for r in rows {
            o.push_str(&row(&r, ""));
        }
        o.push_str(&row(&total, r#" class="total""#));
        o.push_str("</table>");
    };
    o.push_str("<h2>Network</h2>");
    let rows = s.clusters.iter().map(|c| cluster_cells(c).to_vec()).collect();
    table(&mut o, &CLUSTER_COLUMNS, rows, cluster_cells(&s.total).to_vec());
    o.push_str("<h2>Institutes across the network</h2>");
    let rows = s.institutes.iter().map(|i| institute_cells(i).to_vec()).collect();
    table(&mut o, &INSTITUTE_COLUMNS, rows, all_institutes_cells(&s.institutes_total).to_vec());
    o.push('\n');
    for r in &n.clusters {
        o.push_str("<hr>\n");
        super::html::body(r, &mut o);
        o.push('\n');
    }
    o.push_str("</body></html>\n");
    o
}

/// CSV: the one-cluster columns after a `cluster` column, every cluster's
/// rows, then `network` (the clusters summed), `network_institute` (an
/// institute across the clusters) and `unreachable` rows.
fn csv(n: &NetworkReport) -> String {
    use super::csv::{COLUMNS, field, num};
    let mut out = format!("cluster,{}\n", COLUMNS.join(","));
    for r in &n.clusters {
        super::csv::write_rows(r, &format!("{},", field(&r.cluster_name)), &mut out);
    }
    let (first, last) = (&n.period.first_day, &n.period.last_day);
    let mut row = |cells: Vec<String>| {
        let _ = writeln!(out, "{}", cells.join(","));
    };
    // cluster, section, institute, key, the period, granted; the figures; the extra columns.
    let figures = |head: [&str; 4], granted: Option<f64>, f: &Figures, extra: [Option<f64>; 3]| {
        let mut cells: Vec<String> = head.iter().map(|c| field(c)).collect();
        cells.extend([first.clone(), last.clone(), num(granted)]);
        let sums = [
            f.capacity_gpu_hours,
            f.allocated_gpu_hours,
            f.utilised_gpu_hours,
            f.idle_allocated_gpu_hours,
            f.unscheduled_gpu_hours,
            f.energy_kwh,
        ];
        cells.extend(sums.iter().map(|v| num(Some(*v))));
        // share of grant, efficiency, jobs; users and the peaks do not add up across clusters.
        cells.extend(extra.iter().map(|v| num(*v)));
        cells.extend([String::new(), String::new(), String::new()]);
        let gpm = [f.gpm_measured_gpu_hours, f.sm_active_gpu_hours, f.tensor_active_gpu_hours];
        cells.extend(gpm.iter().map(|v| num(Some(*v))));
        cells.extend([num(f.sm_active_pct()), num(f.tensor_active_pct())]);
        cells
    };
    let s = &n.network;
    let t = &s.total.figures;
    row(figures(["", "network", "", ""], None, t, [None, t.efficiency_pct(), None]));
    for i in &s.institutes {
        let extra = [i.share_of_grant_pct, i.efficiency_pct, Some(i.jobs as f64)];
        row(figures(["", "network_institute", &i.id, &i.name], i.granted_gpu_hours, &i.figures, extra));
    }
    for m in &s.unreachable {
        let mut cells = vec![field(&m.cluster), "unreachable".into(), String::new(), field(&m.error)];
        cells.extend([first.clone(), last.clone()]);
        cells.resize(COLUMNS.len() + 1, String::new());
        row(cells);
    }
    out
}
