//! Building a report from the ledger's roll-ups (pure).

use super::coverage::{CoverageInput, coverage};
use super::*;
use crate::accounting::{DayRow, HourRow, UNASSIGNED};
use crate::api::findings::{Finding, FindingKind, Severity};
use crate::config::Institute;
use crate::quota::{PeriodKind, Quota, QuotaPeriod};
use crate::time::{civil_from_days, days_from_civil, format_date};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const DAY: i64 = 86_400;
const TOP: usize = 10;

/// What a report is built from.
pub struct Inputs<'a> {
    pub cluster_name: &'a str,
    pub institutes: &'a [Institute],
    pub days: &'a [DayRow],
    /// The hourly roll-up per institute.
    pub hours: &'a [HourRow],
    pub coverage: &'a CoverageInput,
    /// For an institute-scoped report: the nodes its use ran on in the period
    /// (coverage is shown for those only).
    pub nodes: Option<&'a BTreeSet<String>>,
    pub now_ms: i64,
    /// Findings that held at some time in the period.
    pub findings: &'a [Finding],
}

/// Options of a report.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub institute: Option<String>,
    pub anonymise: bool,
    /// Secret key of the pseudonyms (kept in the store; stable for a key).
    pub key: String,
}

/// A pseudonym for a user name: HMAC-SHA-256 of the name under a secret key,
/// stable for the key, not reversible (nor guessable from a list of names) without it.
pub fn pseudonym(key: &str, name: &str) -> String {
    use hmac::{Hmac, Mac};
    if name.is_empty() {
        return String::new();
    }
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(name.as_bytes());
    let h = mac.finalize().into_bytes();
    format!("user-{}", h[..6].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The store's key for pseudonyms (created on first use: 32 random characters).
pub const PSEUDONYM_KEY: &str = "pseudonyms";

/// Grant for `p` from a quota, pro-rated by overlap with the quota's periods.
pub fn prorated_grant(q: &Quota, p: &ReportPeriod) -> f64 {
    grant(q, p).for_report_gpu_hours
}

/// The grant of a quota for a report period, and how it was found.
pub fn grant(q: &Quota, p: &ReportPeriod) -> Grant {
    let (start, end) = (p.start_s * 1000, p.end_s * 1000);
    let mut total = 0.0;
    let mut qp = q.period_at(start);
    let same = qp.start_ms == start && qp.end_ms == end;
    loop {
        let overlap = (qp.end_ms.min(end) - qp.start_ms.max(start)).max(0) as f64;
        total += q.gpu_hours * overlap / (qp.end_ms - qp.start_ms) as f64;
        if matches!(q.period, QuotaPeriod::Explicit(_)) || qp.end_ms >= end {
            break;
        }
        qp = q.period_at(qp.end_ms);
    }
    let quota_period = match &q.period {
        QuotaPeriod::Calendar(PeriodKind::Month) => "month".into(),
        QuotaPeriod::Calendar(PeriodKind::Quarter) => "quarter".into(),
        QuotaPeriod::Calendar(PeriodKind::Year) => "year".into(),
        QuotaPeriod::Explicit(e) => e.label.clone(),
    };
    Grant { per_period_gpu_hours: q.gpu_hours, quota_period, for_report_gpu_hours: total, prorated: !same }
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

/// What an institute's rows add up to while the report is built.
#[derive(Default)]
struct Acc {
    figures: Figures,
    jobs: BTreeSet<String>,
    users: BTreeSet<String>,
    slices: BTreeMap<i64, (String, Figures)>,
    by_user: HashMap<String, Figures>,
    /// Job → (user, account, figures).
    by_job: HashMap<String, (String, String, Figures)>,
}

fn top<T>(mut v: Vec<T>, hours: impl Fn(&T) -> f64, key: impl Fn(&T) -> &str) -> Vec<T> {
    v.sort_by(|x, y| hours(y).total_cmp(&hours(x)).then(key(x).cmp(key(y))));
    v.truncate(TOP);
    v
}

/// GPU-hours used: allocated plus unscheduled.
fn used(f: &Figures) -> f64 {
    f.allocated_gpu_hours + f.unscheduled_gpu_hours
}

/// Builds the report.
/// Counts by kind, and the GPUs that failed, of the findings the report may show.
fn summarise(findings: &[Finding], institute: Option<&str>) -> FindingsSummary {
    let shown: Vec<&Finding> =
        findings.iter().filter(|f| institute.is_none_or(|i| f.institute.as_deref() == Some(i))).collect();
    let mut counts: BTreeMap<(Severity, FindingKind), u64> = BTreeMap::new();
    for f in &shown {
        *counts.entry((f.severity, f.kind)).or_default() += 1;
    }
    let failed = [FindingKind::GpuLost, FindingKind::Xid, FindingKind::EccUncorrectable];
    FindingsSummary {
        counts: counts
            .into_iter()
            .rev()
            .map(|((severity, kind), count)| FindingCount { kind, severity, count })
            .collect(),
        failed_gpus: shown.into_iter().filter(|f| failed.contains(&f.kind)).cloned().collect(),
    }
}

pub fn build(inp: &Inputs, period: &ReportPeriod, opts: &Options, generated_ms: i64) -> Report {
    let weekly = period.days() < 59;
    let slice_of = |d: i64| if weekly { week_of(d) } else { month_of(d) };
    let in_period = |d: i64| d >= period.start_s && d < period.end_s;
    let name = |u: &str| if opts.anonymise { pseudonym(&opts.key, u) } else { u.to_string() };
    let mine = |i: &str| opts.institute.as_deref().is_none_or(|x| x == i);

    let mut total = Figures::default();
    let mut cluster = Figures::default();
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut daily: BTreeMap<i64, Figures> = BTreeMap::new();
    for r in inp.days.iter().filter(|r| in_period(r.day)) {
        cluster.add(&r.amounts);
        daily.entry(r.day).or_default().add(&r.amounts);
        if r.institute.is_empty() || !mine(&r.institute) {
            continue; // idle capacity, or another institute's
        }
        total.add(&r.amounts);
        let a = acc.entry(r.institute.clone()).or_default();
        a.figures.add(&r.amounts);
        if !r.job.is_empty() {
            a.jobs.insert(r.job.clone());
            let j = a
                .by_job
                .entry(r.job.clone())
                .or_insert_with(|| (r.user.clone(), r.account.clone(), Figures::default()));
            j.2.add(&r.amounts);
        }
        if !r.user.is_empty() {
            a.users.insert(r.user.clone());
        }
        let (label, start) = slice_of(r.day);
        a.slices.entry(start).or_insert_with(|| (label, Figures::default())).1.add(&r.amounts);
        a.by_user.entry(r.user.clone()).or_default().add(&r.amounts);
    }
    let mut peaks: HashMap<&str, (f64, f64)> = HashMap::new();
    for hr in inp.hours.iter().filter(|h| in_period(h.hour)) {
        let e = peaks.entry(hr.institute.as_str()).or_default();
        e.0 = e.0.max(hr.peak_held_gpus);
        e.1 = e.1.max(hr.peak_busy_gpus);
    }
    // Institutes of the config (even without use), then `unassigned` if it has use.
    let mut ids: Vec<(String, String, Option<&Quota>)> = inp
        .institutes
        .iter()
        .filter(|i| mine(&i.id))
        .map(|i| (i.id.clone(), i.display_name().to_string(), i.quota.as_ref()))
        .collect();
    if acc.contains_key(UNASSIGNED) && mine(UNASSIGNED) {
        ids.push((UNASSIGNED.into(), "Unassigned (no institute claims it)".into(), None));
    }
    let institutes = ids
        .into_iter()
        .map(|(id, display, quota)| {
            let a = acc.remove(&id).unwrap_or_default();
            let grant = quota.map(|q| grant(q, period));
            let granted = grant.as_ref().map(|g| g.for_report_gpu_hours);
            let top_users = top(
                a.by_user
                    .into_iter()
                    .map(|(u, figures)| TopUser {
                        user: if u.is_empty() { "(unknown)".into() } else { name(&u) },
                        figures,
                    })
                    .collect(),
                |u| used(&u.figures),
                |u| &u.user,
            );
            let top_jobs = top(
                a.by_job
                    .into_iter()
                    .map(|(job, (u, account, figures))| TopJob { job, user: name(&u), account, figures })
                    .collect(),
                |j| used(&j.figures),
                |j| &j.job,
            );
            let (peak_held_gpus, peak_busy_gpus) = peaks.get(id.as_str()).copied().unwrap_or_default();
            InstituteReport {
                share_of_grant_pct: granted.filter(|g| *g > 0.0).map(|g| used(&a.figures) / g * 100.0),
                efficiency_pct: a.figures.efficiency_pct(),
                granted_gpu_hours: granted,
                grant,
                jobs: a.jobs.len(),
                users: a.users.len(),
                peak_held_gpus,
                peak_busy_gpus,
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
    let coverage = coverage(inp.coverage, period, inp.now_ms, inp.nodes);
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
        institute: opts.institute.clone(),
        breakdown_by: if weekly { "week" } else { "month" }.into(),
        cluster: ClusterReport {
            allocated_share_pct: share(cluster.allocated_gpu_hours),
            utilised_share_pct: share(cluster.utilised_gpu_hours),
            availability_pct: (expected_gpu_hours > 0.0)
                .then(|| (cluster.capacity_gpu_hours / expected_gpu_hours * 100.0).min(100.0)),
            figures: cluster,
            coverage,
        },
        institutes,
        total,
        daily: daily.into_iter().map(|(day_s, figures)| DayPoint { day_s, figures }).collect(),
        findings: summarise(inp.findings, opts.institute.as_deref()),
    }
}
