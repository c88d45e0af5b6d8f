//! Wording the Markdown and HTML reports share: the institutes table's
//! columns and cells, what a grant is, how much of a list is shown.

use super::{InstituteReport, Report};
use crate::format::grouped;

/// GPU-hours and kWh in the report's tables: one decimal, thousands separated.
pub fn h(v: f64) -> String {
    grouped(v, 1)
}

/// A percentage with one decimal, or an en dash.
pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "–".into())
}

/// Columns of the institutes table.
pub const INSTITUTE_COLUMNS: [&str; 13] = [
    "institute",
    "granted GPU-h",
    "allocated GPU-h",
    "of grant",
    "utilised GPU-h",
    "NVML util. of allocated",
    "idle-allocated GPU-h",
    "unscheduled GPU-h",
    "energy kWh",
    "jobs",
    "users",
    "peak GPUs held",
    "peak GPUs busy",
];

/// One institute's cells, in [`INSTITUTE_COLUMNS`] order (not escaped).
pub fn institute_cells(i: &InstituteReport) -> [String; 13] {
    let f = &i.figures;
    [
        i.name.clone(),
        i.granted_gpu_hours.map(h).unwrap_or_else(|| "–".into()),
        h(f.allocated_gpu_hours),
        pct(i.share_of_grant_pct),
        h(f.utilised_gpu_hours),
        pct(i.efficiency_pct),
        h(f.idle_allocated_gpu_hours),
        h(f.unscheduled_gpu_hours),
        h(f.energy_kwh),
        i.jobs.to_string(),
        i.users.to_string(),
        format!("{:.1}", i.peak_held_gpus),
        format!("{:.1}", i.peak_busy_gpus),
    ]
}

/// The all-institutes row's cells, or none for a report limited to one institute.
pub fn total_cells(r: &Report) -> Option<[String; 13]> {
    let t = &r.total;
    r.institute.is_none().then(|| {
        [
            "all institutes".into(),
            String::new(),
            h(t.allocated_gpu_hours),
            String::new(),
            h(t.utilised_gpu_hours),
            pct(t.efficiency_pct()),
            h(t.idle_allocated_gpu_hours),
            h(t.unscheduled_gpu_hours),
            h(t.energy_kwh),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]
    })
}

/// What the efficiency section says before its table.
pub const EFFICIENCY_NOTE: &str = "NVML utilisation is a duty cycle (the share of time any kernel ran); \
SM active and tensor active come from NVML GPM (Hopper and later) and are taken over the allocated \
GPU-hours that measured them, shown as \"measured by GPM\". A GPU can be 100 % utilised with a fifth of its SMs active.";

/// Columns of the efficiency table.
pub const EFFICIENCY_COLUMNS: [&str; 6] =
    ["institute", "allocated GPU-h", "NVML util. of allocated", "measured by GPM", "SM active", "tensor active"];

/// Efficiency rows (institutes, then all institutes), in [`EFFICIENCY_COLUMNS`] order;
/// none when no GPU in the report measured GPM.
pub fn efficiency_rows(r: &Report) -> Vec<[String; 6]> {
    let row = |name: &str, f: &super::Figures| {
        [
            name.to_string(),
            h(f.allocated_gpu_hours),
            pct(f.efficiency_pct()),
            pct(f.gpm_coverage_pct()),
            pct(f.sm_active_pct()),
            pct(f.tensor_active_pct()),
        ]
    };
    let any = r.institutes.iter().any(|i| i.figures.gpm_measured_gpu_hours > 0.0);
    if !any {
        return vec![];
    }
    let mut out: Vec<[String; 6]> = r.institutes.iter().map(|i| row(&i.name, &i.figures)).collect();
    if r.institute.is_none() {
        out.push(row("all institutes", &r.total));
    }
    out
}

/// What an institute's grant is, when it has one: "120,000.0 GPU-h per
/// quarter; 39,130.4 of them fall in this period (31 days)".
pub fn grant_note(i: &InstituteReport, days: i64) -> Option<String> {
    let g = i.grant.as_ref()?;
    let per = match g.quota_period.as_str() {
        p @ ("month" | "quarter" | "year") => format!("per {p}"),
        dates => format!("for {dates}"),
    };
    Some(if g.prorated {
        format!(
            "Grant: {} GPU-h {per}; {} of them fall in this period of {days} days (pro-rated by time).",
            h(g.per_period_gpu_hours),
            h(g.for_report_gpu_hours)
        )
    } else {
        format!("Grant: {} GPU-h {per}.", h(g.per_period_gpu_hours))
    })
}

/// "the 10 of 37 users with the most GPU-hours", "all 4 users" or "the only user";
/// `what` is the plural, ending in `s`.
pub fn shown_of(shown: usize, total: usize, what: &str) -> String {
    match total {
        1 => format!("the only {}", what.strip_suffix('s').unwrap_or(what)),
        t if shown < t => format!("the {shown} of {t} {what} with the most GPU-hours"),
        t => format!("all {t} {what}"),
    }
}

/// "1 gap", "3 gaps".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The findings section's tables: counts (kind, severity, count) and failed
/// GPUs (node, GPU, what, first seen, last seen or "still").
pub fn findings_tables(r: &Report) -> (Vec<[String; 3]>, Vec<[String; 5]>) {
    use crate::time::format_rfc3339;
    let counts = r
        .findings
        .counts
        .iter()
        .map(|c| [c.kind.name().to_string(), c.severity.name().to_string(), c.count.to_string()])
        .collect();
    let failed = r
        .findings
        .failed_gpus
        .iter()
        .map(|f| {
            [
                f.node.clone().unwrap_or_default(),
                f.gpu.clone().unwrap_or_default(),
                f.message.clone(),
                format_rfc3339(f.first_seen_ms),
                f.cleared_ms.map(format_rfc3339).unwrap_or_else(|| "still".into()),
            ]
        })
        .collect();
    (counts, failed)
}
