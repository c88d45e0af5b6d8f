//! Markdown.

use super::Report;
use crate::time::{format_date, format_rfc3339};
use std::fmt::Write;

/// GPU-hours and kWh in the report's tables: one decimal, thousands separated.
pub fn h(v: f64) -> String {
    crate::format::grouped(v, 1)
}

pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "–".into())
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let c = &r.cluster;
    let _ = writeln!(o, "# GPU usage report: {} · {}\n", r.cluster_name, r.period.label);
    let _ = writeln!(
        o,
        "Period {} to {} (UTC, whole days) · generated {} · utilisation: {}{}\n",
        r.period.first_day,
        r.period.last_day,
        format_rfc3339(r.generated_ms),
        r.utilisation_signal,
        if r.anonymised { " · user names pseudonymised" } else { "" }
    );
    let _ = writeln!(o, "## Cluster\n");
    let _ = writeln!(
        o,
        "| capacity GPU-h | allocated GPU-h | allocated | utilised GPU-h | utilised | availability | data coverage | energy kWh |"
    );
    let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        o,
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        h(c.figures.capacity_gpu_hours),
        h(c.figures.allocated_gpu_hours),
        pct(c.allocated_share_pct),
        h(c.figures.utilised_gpu_hours),
        pct(c.utilised_share_pct),
        pct(c.availability_pct),
        pct(c.coverage.coverage_pct),
        h(c.figures.energy_kwh)
    );
    let cov = &c.coverage;
    let _ = writeln!(
        o,
        "Data coverage: {} of {} expected node-hours received from {} nodes.{}\n",
        h(cov.received_node_hours),
        h(cov.expected_node_hours),
        cov.nodes,
        if cov.gaps.is_empty() { " No gaps.".to_string() } else { format!(" {} gaps:", cov.gaps.len()) }
    );
    if !cov.gaps.is_empty() {
        let _ = writeln!(o, "| node | from | to | missing hours |\n|---|---|---|---:|");
        for g in cov.gaps.iter().take(20) {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                g.node,
                format_rfc3339(g.from_s * 1000),
                format_rfc3339(g.to_s * 1000),
                h(g.missing_hours)
            );
        }
        if cov.gaps.len() > 20 {
            let _ = writeln!(o, "\n…and {} shorter gaps (all are in the JSON report).", cov.gaps.len() - 20);
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "## Institutes\n");
    let _ = writeln!(
        o,
        "| institute | granted GPU-h | allocated GPU-h | of grant | utilised GPU-h | efficiency | idle-allocated GPU-h | unscheduled GPU-h | energy kWh | jobs | users | peak GPUs |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for i in &r.institutes {
        let f = &i.figures;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            i.name,
            i.granted_gpu_hours.map(h).unwrap_or_else(|| "–".into()),
            h(f.allocated_gpu_hours),
            pct(i.share_of_grant_pct),
            h(f.utilised_gpu_hours),
            pct(i.efficiency_pct),
            h(f.idle_allocated_gpu_hours),
            h(f.unscheduled_gpu_hours),
            h(f.energy_kwh),
            i.jobs,
            i.users,
            i.peak_concurrent_gpus
        );
    }
    let t = &r.total;
    let _ = writeln!(
        o,
        "| **all institutes** | | **{}** | | **{}** | {} | **{}** | **{}** | **{}** | | | |\n",
        h(t.allocated_gpu_hours),
        h(t.utilised_gpu_hours),
        pct(t.efficiency_pct()),
        h(t.idle_allocated_gpu_hours),
        h(t.unscheduled_gpu_hours),
        h(t.energy_kwh)
    );
    for i in &r.institutes {
        let _ = writeln!(o, "### {} ({})\n", i.name, i.id);
        let _ = writeln!(
            o,
            "| {} | allocated GPU-h | utilised GPU-h | efficiency | unscheduled GPU-h |\n|---|---:|---:|---:|---:|",
            r.breakdown_by
        );
        for s in &i.breakdown {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                s.label,
                h(s.figures.allocated_gpu_hours),
                h(s.figures.utilised_gpu_hours),
                pct(s.figures.efficiency_pct()),
                h(s.figures.unscheduled_gpu_hours)
            );
        }
        if !i.top_users.is_empty() {
            let _ = writeln!(
                o,
                "\nTop users: {}",
                i.top_users
                    .iter()
                    .map(|u| format!("{} ({} GPU-h)", u.user, h(u.gpu_hours)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !i.top_jobs.is_empty() {
            let _ = writeln!(
                o,
                "\nTop jobs: {}",
                i.top_jobs
                    .iter()
                    .map(|j| format!("{} by {} ({} GPU-h)", j.job, j.user, h(j.gpu_hours)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "_Allocated GPU-hours = GPUs held by jobs × wall time; utilised = allocated × {}. Daily figures from {} to {}._",
        r.utilisation_signal,
        format_date(r.period.start_s * 1000),
        r.period.last_day
    );
    o
}
