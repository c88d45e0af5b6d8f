//! CSV: one table, long format, stable columns (documented in docs/report-formats.md).
//!
//! `section` is `cluster`, `total`, `institute`, `month` or `week`, `user`
//! or `job`; `institute` and `key` say which row it is.

use super::{Figures, Report};
use std::fmt::Write;

pub const COLUMNS: &[&str] = &[
    "section",
    "institute",
    "key",
    "period_first_day",
    "period_last_day",
    "granted_gpu_hours",
    "capacity_gpu_hours",
    "allocated_gpu_hours",
    "utilised_gpu_hours",
    "idle_allocated_gpu_hours",
    "unscheduled_gpu_hours",
    "energy_kwh",
    "share_of_grant_pct",
    "efficiency_pct",
    "jobs",
    "users",
    "peak_held_gpus",
    "peak_busy_gpus",
    "gpm_measured_gpu_hours",
    "sm_active_gpu_hours",
    "tensor_active_gpu_hours",
    "sm_active_pct",
    "tensor_active_pct",
];

pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}").trim_end_matches('0').trim_end_matches('.').to_string()).unwrap_or_default()
}

pub fn render(r: &Report) -> String {
    let mut out = COLUMNS.join(",") + "\n";
    write_rows(r, "", &mut out);
    out
}

/// The report's rows (no header), each starting with `prefix` (for several
/// clusters: the cluster's cell and a comma).
pub fn write_rows(r: &Report, prefix: &str, out: &mut String) {
    let p = &r.period;
    let mut row = |section: &str, inst: &str, key: &str, granted: Option<f64>, f: &Figures, extra: [Option<f64>; 6]| {
        let cells = [
            field(section),
            field(inst),
            field(key),
            p.first_day.clone(),
            p.last_day.clone(),
            num(granted),
            num(Some(f.capacity_gpu_hours)),
            num(Some(f.allocated_gpu_hours)),
            num(Some(f.utilised_gpu_hours)),
            num(Some(f.idle_allocated_gpu_hours)),
            num(Some(f.unscheduled_gpu_hours)),
            num(Some(f.energy_kwh)),
            num(extra[0]),
            num(extra[1]),
            num(extra[2]),
            num(extra[3]),
            num(extra[4]),
            num(extra[5]),
            num(Some(f.gpm_measured_gpu_hours)),
            num(Some(f.sm_active_gpu_hours)),
            num(Some(f.tensor_active_gpu_hours)),
            num(f.sm_active_pct()),
            num(f.tensor_active_pct()),
        ];
        let _ = writeln!(out, "{prefix}{}", cells.join(","));
    };
    row(
        "cluster",
        "",
        &r.cluster_name,
        None,
        &r.cluster.figures,
        [None, r.cluster.figures.efficiency_pct(), None, None, None, None],
    );
    if r.institute.is_none() {
        row("total", "", "", None, &r.total, [None, r.total.efficiency_pct(), None, None, None, None]);
    }
    for i in &r.institutes {
        row(
            "institute",
            &i.id,
            &i.name,
            i.granted_gpu_hours,
            &i.figures,
            [
                i.share_of_grant_pct,
                i.efficiency_pct,
                Some(i.jobs as f64),
                Some(i.users as f64),
                Some(i.peak_held_gpus),
                Some(i.peak_busy_gpus),
            ],
        );
        for s in &i.breakdown {
            row(
                &r.breakdown_by,
                &i.id,
                &s.label,
                None,
                &s.figures,
                [None, s.figures.efficiency_pct(), None, None, None, None],
            );
        }
        for u in &i.top_users {
            row("user", &i.id, &u.user, None, &u.figures, [None, u.figures.efficiency_pct(), None, None, None, None]);
        }
        for j in &i.top_jobs {
            row("job", &i.id, &j.job, None, &j.figures, [None, j.figures.efficiency_pct(), None, None, None, None]);
        }
    }
}
