//! Markdown.

use super::Report;
use super::text::{INSTITUTE_COLUMNS, count, grant_note, h, institute_cells, pct, shown_of, total_cells};
use crate::time::{format_date, format_rfc3339};
use std::fmt::Write;

/// Gaps listed in the text (all are in the JSON report).
pub const GAPS_SHOWN: usize = 20;

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let c = &r.cluster;
    let _ = writeln!(o, "# GPU usage report: {} · {}\n", r.cluster_name, r.period.label);
    let scope = r.institute.as_deref().map(|i| format!(" · institute {i} only")).unwrap_or_default();
    let _ = writeln!(
        o,
        "Period {} to {} (UTC, whole days) · generated {} · utilisation: {}{}{scope}\n",
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
    let whose = if r.institute.is_some() { "the institute's " } else { "" };
    let gaps = match cov.gaps.len() {
        0 => " No gaps.".to_string(),
        n if n > GAPS_SHOWN => format!(" {n} gaps; the {GAPS_SHOWN} largest:"),
        n => format!(" {}:", count(n, "gap", "gaps")),
    };
    let _ = writeln!(
        o,
        "Data coverage: {} of {} expected node-hours received ({}) from {} {whose}nodes, \
         each expected from its first report until the end of the period or now.{gaps}\n",
        h(cov.received_node_hours),
        h(cov.expected_node_hours),
        pct(cov.coverage_pct),
        cov.nodes,
    );
    if !cov.gaps.is_empty() {
        let _ = writeln!(o, "| node | from | to | missing hours |\n|---|---|---|---:|");
        for g in cov.gaps.iter().take(GAPS_SHOWN) {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                g.node,
                format_rfc3339(g.from_s * 1000),
                format_rfc3339(g.to_s * 1000),
                h(g.missing_hours)
            );
        }
        if cov.gaps.len() > GAPS_SHOWN {
            let _ = writeln!(o, "\n{} of {} gaps shown; all are in the JSON report.", GAPS_SHOWN, cov.gaps.len());
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "## Institutes\n");
    let _ = writeln!(o, "| {} |", INSTITUTE_COLUMNS.join(" | "));
    let _ = writeln!(o, "|---|{}", "---:|".repeat(INSTITUTE_COLUMNS.len() - 1));
    for i in &r.institutes {
        let _ = writeln!(o, "| {} |", institute_cells(i).join(" | "));
    }
    if let Some(t) = total_cells(r) {
        let bold: Vec<String> =
            t.iter().map(|c| if c.is_empty() { String::new() } else { format!("**{c}**") }).collect();
        let _ = writeln!(o, "| {} |", bold.join(" | "));
    }
    let _ = writeln!(
        o,
        "\nPeak GPUs: the most GPUs held (allocated or unscheduled) or busy at once, as the highest one-minute mean.\n"
    );
    for i in &r.institutes {
        let _ = writeln!(o, "### {} ({})\n", i.name, i.id);
        if let Some(note) = grant_note(i, r.period.days()) {
            let _ = writeln!(o, "{note}\n");
        }
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
        for (what, rows) in [
            (
                shown_of(i.top_users.len(), i.users, "users"),
                i.top_users.iter().map(|u| (u.user.clone(), &u.figures)).collect::<Vec<_>>(),
            ),
            (
                shown_of(i.top_jobs.len(), i.jobs, "jobs"),
                i.top_jobs.iter().map(|j| (format!("{} ({})", j.job, j.user), &j.figures)).collect(),
            ),
        ] {
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(o, "\n{}:\n", capitalise(&what));
            let _ = writeln!(
                o,
                "| | GPU-h used | allocated GPU-h | utilised GPU-h | idle-allocated GPU-h | unscheduled GPU-h | energy kWh |\n|---|---:|---:|---:|---:|---:|---:|"
            );
            for (name, f) in rows {
                let _ = writeln!(
                    o,
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    h(f.allocated_gpu_hours + f.unscheduled_gpu_hours),
                    h(f.allocated_gpu_hours),
                    h(f.utilised_gpu_hours),
                    h(f.idle_allocated_gpu_hours),
                    h(f.unscheduled_gpu_hours),
                    h(f.energy_kwh)
                );
            }
        }
        let _ = writeln!(o);
    }
    let eff = super::text::efficiency_rows(r);
    if !eff.is_empty() {
        let cols = super::text::EFFICIENCY_COLUMNS;
        let _ = writeln!(
            o,
            "## Efficiency\n\n{}\n\n| {} |\n|---|{}",
            super::text::EFFICIENCY_NOTE,
            cols.join(" | "),
            "---:|".repeat(cols.len() - 1)
        );
        for cells in &eff {
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(o);
    }
    let (counts, failed) = super::text::findings_tables(r);
    if !counts.is_empty() {
        let _ = writeln!(o, "## Findings in the period\n\n| kind | severity | findings |\n|---|---|---:|");
        for [k, s, n] in &counts {
            let _ = writeln!(o, "| {k} | {s} | {n} |");
        }
        if !failed.is_empty() {
            let _ = writeln!(
                o,
                "\nGPUs that failed:\n\n| node | GPU | what | first seen | cleared |\n|---|---|---|---|---|"
            );
            for [n, g, m, a, b] in &failed {
                let _ = writeln!(o, "| {n} | {g} | {} | {a} | {b} |", m.replace('|', "\\|"));
            }
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

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}
