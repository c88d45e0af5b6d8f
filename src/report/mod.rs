//! Usage reports for a period (`jazari report`): the data, built by a pure
//! function from the ledger's daily and hourly roll-ups and the coverage
//! record, and one module per output format.
//!
//! Reports cover whole UTC days: `from` is the first day, `to` the day after
//! the last. Sums over sub-periods equal the sum over the whole period
//! because every figure is a sum of daily buckets.

pub mod csv;
pub mod html;
pub mod md;

use crate::accounting::{Amounts, UNASSIGNED};
use crate::config::Institute;
use crate::quota::{Period, QuotaSpec};
use crate::store::DayRow;
use crate::time::{civil_from_days, days_from_civil, format_date};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const SCHEMA_VERSION: u32 = 1;
const DAY: i64 = 86_400;
const TOP: usize = 10;

/// The report's period: [start, end) in UTC seconds, whole days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPeriod {
    pub label: String,
    /// First day, `YYYY-MM-DD`.
    pub first_day: String,
    /// Last day, inclusive.
    pub last_day: String,
    pub start_s: i64,
    pub end_s: i64,
}

impl ReportPeriod {
    /// `2026`, `2026-Q1` or `2026-03`.
    pub fn named(s: &str) -> Result<Self, String> {
        let p = Period::parse(s)?;
        Ok(Self::new(p.label, p.start_ms / 1000, p.end_ms / 1000))
    }

    /// From a first day to a last day (inclusive), both `YYYY-MM-DD`.
    pub fn dates(from: &str, to: &str) -> Result<Self, String> {
        let f = crate::time::parse_instant(from).map_err(|e| format!("--from: {e}"))? / 1000;
        let t = crate::time::parse_instant(to).map_err(|e| format!("--to: {e}"))? / 1000;
        let (f, t) = (f.div_euclid(DAY) * DAY, t.div_euclid(DAY) * DAY + DAY);
        if t <= f {
            return Err(format!("the period is empty or inverted: --from {from} is after --to {to}"));
        }
        Ok(Self::new(format!("{}..{}", format_date(f * 1000), format_date((t - DAY) * 1000)), f, t))
    }

    fn new(label: String, start_s: i64, end_s: i64) -> Self {
        Self {
            label,
            first_day: format_date(start_s * 1000),
            last_day: format_date((end_s - DAY) * 1000),
            start_s,
            end_s,
        }
    }

    pub fn days(&self) -> i64 {
        (self.end_s - self.start_s) / DAY
    }
}

/// Figures in GPU-hours and kWh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub capacity_gpu_hours: f64,
    pub allocated_gpu_hours: f64,
    /// Allocated GPU-hours weighted by NVML GPU utilisation.
    pub utilised_gpu_hours: f64,
    pub idle_allocated_gpu_hours: f64,
    pub unscheduled_gpu_hours: f64,
    pub energy_kwh: f64,
}

impl Figures {
    fn add(&mut self, a: &Amounts) {
        self.capacity_gpu_hours += a.capacity_s / 3600.0;
        self.allocated_gpu_hours += a.allocated_s / 3600.0;
        self.utilised_gpu_hours += a.busy_s / 3600.0;
        self.idle_allocated_gpu_hours += a.idle_allocated_s / 3600.0;
        self.unscheduled_gpu_hours += a.unscheduled_s / 3600.0;
        self.energy_kwh += a.energy_j / 3.6e6;
    }

    pub fn efficiency_pct(&self) -> Option<f64> {
        (self.allocated_gpu_hours > 0.0).then(|| self.utilised_gpu_hours / self.allocated_gpu_hours * 100.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// `2026-03` for a month, `2026-03-02` (the Monday) for a week.
    pub label: String,
    pub start_s: i64,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopUser {
    pub user: String,
    pub gpu_hours: f64,
    pub utilised_gpu_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopJob {
    pub job: String,
    pub user: String,
    pub account: String,
    pub gpu_hours: f64,
    pub utilised_gpu_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstituteReport {
    pub id: String,
    pub name: String,
    /// Grant for the report period, pro-rated from the quota's own periods.
    pub granted_gpu_hours: Option<f64>,
    #[serde(flatten)]
    pub figures: Figures,
    /// Allocated plus unscheduled GPU-hours against the grant, percent.
    pub share_of_grant_pct: Option<f64>,
    pub efficiency_pct: Option<f64>,
    pub jobs: usize,
    pub users: usize,
    /// Highest hourly mean of GPUs in use (allocated or unscheduled).
    pub peak_concurrent_gpus: f64,
    pub breakdown: Vec<Slice>,
    pub top_users: Vec<TopUser>,
    pub top_jobs: Vec<TopJob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub node: String,
    pub from_s: i64,
    pub to_s: i64,
    pub missing_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub nodes: usize,
    pub expected_node_hours: f64,
    pub received_node_hours: f64,
    /// Share of the expected node-intervals received, percent.
    pub coverage_pct: Option<f64>,
    pub gaps: Vec<Gap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    #[serde(flatten)]
    pub figures: Figures,
    pub allocated_share_pct: Option<f64>,
    pub utilised_share_pct: Option<f64>,
    /// Share of the expected GPU-time during which GPUs reported, percent.
    pub availability_pct: Option<f64>,
    pub coverage: Coverage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayPoint {
    pub day_s: i64,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub cluster_name: String,
    pub generated_ms: i64,
    pub period: ReportPeriod,
    pub utilisation_signal: String,
    pub anonymised: bool,
    pub breakdown_by: String,
    pub cluster: ClusterReport,
    pub institutes: Vec<InstituteReport>,
    /// All institutes together, `unassigned` included: equals the ledger.
    pub total: Figures,
    pub daily: Vec<DayPoint>,
}

/// What a report is built from.
pub struct Inputs<'a> {
    pub cluster_name: &'a str,
    pub institutes: &'a [Institute],
    pub days: &'a [DayRow],
    /// (hour, institute, amounts) from the hourly roll-up.
    pub hours: &'a [(i64, String, Amounts)],
    pub coverage: &'a CoverageInput,
    pub now_s: i64,
}

/// Options of a report.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub institute: Option<String>,
    pub anonymise: bool,
    /// Salt of the pseudonyms (stable for a given salt).
    pub salt: String,
}

/// A pseudonym for a user name: stable for a salt, not reversible without it.
pub fn pseudonym(salt: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    if name.is_empty() {
        return String::new();
    }
    let h = Sha256::digest(format!("{salt}\0{name}").as_bytes());
    format!("user-{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3])
}

/// Grant for `p` from a quota, pro-rated by overlap with the quota's periods.
pub fn prorated_grant(q: &QuotaSpec, p: &ReportPeriod) -> f64 {
    let (start, end) = (p.start_s * 1000, p.end_s * 1000);
    let mut total = 0.0;
    let mut qp = q.period_at(start);
    loop {
        let overlap = (qp.end_ms.min(end) - qp.start_ms.max(start)).max(0) as f64;
        total += q.gpu_hours * overlap / (qp.end_ms - qp.start_ms) as f64;
        if q.period.is_none() || qp.end_ms >= end {
            break;
        }
        qp = q.period_at(qp.end_ms);
    }
    total
}

/// Month label and start of a day.
fn month_of(day_s: i64) -> (String, i64) {
    let (y, m, _) = civil_from_days(day_s.div_euclid(DAY));
    (format!("{y:04}-{m:02}"), days_from_civil(y, m, 1) * DAY)
}

/// Week (Monday) label and start of a day.
fn week_of(day_s: i64) -> (String, i64) {
    let d = day_s.div_euclid(DAY);
    // 1970-01-01 was a Thursday: Monday = d - ((d + 3) mod 7).
    let monday = d - (d + 3).rem_euclid(7);
    (format_date(monday * DAY * 1000), monday * DAY)
}

/// Builds the report.
pub fn build(inp: &Inputs, period: &ReportPeriod, opts: &Options, generated_ms: i64) -> Report {
    let weekly = period.days() < 59;
    let slice_of = |d: i64| if weekly { week_of(d) } else { month_of(d) };
    let in_period = |d: i64| d >= period.start_s && d < period.end_s;
    let name = |u: &str| if opts.anonymise { pseudonym(&opts.salt, u) } else { u.to_string() };

    let mut total = Figures::default();
    let mut cluster = Figures::default();
    #[derive(Default)]
    struct Acc {
        figures: Figures,
        jobs: BTreeSet<String>,
        users: BTreeSet<String>,
        slices: BTreeMap<i64, (String, Figures)>,
        by_user: HashMap<String, (f64, f64)>,
        by_job: HashMap<String, (String, String, f64, f64)>,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut daily: BTreeMap<i64, Figures> = BTreeMap::new();
    for r in inp.days.iter().filter(|r| in_period(r.day)) {
        cluster.add(&r.amounts);
        daily.entry(r.day).or_default().add(&r.amounts);
        if r.institute.is_empty() {
            continue; // idle capacity
        }
        total.add(&r.amounts);
        if opts.institute.as_deref().is_some_and(|i| i != r.institute) {
            continue;
        }
        let a = acc.entry(r.institute.clone()).or_default();
        a.figures.add(&r.amounts);
        if !r.job.is_empty() {
            a.jobs.insert(r.job.clone());
        }
        if !r.user.is_empty() {
            a.users.insert(r.user.clone());
        }
        let (label, start) = slice_of(r.day);
        a.slices.entry(start).or_insert_with(|| (label, Figures::default())).1.add(&r.amounts);
        let gh = (r.amounts.allocated_s + r.amounts.unscheduled_s) / 3600.0;
        let ut = r.amounts.busy_s / 3600.0;
        let u = a.by_user.entry(r.user.clone()).or_default();
        u.0 += gh;
        u.1 += ut;
        if !r.job.is_empty() {
            let j = a.by_job.entry(r.job.clone()).or_insert_with(|| (r.user.clone(), r.account.clone(), 0.0, 0.0));
            j.2 += gh;
            j.3 += ut;
        }
    }
    let mut peak: HashMap<&str, f64> = HashMap::new();
    for (_, i, a) in inp.hours.iter().filter(|(h, _, _)| in_period(*h)) {
        let g = (a.allocated_s + a.unscheduled_s) / 3600.0;
        let e = peak.entry(i.as_str()).or_default();
        *e = e.max(g);
    }
    // Institutes of the config (even without use), then `unassigned` if it has use.
    let mut ids: Vec<(String, String, Option<&QuotaSpec>)> = inp
        .institutes
        .iter()
        .filter(|i| opts.institute.as_deref().is_none_or(|x| x == i.id))
        .map(|i| (i.id.clone(), i.display_name().to_string(), i.quota.as_ref()))
        .collect();
    if acc.contains_key(UNASSIGNED) && opts.institute.as_deref().is_none_or(|x| x == UNASSIGNED) {
        ids.push((UNASSIGNED.into(), "Unassigned (no institute claims it)".into(), None));
    }
    let institutes = ids
        .into_iter()
        .map(|(id, display, quota)| {
            let a = acc.remove(&id).unwrap_or_default();
            let granted = quota.map(|q| prorated_grant(q, period));
            let used = a.figures.allocated_gpu_hours + a.figures.unscheduled_gpu_hours;
            let mut top_users: Vec<TopUser> = a
                .by_user
                .into_iter()
                .map(|(u, (g, ut))| TopUser {
                    user: if u.is_empty() { "(unknown)".into() } else { name(&u) },
                    gpu_hours: g,
                    utilised_gpu_hours: ut,
                })
                .collect();
            top_users.sort_by(|x, y| y.gpu_hours.total_cmp(&x.gpu_hours).then(x.user.cmp(&y.user)));
            top_users.truncate(TOP);
            let mut top_jobs: Vec<TopJob> = a
                .by_job
                .into_iter()
                .map(|(j, (u, acct, g, ut))| TopJob {
                    job: j,
                    user: name(&u),
                    account: acct,
                    gpu_hours: g,
                    utilised_gpu_hours: ut,
                })
                .collect();
            top_jobs.sort_by(|x, y| y.gpu_hours.total_cmp(&x.gpu_hours).then(x.job.cmp(&y.job)));
            top_jobs.truncate(TOP);
            InstituteReport {
                share_of_grant_pct: granted.filter(|g| *g > 0.0).map(|g| used / g * 100.0),
                efficiency_pct: a.figures.efficiency_pct(),
                granted_gpu_hours: granted,
                jobs: a.jobs.len(),
                users: a.users.len(),
                peak_concurrent_gpus: peak.get(id.as_str()).copied().unwrap_or(0.0),
                breakdown: a
                    .slices
                    .into_iter()
                    .map(|(start_s, (label, figures))| Slice { label, start_s, figures })
                    .collect(),
                top_users,
                top_jobs,
                figures: a.figures,
                id,
                name: display,
            }
        })
        .collect();
    let coverage = coverage(inp.coverage, period, inp.now_s);
    let gpus_per_node = if coverage.received_node_hours > 0.0 {
        cluster.capacity_gpu_hours / coverage.received_node_hours
    } else {
        0.0
    };
    let expected_gpu_hours = coverage.expected_node_hours * gpus_per_node;
    let share = |x: f64| (cluster.capacity_gpu_hours > 0.0).then(|| x / cluster.capacity_gpu_hours * 100.0);
    Report {
        schema_version: SCHEMA_VERSION,
        cluster_name: inp.cluster_name.to_string(),
        generated_ms,
        period: period.clone(),
        utilisation_signal: "NVML GPU utilisation (share of time a kernel was running)".into(),
        anonymised: opts.anonymise,
        breakdown_by: if weekly { "week" } else { "month" }.into(),
        cluster: ClusterReport {
            allocated_share_pct: share(cluster.allocated_gpu_hours),
            utilised_share_pct: share(cluster.utilised_gpu_hours),
            availability_pct: (expected_gpu_hours > 0.0)
                .then(|| cluster.capacity_gpu_hours / expected_gpu_hours * 100.0),
            figures: cluster,
            coverage,
        },
        institutes,
        total,
        daily: daily.into_iter().map(|(day_s, figures)| DayPoint { day_s, figures }).collect(),
    }
}

/// What the coverage record says about a period, in the shape the store
/// can answer without sending every hour of every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageInput {
    /// Per node: first and last hour with a report, and seconds received (at most 3600 an hour).
    pub spans: Vec<(String, i64, i64, f64)>,
    /// Hours covered less than 90 %: (node, hour, covered seconds).
    pub short: Vec<(String, i64, f64)>,
    /// Runs of hours with no report at all: (node, last hour before, next hour after).
    pub holes: Vec<(String, i64, i64)>,
}

impl CoverageInput {
    /// From (node, hour, covered seconds) rows (tests, small periods).
    pub fn from_hours(rows: &[(String, i64, f64)]) -> Self {
        let mut by: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
        for (n, h, c) in rows {
            *by.entry(n).or_default().entry(*h).or_default() += c;
        }
        let mut out = CoverageInput::default();
        for (n, hours) in by {
            let first = *hours.keys().next().expect("non-empty");
            let last = *hours.keys().next_back().expect("non-empty");
            out.spans.push((n.to_string(), first, last, hours.values().map(|c| c.min(3600.0)).sum()));
            let mut prev: Option<i64> = None;
            for (h, c) in &hours {
                if *c < 3240.0 {
                    out.short.push((n.to_string(), *h, *c));
                }
                if let Some(p) = prev
                    && h - p > 3600
                {
                    out.holes.push((n.to_string(), p, *h));
                }
                prev = Some(*h);
            }
        }
        out
    }
}

/// Coverage: per node, from its first hour in the period to the end of the
/// period (or now), hours with less than 90 % covered are gaps.
fn coverage(inp: &CoverageInput, period: &ReportPeriod, now_s: i64) -> Coverage {
    let end = period.end_s.min(now_s.div_euclid(3600) * 3600);
    let (mut expected, mut received) = (0.0, 0.0);
    let mut missing: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    for (node, first, last, got) in &inp.spans {
        let span_end = end.max(last + 3600);
        expected += (span_end - first) as f64 / 3600.0;
        received += got / 3600.0;
        let m = missing.entry(node.as_str()).or_default();
        let mut h = last + 3600;
        while h < span_end {
            m.insert(h, 1.0);
            h += 3600;
        }
    }
    for (node, h, c) in &inp.short {
        missing.entry(node.as_str()).or_default().insert(*h, (3600.0 - c.min(3600.0)) / 3600.0);
    }
    for (node, before, after) in &inp.holes {
        let m = missing.entry(node.as_str()).or_default();
        let mut h = before + 3600;
        while h < *after {
            m.insert(h, 1.0);
            h += 3600;
        }
    }
    let mut gaps = Vec::new();
    for (node, hours) in missing {
        let mut run: Option<(i64, i64, f64)> = None;
        for (h, miss) in hours {
            match &mut run {
                Some((_, to, total)) if *to == h => {
                    *to = h + 3600;
                    *total += miss;
                }
                _ => {
                    if let Some((from, to, total)) = run.take() {
                        gaps.push(Gap { node: node.to_string(), from_s: from, to_s: to, missing_hours: total });
                    }
                    run = Some((h, h + 3600, miss));
                }
            }
        }
        if let Some((from, to, total)) = run {
            gaps.push(Gap { node: node.to_string(), from_s: from, to_s: to, missing_hours: total });
        }
    }
    gaps.sort_by(|a, b| {
        b.missing_hours.total_cmp(&a.missing_hours).then(a.node.cmp(&b.node)).then(a.from_s.cmp(&b.from_s))
    });
    Coverage {
        nodes: inp.spans.len(),
        expected_node_hours: expected,
        received_node_hours: received,
        coverage_pct: (expected > 0.0).then(|| received / expected * 100.0),
        gaps,
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Md,
    Html,
}

/// Renders a report in a format.
pub fn render(r: &Report, f: Format) -> String {
    match f {
        Format::Csv => csv::render(r),
        Format::Json => serde_json::to_string_pretty(r).expect("report serialises") + "\n",
        Format::Md => md::render(r),
        Format::Html => html::render(r),
    }
}

#[cfg(test)]
mod tests;
