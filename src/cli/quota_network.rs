//! `jazari quota` for several clusters: a section per cluster (the table or
//! the check lines of one collector), then the network's totals per
//! institute; a cluster that did not answer is named in its section and on
//! stderr, and the command exits with status 3.

use super::quota_table::{By, check_lines, table};
use super::{Incomplete, failed_line};
use crate::api::paths;
use crate::api::quota::{BurnDown, QuotaQuery, QuotasResponse, State};
use crate::client::ClientError;
use crate::client::network::{Target, each};
use crate::format::{exact, fit, hours, wrap};
use anyhow::Result;
use serde::Serialize;
use std::fmt::Write;

/// Every collector's answer, asked at once, in the targets' order.
pub fn fetch(targets: &[Target], q: &QuotaQuery) -> Vec<Result<QuotasResponse, ClientError>> {
    each(targets, |c| c.get_with(paths::QUOTAS, q))
}

/// The cluster's name as its collector gives it, else the target's label.
fn name_of(t: &Target, q: &QuotasResponse) -> String {
    if q.cluster.is_empty() { t.label().to_string() } else { q.cluster.clone() }
}

/// An institute over the clusters that have a burn-down for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstituteTotal {
    pub institute: String,
    pub name: String,
    /// The clusters it has a burn-down in.
    pub clusters: Vec<String>,
    /// The quota period, when it is the same in every one of them.
    pub period: Option<String>,
    /// The sum of the grants, when every one of them grants GPU-hours.
    pub granted_gpu_hours: Option<f64>,
    /// Sums of each cluster's figures over its own period.
    pub used_gpu_hours: f64,
    pub settled_gpu_hours: f64,
    pub in_flight_gpu_hours: f64,
    pub busy_gpu_hours: f64,
    /// Used over granted, percent, when the periods agree and every cluster grants.
    pub used_pct: Option<f64>,
    pub gpus_in_use: u32,
    /// The sum of the caps, when every one of them caps the GPUs at once.
    pub max_gpus: Option<u32>,
    /// The worst state among them.
    pub state: State,
}

/// The network: what answered, and the sums.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkTotals {
    pub clusters: usize,
    pub clusters_answered: usize,
    pub used_gpu_hours: f64,
    pub in_flight_gpu_hours: f64,
    pub gpus_in_use: u32,
    pub institutes: Vec<InstituteTotal>,
}

fn severity(s: State) -> u8 {
    match s {
        State::NoQuota => 0,
        State::Ok => 1,
        State::Warning => 2,
        State::Exceeded => 3,
    }
}

/// Sums the burn-downs of the clusters that answered, (cluster, answer) each.
pub fn totals(answered: &[(String, &QuotasResponse)], clusters: usize) -> NetworkTotals {
    let mut by: Vec<(InstituteTotal, Vec<&BurnDown>)> = vec![];
    for (cluster, q) in answered {
        for b in &q.institutes {
            let i = match by.iter().position(|(t, _)| t.institute == b.institute) {
                Some(i) => i,
                None => {
                    let t = InstituteTotal {
                        institute: b.institute.clone(),
                        name: b.name.clone(),
                        clusters: vec![],
                        period: None,
                        granted_gpu_hours: None,
                        used_gpu_hours: 0.0,
                        settled_gpu_hours: 0.0,
                        in_flight_gpu_hours: 0.0,
                        busy_gpu_hours: 0.0,
                        used_pct: None,
                        gpus_in_use: 0,
                        max_gpus: None,
                        state: b.state,
                    };
                    by.push((t, vec![]));
                    by.len() - 1
                }
            };
            by[i].0.clusters.push(cluster.clone());
            by[i].1.push(b);
        }
    }
    let institutes: Vec<InstituteTotal> = by
        .into_iter()
        .map(|(mut t, bs)| {
            let label = |b: &BurnDown| b.period.as_ref().map(|p| p.label.clone());
            let first = label(bs[0]);
            t.period = first.filter(|l| bs.iter().all(|b| label(b).as_ref() == Some(l)));
            t.granted_gpu_hours = bs.iter().map(|b| b.granted_gpu_hours).sum::<Option<f64>>();
            t.max_gpus = bs.iter().map(|b| b.max_gpus).sum::<Option<u32>>();
            for b in &bs {
                t.used_gpu_hours += b.used_gpu_hours;
                t.settled_gpu_hours += b.settled_gpu_hours;
                t.in_flight_gpu_hours += b.in_flight_gpu_hours;
                t.busy_gpu_hours += b.busy_gpu_hours;
                t.gpus_in_use += b.gpus_in_use;
                if severity(b.state) > severity(t.state) {
                    t.state = b.state;
                }
            }
            t.used_pct = match (t.period.is_some(), t.granted_gpu_hours) {
                (true, Some(g)) if g > 0.0 => Some(t.used_gpu_hours / g * 100.0),
                _ => None,
            };
            t
        })
        .collect();
    NetworkTotals {
        clusters,
        clusters_answered: answered.len(),
        used_gpu_hours: institutes.iter().map(|i| i.used_gpu_hours).sum(),
        in_flight_gpu_hours: institutes.iter().map(|i| i.in_flight_gpu_hours).sum(),
        gpus_in_use: institutes.iter().map(|i| i.gpus_in_use).sum(),
        institutes,
    }
}

/// The network's table: an institute a line, then all of them; at most 80 columns.
pub fn totals_table(t: &NetworkTotals, missing: &[String]) -> String {
    let mut out = String::new();
    let answered = if missing.is_empty() {
        format!("{} clusters", t.clusters)
    } else {
        format!("{} of {} clusters; no answer from {}", t.clusters_answered, t.clusters, missing.join(", "))
    };
    let _ = writeln!(out, "{}", fit(&format!("Network ({answered})"), 80));
    let _ = writeln!(
        out,
        "{:<16} {:<8} {:>9} {:>9} {:>5} {:>9} {:>7} {:>8}",
        "INSTITUTE", "PERIOD", "GRANTED", "USED", "USE", "IN FLIGHT", "GPUS", "CLUSTERS"
    );
    for i in &t.institutes {
        let gpus = match i.max_gpus {
            Some(cap) => format!("{}/{cap}", i.gpus_in_use),
            None => i.gpus_in_use.to_string(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>9} {:>9} {:>5} {:>9} {:>7} {:>8}",
            fit(&i.institute, 16),
            fit(i.period.as_deref().unwrap_or("mixed"), 8),
            i.granted_gpu_hours.map(exact).unwrap_or_else(|| "-".into()),
            hours(i.used_gpu_hours),
            i.used_pct.map(|p| format!("{p:.0}%")).unwrap_or_else(|| "-".into()),
            hours(i.in_flight_gpu_hours),
            gpus,
            i.clusters.len()
        );
    }
    let _ = writeln!(
        out,
        "{:<16} {:<8} {:>9} {:>9} {:>5} {:>9} {:>7}",
        "all institutes",
        "",
        "",
        hours(t.used_gpu_hours),
        "",
        hours(t.in_flight_gpu_hours),
        t.gpus_in_use
    );
    let _ = writeln!(out, "Used and in flight: each cluster's own quota period, summed.");
    out
}

/// `jazari quota` with several collectors: a table (or JSON) per cluster and the network's totals.
pub fn run(targets: &[Target], q: &QuotaQuery, json: bool, by: Option<By>) -> Result<()> {
    let answers = fetch(targets, q);
    let mut failed = vec![];
    let mut missing = vec![];
    let mut answered: Vec<(String, &QuotasResponse)> = vec![];
    let mut sections = vec![];
    let mut text = String::new();
    for (t, a) in targets.iter().zip(&answers) {
        match a {
            Ok(r) => {
                let name = name_of(t, r);
                let mut v = serde_json::to_value(r)?;
                v["cluster"] = name.clone().into();
                v["url"] = t.client.base().into();
                sections.push(v);
                let head = fit(&format!("Cluster {name} · {}", t.client.base()), 80);
                let _ = write!(text, "{head}\n{}\n", table(&r.institutes, by));
                answered.push((name, r));
            }
            Err(e) => {
                let line = failed_line(t, e);
                sections.push(serde_json::json!({"cluster": t.label(), "url": t.client.base(), "error": line}));
                let head = fit(&format!("Cluster {} · {}", t.label(), t.client.base()), 80);
                let _ = write!(text, "{head}\n{}\n\n", wrap(&line, 80, "  "));
                missing.push(t.label().to_string());
                failed.push(line);
            }
        }
    }
    let totals = totals(&answered, targets.len());
    if json {
        let out = serde_json::json!({"clusters": sections, "totals": totals});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{text}{}", totals_table(&totals, &missing));
    }
    if failed.is_empty() { Ok(()) } else { Err(Incomplete(failed).into()) }
}

/// `jazari quota --check` with several collectors: each cluster's lines,
/// institutes named `CLUSTER/INSTITUTE`, and `UNKNOWN` for a cluster that did
/// not answer; the worst status.
pub fn check(targets: &[Target], q: &QuotaQuery) -> (i32, String) {
    let mut worst = 0;
    let mut out = String::new();
    for (t, a) in targets.iter().zip(fetch(targets, q)) {
        match a {
            Ok(r) => {
                let name = name_of(t, &r);
                let mut items = r.institutes;
                for b in &mut items {
                    b.institute = format!("{name}/{}", b.institute);
                }
                let (code, lines) = check_lines(&items);
                worst = worst.max(code);
                out.push_str(&lines);
            }
            Err(e) => {
                worst = worst.max(3);
                let _ = writeln!(out, "UNKNOWN {}", failed_line(t, &e));
            }
        }
    }
    (worst, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::quota::Period;

    fn b(inst: &str, period: &str, granted: Option<f64>, used: f64, gpus: u32, state: State) -> BurnDown {
        BurnDown {
            institute: inst.into(),
            name: inst.to_uppercase(),
            at_ms: 0,
            period: Some(Period { label: period.into(), start_ms: 0, end_ms: 1 }),
            granted_gpu_hours: granted,
            used_gpu_hours: used,
            settled_gpu_hours: used - 1.0,
            in_flight_gpu_hours: 1.0,
            committed_gpu_hours: 0.0,
            committed_known: false,
            remaining_gpu_hours: None,
            used_pct: None,
            burn_rate_gpu_hours_per_day: 0.0,
            burn_window_s: 0.0,
            projected_gpu_hours: None,
            projected_pct: None,
            runs_out_ms: None,
            gpus_in_use: gpus,
            max_gpus: None,
            queued_gpus: None,
            busy_gpu_hours: used / 2.0,
            efficiency_pct: None,
            gpm_measured_gpu_hours: None,
            sm_active_gpu_hours: None,
            state,
            reasons: vec![],
            by_account: vec![],
            by_user: vec![],
        }
    }

    fn resp(cluster: &str, institutes: Vec<BurnDown>) -> QuotasResponse {
        QuotasResponse { cluster: cluster.into(), at_ms: 0, utilisation_signal: "x".into(), institutes }
    }

    #[test]
    fn totals_sum_what_can_be_summed() {
        let east = resp(
            "east",
            vec![
                b("ibn-sina", "2026-Q4", Some(100.0), 30.0, 4, State::Ok),
                b("al-jazari", "2026-Q4", None, 5.0, 1, State::NoQuota),
            ],
        );
        let west = resp(
            "west",
            vec![
                b("ibn-sina", "2026-Q4", Some(300.0), 70.0, 8, State::Warning),
                b("al-jazari", "2026", Some(50.0), 10.0, 2, State::Ok),
            ],
        );
        let t = totals(&[("east".into(), &east), ("west".into(), &west)], 3);
        assert_eq!((t.clusters, t.clusters_answered, t.gpus_in_use), (3, 2, 15));
        assert!((t.used_gpu_hours - 115.0).abs() < 1e-9);
        let ibn = &t.institutes[0];
        assert_eq!(ibn.clusters, ["east", "west"]);
        assert_eq!(
            (ibn.period.as_deref(), ibn.granted_gpu_hours, ibn.used_pct),
            (Some("2026-Q4"), Some(400.0), Some(25.0))
        );
        assert_eq!((ibn.gpus_in_use, ibn.state), (12, State::Warning));
        // Different periods, a grant in one cluster only: no period, grant or share.
        let jaz = &t.institutes[1];
        assert_eq!((jaz.period.as_deref(), jaz.granted_gpu_hours, jaz.used_pct), (None, None, None));
        assert_eq!(jaz.state, State::Ok);
        let table = totals_table(&t, &["north".into()]);
        assert!(table.contains("2 of 3 clusters; no answer from north"), "{table}");
        assert!(table.lines().any(|l| l.starts_with("al-jazari") && l.contains("mixed")), "{table}");
        assert!(table.lines().any(|l| l.starts_with("all institutes") && l.contains("115")), "{table}");
        assert!(table.lines().all(|l| l.chars().count() <= 80), "{table}");
    }
}
