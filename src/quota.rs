//! Quotas: periods, burn-down and projection (pure functions).
//!
//! Quota use counts the GPU-hours charged to the institute: allocated
//! (scheduler or job) plus unscheduled use by its members. Settled use is that
//! of jobs no longer running; in flight is that of running jobs so far;
//! committed is what running jobs may still use until their time limit, when
//! the scheduler says it. The projection extends the use so far at the burn
//! rate of the last 7 days to the end of the period.
//!
//! A quota is written in the configuration as a [`QuotaSpec`] and checked once,
//! when the configuration is loaded, into a [`Quota`].

use crate::accounting::Amounts;
pub use crate::api::quota::{Breakdown, BurnDown, Period, State};
use crate::time::{DAY_MS, HOUR_MS, civil_from_days, days_from_civil, parse_instant};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// A quota, as written in the collector config under an institute.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    /// GPU-hours granted per period.
    pub gpu_hours: f64,
    /// `month`, `quarter` or `year`; or leave it out and give `start` and `end`.
    #[serde(default)]
    pub period: Option<String>,
    /// First day of an explicit period (`YYYY-MM-DD`).
    #[serde(default)]
    pub start: Option<String>,
    /// Last day of an explicit period, inclusive.
    #[serde(default)]
    pub end: Option<String>,
    /// Cap on GPUs in use at once.
    #[serde(default)]
    pub max_gpus: Option<u32>,
    /// Warn from this share of the grant, percent.
    #[serde(default = "default_warn")]
    pub warn_at_pct: f64,
    /// Sub-quotas in GPU-hours per Slurm account.
    #[serde(default)]
    pub accounts: BTreeMap<String, f64>,
}

fn default_warn() -> f64 {
    80.0
}

/// Calendar periods a quota renews on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
}

impl PeriodKind {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "month" => Ok(Self::Month),
            "quarter" => Ok(Self::Quarter),
            "year" => Ok(Self::Year),
            other => Err(format!("period `{other}` is not month, quarter or year")),
        }
    }
}

/// When a quota's grant applies.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaPeriod {
    /// Renews every calendar month, quarter or year.
    Calendar(PeriodKind),
    /// One explicit period.
    Explicit(Period),
}

/// A checked quota.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub gpu_hours: f64,
    pub period: QuotaPeriod,
    pub max_gpus: Option<u32>,
    pub warn_at_pct: f64,
    pub accounts: BTreeMap<String, f64>,
}

/// The calendar period of `kind` containing `at_ms`.
pub fn period_containing(kind: PeriodKind, at_ms: i64) -> Period {
    let (y, m, _) = civil_from_days(at_ms.div_euclid(DAY_MS));
    let month_start = |y: i64, m: u32| days_from_civil(y, m, 1) * DAY_MS;
    let next = |y: i64, m: u32, n: u32| {
        let idx = y * 12 + (m as i64 - 1) + n as i64;
        (idx.div_euclid(12), (idx.rem_euclid(12) + 1) as u32)
    };
    let (start, (ey, em), label) = match kind {
        PeriodKind::Month => ((y, m), next(y, m, 1), format!("{y:04}-{m:02}")),
        PeriodKind::Quarter => {
            let qm = (m - 1) / 3 * 3 + 1;
            ((y, qm), next(y, qm, 3), format!("{y:04}-Q{}", (m - 1) / 3 + 1))
        }
        PeriodKind::Year => ((y, 1), (y + 1, 1), format!("{y:04}")),
    };
    Period { label, start_ms: month_start(start.0, start.1), end_ms: month_start(ey, em) }
}

/// Days in a period.
pub fn period_days(p: &Period) -> f64 {
    (p.end_ms - p.start_ms) as f64 / DAY_MS as f64
}

/// Parses a period name: `2026`, `2026-Q1`, `2026-03`.
pub fn parse_period(s: &str) -> Result<Period, String> {
    let bad = || format!("`{s}` is not a period: write 2026, 2026-Q1 or 2026-03");
    let (y, rest) = s.split_once('-').map(|(a, b)| (a, Some(b))).unwrap_or((s, None));
    let y: i64 = y.parse().map_err(|_| bad())?;
    if !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    let m = match rest {
        None => return Ok(period_containing(PeriodKind::Year, days_from_civil(y, 1, 1) * DAY_MS)),
        Some(q) if q.starts_with(['Q', 'q']) => {
            let q: u32 = q[1..].parse().map_err(|_| bad())?;
            if !(1..=4).contains(&q) {
                return Err(bad());
            }
            return Ok(period_containing(PeriodKind::Quarter, days_from_civil(y, (q - 1) * 3 + 1, 1) * DAY_MS));
        }
        Some(m) => m.parse::<u32>().map_err(|_| bad())?,
    };
    if !(1..=12).contains(&m) {
        return Err(bad());
    }
    Ok(period_containing(PeriodKind::Month, days_from_civil(y, m, 1) * DAY_MS))
}

impl QuotaSpec {
    /// Checks the spec into a [`Quota`]; the message names the key.
    pub fn resolve(&self) -> Result<Quota, String> {
        if !(self.gpu_hours.is_finite() && self.gpu_hours >= 0.0) {
            return Err(format!("quota.gpu_hours = {} must be a number of GPU-hours, 0 or more", self.gpu_hours));
        }
        let period = match (&self.period, &self.start, &self.end) {
            (Some(p), None, None) => {
                QuotaPeriod::Calendar(PeriodKind::parse(p).map_err(|e| format!("quota.period: {e}"))?)
            }
            (None, Some(s), Some(e)) => {
                let start_ms = parse_instant(s).map_err(|e| format!("quota.start: {e}"))?;
                let last_ms = parse_instant(e).map_err(|e| format!("quota.end: {e}"))?;
                if last_ms < start_ms {
                    return Err("quota.end is before quota.start".into());
                }
                QuotaPeriod::Explicit(Period { label: format!("{s}..{e}"), start_ms, end_ms: last_ms + DAY_MS })
            }
            (None, None, None) => return Err("quota needs `period` (month, quarter, year) or `start` and `end`".into()),
            _ => return Err("quota takes either `period` or both `start` and `end`, not a mix".into()),
        };
        if !(0.0..=100.0).contains(&self.warn_at_pct) {
            return Err(format!("quota.warn_at_pct = {} must be within 0..100", self.warn_at_pct));
        }
        let sub: f64 = self.accounts.values().sum();
        if sub > self.gpu_hours + 1e-9 {
            return Err(format!(
                "quota.accounts add up to {sub} GPU-hours, more than quota.gpu_hours = {}",
                self.gpu_hours
            ));
        }
        if let Some((a, v)) = self.accounts.iter().find(|(_, v)| !(v.is_finite() && **v >= 0.0)) {
            return Err(format!("quota.accounts.{a} = {v} must be 0 or more"));
        }
        Ok(Quota {
            gpu_hours: self.gpu_hours,
            period,
            max_gpus: self.max_gpus,
            warn_at_pct: self.warn_at_pct,
            accounts: self.accounts.clone(),
        })
    }
}

impl Quota {
    /// The period of this quota that contains `at_ms` (or the explicit one).
    pub fn period_at(&self, at_ms: i64) -> Period {
        match &self.period {
            QuotaPeriod::Calendar(kind) => period_containing(*kind, at_ms),
            QuotaPeriod::Explicit(p) => p.clone(),
        }
    }
}

/// One ledger row of an institute, as the burn-down needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct UseRow {
    pub hour: i64,
    pub account: String,
    pub user: String,
    pub job: String,
    pub amounts: Amounts,
}

/// A running job of the institute, from live state (and the scheduler).
#[derive(Debug, Clone, PartialEq)]
pub struct RunningJob {
    pub id: String,
    pub gpus: u32,
    /// Seconds left until the job's time limit, when the scheduler says it.
    pub remaining_s: Option<f64>,
}

/// What the ledger, live state and the store say about an institute at an instant.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    /// Its ledger rows covering at least the period and the 7 days before the instant.
    pub rows: &'a [UseRow],
    pub running: &'a [RunningJob],
    pub gpus_in_use: u32,
    /// When the store's data begins; the burn rate is taken over at most the
    /// time since then (None: assume the full 7 days).
    pub data_since_ms: Option<i64>,
}

/// The burn rate is taken over at most this long…
pub const BURN_WINDOW_MS: i64 = 7 * DAY_MS;
/// …and at least this long, so a few minutes of data do not make a rate.
pub const MIN_BURN_WINDOW_MS: i64 = HOUR_MS;

/// Quota use of a row in GPU-hours.
pub fn gpu_hours(a: &Amounts) -> f64 {
    (a.allocated_s + a.unscheduled_s) / 3600.0
}

/// Computes a burn-down; rows at or after `at_ms` are ignored.
pub fn burn_down(institute: &str, name: &str, spec: Option<&Quota>, at_ms: i64, u: &Use) -> BurnDown {
    let Use { rows, running, gpus_in_use, data_since_ms } = *u;
    let period = spec.map(|s| s.period_at(at_ms));
    let (from_ms, to_ms) = match &period {
        Some(p) => (p.start_ms, p.end_ms.min(at_ms)),
        // Without a quota: the calendar month, for the use figures.
        None => (period_containing(PeriodKind::Month, at_ms).start_ms, at_ms),
    };
    let running_ids: HashSet<&str> = running.iter().map(|j| j.id.as_str()).collect();
    let in_hours =
        |r: &UseRow, from: i64, to: i64| r.hour * 1000 >= crate::time::hour_floor_ms(from) && r.hour * 1000 < to;
    let (mut settled, mut in_flight, mut busy, mut allocated) = (0.0, 0.0, 0.0, 0.0);
    let (mut measured, mut sm_active) = (0.0, 0.0);
    let mut by_account: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_user: BTreeMap<String, f64> = BTreeMap::new();
    for r in rows.iter().filter(|r| in_hours(r, from_ms, to_ms)) {
        let h = gpu_hours(&r.amounts);
        if !r.job.is_empty() && running_ids.contains(r.job.as_str()) {
            in_flight += h;
        } else {
            settled += h;
        }
        busy += r.amounts.busy_s / 3600.0;
        allocated += r.amounts.allocated_s / 3600.0;
        measured += r.amounts.gpm_s / 3600.0;
        sm_active += r.amounts.sm_active_s / 3600.0;
        *by_account.entry(r.account.clone()).or_default() += h;
        *by_user.entry(r.user.clone()).or_default() += h;
    }
    let used = settled + in_flight;
    // The burn rate: over the last 7 days, or the time with data if shorter.
    // The window starts on a whole hour (the ledger's buckets) so its sum is exact.
    let window_from = crate::time::hour_ceil_ms(at_ms - BURN_WINDOW_MS).max(data_since_ms.unwrap_or(i64::MIN));
    let window_ms = (at_ms - window_from).max(MIN_BURN_WINDOW_MS);
    let recent: f64 = rows
        .iter()
        .filter(|r| r.hour * 1000 >= crate::time::hour_floor_ms(window_from) && r.hour * 1000 < at_ms)
        .map(|r| gpu_hours(&r.amounts))
        .sum();
    let rate = recent / (window_ms as f64 / DAY_MS as f64);
    let committed_known = running.iter().any(|j| j.remaining_s.is_some());
    // What running jobs may still use, bounded by the end of the period.
    let left_h = period.as_ref().map(|p| (p.end_ms - at_ms).max(0) as f64 / HOUR_MS as f64).unwrap_or(f64::INFINITY);
    let committed: f64 =
        running.iter().filter_map(|j| j.remaining_s.map(|s| (s / 3600.0).min(left_h) * j.gpus as f64)).sum();
    let granted = spec.map(|s| s.gpu_hours);
    let mut reasons = Vec::new();
    let (mut projected, mut runs_out) = (None, None);
    let mut state = State::NoQuota;
    if let (Some(spec), Some(p), Some(g)) = (spec, &period, granted) {
        let days_left = (p.end_ms - at_ms).max(0) as f64 / DAY_MS as f64;
        let proj = used + rate * days_left;
        projected = Some(proj);
        let remaining = g - used;
        if remaining > 0.0 && rate > 0.0 {
            let t = at_ms + (remaining / rate * DAY_MS as f64) as i64;
            if t < p.end_ms {
                runs_out = Some(t);
            }
        } else if remaining <= 0.0 {
            runs_out = Some(at_ms.min(p.end_ms));
        }
        state = State::Ok;
        if used > g {
            state = State::Exceeded;
            reasons.push(format!("used {used:.0} of {g:.0} GPU-hours"));
        } else if g > 0.0 && used >= g * spec.warn_at_pct / 100.0 {
            state = State::Warning;
            reasons.push(format!("used {:.0} % of the grant (warning at {:.0} %)", used / g * 100.0, spec.warn_at_pct));
        } else if proj > g {
            state = State::Warning;
            reasons.push("projected to exceed the grant before the period ends".into());
        }
        if let Some(cap) = spec.max_gpus
            && gpus_in_use > cap
        {
            if state == State::Ok {
                state = State::Warning;
            }
            reasons.push(format!("{gpus_in_use} GPUs in use, over the cap of {cap}"));
        }
    }
    let pct = |u: f64, g: Option<f64>| g.filter(|g| *g > 0.0).map(|g| u / g * 100.0);
    let sub = spec.map(|s| &s.accounts);
    let mut accounts: Vec<Breakdown> = by_account
        .into_iter()
        .map(|(k, u)| {
            let g = sub.and_then(|s| s.get(&k).copied());
            Breakdown { share_pct: pct(u, g), granted_gpu_hours: g, used_gpu_hours: u, key: k }
        })
        .collect();
    // Sub-quotas with no use yet still show.
    if let Some(sub) = sub {
        for (k, g) in sub {
            if !accounts.iter().any(|b| &b.key == k) {
                accounts.push(Breakdown {
                    key: k.clone(),
                    used_gpu_hours: 0.0,
                    granted_gpu_hours: Some(*g),
                    share_pct: Some(0.0),
                });
            }
        }
        for b in &accounts {
            if let (Some(g), Some(p)) = (b.granted_gpu_hours, b.share_pct)
                && p > 100.0
            {
                reasons.push(format!("account {} used {:.0} of its {g:.0} GPU-hours", b.key, b.used_gpu_hours));
                if state == State::Ok {
                    state = State::Warning;
                }
            }
        }
    }
    accounts.sort_by(|a, b| b.used_gpu_hours.total_cmp(&a.used_gpu_hours).then(a.key.cmp(&b.key)));
    let mut users: Vec<Breakdown> = by_user
        .into_iter()
        .map(|(k, u)| Breakdown { key: k, used_gpu_hours: u, granted_gpu_hours: None, share_pct: pct(u, granted) })
        .collect();
    users.sort_by(|a, b| b.used_gpu_hours.total_cmp(&a.used_gpu_hours).then(a.key.cmp(&b.key)));
    BurnDown {
        institute: institute.to_string(),
        name: name.to_string(),
        at_ms,
        granted_gpu_hours: granted,
        used_gpu_hours: used,
        settled_gpu_hours: settled,
        in_flight_gpu_hours: in_flight,
        committed_gpu_hours: committed,
        committed_known,
        remaining_gpu_hours: granted.map(|g| g - used),
        used_pct: pct(used, granted),
        burn_rate_gpu_hours_per_day: rate,
        burn_window_s: window_ms as f64 / 1000.0,
        projected_pct: projected.and_then(|p| pct(p, granted)),
        projected_gpu_hours: projected,
        runs_out_ms: runs_out,
        gpus_in_use,
        max_gpus: spec.and_then(|s| s.max_gpus),
        queued_gpus: None,
        busy_gpu_hours: busy,
        efficiency_pct: (allocated > 0.0).then(|| busy / allocated * 100.0),
        gpm_measured_gpu_hours: (measured > 0.0).then_some(measured),
        sm_active_gpu_hours: (measured > 0.0).then_some(sm_active),
        state,
        reasons,
        by_account: accounts,
        by_user: users,
        period,
    }
}

#[cfg(test)]
mod tests;
