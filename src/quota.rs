//! Quotas: periods, burn-down and projection (pure functions).
//!
//! Quota use counts the GPU-hours charged to the institute: allocated
//! (scheduler or job) plus unscheduled use by its members. Settled use is that
//! of jobs no longer running; in flight is that of running jobs so far;
//! committed is what running jobs may still use until their time limit, when
//! the scheduler says it. The projection extends the use so far at the burn
//! rate of the last 7 days to the end of the period.

use crate::accounting::Amounts;
use crate::time::{civil_from_days, days_from_civil, days_in_month, parse_instant};
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

/// A period [start, end) in UTC milliseconds, with a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub label: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

const DAY_MS: i64 = 86_400_000;

impl Period {
    pub fn days(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / DAY_MS as f64
    }

    /// The calendar period of `kind` containing `at_ms`.
    pub fn containing(kind: &str, at_ms: i64) -> Result<Period, String> {
        let (y, m, _) = civil_from_days(at_ms.div_euclid(DAY_MS));
        let month_start = |y: i64, m: u32| days_from_civil(y, m, 1) * DAY_MS;
        let next = |y: i64, m: u32, n: u32| {
            let idx = y * 12 + (m as i64 - 1) + n as i64;
            (idx.div_euclid(12), (idx.rem_euclid(12) + 1) as u32)
        };
        let (start, (ey, em), label) = match kind {
            "month" => ((y, m), next(y, m, 1), format!("{y:04}-{m:02}")),
            "quarter" => {
                let qm = (m - 1) / 3 * 3 + 1;
                ((y, qm), next(y, qm, 3), format!("{y:04}-Q{}", (m - 1) / 3 + 1))
            }
            "year" => ((y, 1), (y + 1, 1), format!("{y:04}")),
            other => return Err(format!("period `{other}` is not month, quarter or year")),
        };
        Ok(Period { label, start_ms: month_start(start.0, start.1), end_ms: month_start(ey, em) })
    }

    /// Parses a period name: `2026`, `2026-Q1`, `2026-03`.
    pub fn parse(s: &str) -> Result<Period, String> {
        let bad = || format!("`{s}` is not a period: write 2026, 2026-Q1 or 2026-03");
        let (y, rest) = s.split_once('-').map(|(a, b)| (a, Some(b))).unwrap_or((s, None));
        let y: i64 = y.parse().map_err(|_| bad())?;
        if !(1970..=9999).contains(&y) {
            return Err(bad());
        }
        let m = match rest {
            None => return Period::containing("year", days_from_civil(y, 1, 1) * DAY_MS),
            Some(q) if q.starts_with(['Q', 'q']) => {
                let q: u32 = q[1..].parse().map_err(|_| bad())?;
                if !(1..=4).contains(&q) {
                    return Err(bad());
                }
                return Period::containing("quarter", days_from_civil(y, (q - 1) * 3 + 1, 1) * DAY_MS);
            }
            Some(m) => m.parse::<u32>().map_err(|_| bad())?,
        };
        if !(1..=12).contains(&m) {
            return Err(bad());
        }
        Period::containing("month", days_from_civil(y, m, 1) * DAY_MS)
    }
}

impl QuotaSpec {
    /// Checks the spec; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.gpu_hours.is_finite() && self.gpu_hours >= 0.0) {
            return Err(format!("quota.gpu_hours = {} must be a number of GPU-hours, 0 or more", self.gpu_hours));
        }
        match (&self.period, &self.start, &self.end) {
            (Some(p), None, None) => {
                Period::containing(p, 0).map_err(|e| format!("quota.period: {e}"))?;
            }
            (None, Some(s), Some(e)) => {
                let s = parse_instant(s).map_err(|e| format!("quota.start: {e}"))?;
                let e = parse_instant(e).map_err(|e| format!("quota.end: {e}"))?;
                if e < s {
                    return Err("quota.end is before quota.start".into());
                }
            }
            (None, None, None) => return Err("quota needs `period` (month, quarter, year) or `start` and `end`".into()),
            _ => return Err("quota takes either `period` or both `start` and `end`, not a mix".into()),
        }
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
        Ok(())
    }

    /// The period of this quota that contains `at_ms` (or the explicit one).
    pub fn period_at(&self, at_ms: i64) -> Period {
        match (&self.period, &self.start, &self.end) {
            (Some(p), _, _) => Period::containing(p, at_ms).expect("validated"),
            (None, Some(s), Some(e)) => {
                let start_ms = parse_instant(s).expect("validated");
                let end_ms = parse_instant(e).expect("validated") + DAY_MS;
                Period { label: format!("{s}..{e}"), start_ms, end_ms }
            }
            _ => unreachable!("validated"),
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

/// Quota use of a row in GPU-hours.
pub fn gpu_hours(a: &Amounts) -> f64 {
    (a.allocated_s + a.unscheduled_s) / 3600.0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Breakdown {
    pub key: String,
    pub used_gpu_hours: f64,
    pub granted_gpu_hours: Option<f64>,
    pub share_pct: Option<f64>,
}

/// The burn-down of one institute at one instant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BurnDown {
    pub institute: String,
    pub name: String,
    pub at_ms: i64,
    pub period: Option<Period>,
    pub granted_gpu_hours: Option<f64>,
    pub used_gpu_hours: f64,
    pub settled_gpu_hours: f64,
    pub in_flight_gpu_hours: f64,
    pub committed_gpu_hours: f64,
    /// False when no running job had a time limit from the scheduler.
    pub committed_known: bool,
    pub remaining_gpu_hours: Option<f64>,
    pub used_pct: Option<f64>,
    /// GPU-hours per day over the 7 days before `at`.
    pub burn_rate_gpu_hours_per_day: f64,
    pub projected_gpu_hours: Option<f64>,
    pub projected_pct: Option<f64>,
    /// When the grant runs out at the burn rate, if within the period.
    pub runs_out_ms: Option<i64>,
    pub gpus_in_use: u32,
    pub max_gpus: Option<u32>,
    /// GPUs asked for by the institute's pending jobs (queue pressure), when the scheduler says.
    #[serde(default)]
    pub queued_gpus: Option<u32>,
    pub busy_gpu_hours: f64,
    /// Busy over allocated GPU-hours, percent (NVML GPU utilisation).
    pub efficiency_pct: Option<f64>,
    pub state: State,
    pub reasons: Vec<String>,
    pub by_account: Vec<Breakdown>,
    pub by_user: Vec<Breakdown>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Warning,
    Exceeded,
    NoQuota,
}

/// Computes a burn-down. `rows` are the institute's ledger rows covering at
/// least the period and the 7 days before `at_ms`; rows at or after `at_ms`
/// are ignored.
pub fn burn_down(
    institute: &str,
    name: &str,
    spec: Option<&QuotaSpec>,
    at_ms: i64,
    rows: &[UseRow],
    running: &[RunningJob],
    gpus_in_use: u32,
) -> BurnDown {
    let period = spec.map(|s| s.period_at(at_ms));
    let (from_ms, to_ms) = match &period {
        Some(p) => (p.start_ms, p.end_ms.min(at_ms)),
        // Without a quota: the calendar month, for the use figures.
        None => {
            let p = Period::containing("month", at_ms).expect("month");
            (p.start_ms, at_ms)
        }
    };
    let running_ids: HashSet<&str> = running.iter().map(|j| j.id.as_str()).collect();
    let in_hours =
        |r: &UseRow, from: i64, to: i64| r.hour * 1000 >= from.div_euclid(3_600_000) * 3_600_000 && r.hour * 1000 < to;
    let (mut settled, mut in_flight, mut busy, mut allocated) = (0.0, 0.0, 0.0, 0.0);
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
        *by_account.entry(r.account.clone()).or_default() += h;
        *by_user.entry(r.user.clone()).or_default() += h;
    }
    let used = settled + in_flight;
    let week_from = at_ms - 7 * DAY_MS;
    let week: f64 = rows.iter().filter(|r| in_hours(r, week_from, at_ms)).map(|r| gpu_hours(&r.amounts)).sum();
    let rate = week / 7.0;
    let committed_known = running.iter().any(|j| j.remaining_s.is_some());
    // What running jobs may still use, bounded by the end of the period.
    let left_h = period.as_ref().map(|p| (p.end_ms - at_ms).max(0) as f64 / 3_600_000.0).unwrap_or(f64::INFINITY);
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
        projected_pct: projected.and_then(|p| pct(p, granted)),
        projected_gpu_hours: projected,
        runs_out_ms: runs_out,
        gpus_in_use,
        max_gpus: spec.and_then(|s| s.max_gpus),
        queued_gpus: None,
        busy_gpu_hours: busy,
        efficiency_pct: (allocated > 0.0).then(|| busy / allocated * 100.0),
        state,
        reasons,
        by_account: accounts,
        by_user: users,
        period,
    }
}

/// Days in a calendar month (re-exported for reports).
pub fn month_days(y: i64, m: u32) -> u32 {
    days_in_month(y, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        parse_instant(s).unwrap()
    }

    fn spec(period: &str, gpu_hours: f64) -> QuotaSpec {
        QuotaSpec {
            gpu_hours,
            period: Some(period.into()),
            start: None,
            end: None,
            max_gpus: None,
            warn_at_pct: 80.0,
            accounts: BTreeMap::new(),
        }
    }

    /// `gpus` GPUs allocated to `job` of `account`/`user` for every hour in [from, to).
    fn job_rows(from: &str, to: &str, job: &str, account: &str, user: &str, gpus: f64) -> Vec<UseRow> {
        let (a, b) = (ms(from) / 1000, ms(to) / 1000);
        (a..b)
            .step_by(3600)
            .map(|hour| UseRow {
                hour,
                account: account.into(),
                user: user.into(),
                job: job.into(),
                amounts: Amounts {
                    allocated_s: 3600.0 * gpus,
                    busy_s: 1800.0 * gpus,
                    capacity_s: 3600.0 * gpus,
                    ..Default::default()
                },
            })
            .collect()
    }

    #[test]
    fn calendar_periods_and_their_boundaries() {
        let p = Period::containing("month", ms("2026-02-14T10:00:00Z")).unwrap();
        assert_eq!((p.label.as_str(), p.start_ms, p.end_ms), ("2026-02", ms("2026-02-01"), ms("2026-03-01")));
        let p = Period::containing("quarter", ms("2026-12-31T23:59:59Z")).unwrap();
        assert_eq!((p.label.as_str(), p.start_ms, p.end_ms), ("2026-Q4", ms("2026-10-01"), ms("2027-01-01")));
        let p = Period::containing("year", ms("2026-01-01")).unwrap();
        assert_eq!((p.start_ms, p.end_ms), (ms("2026-01-01"), ms("2027-01-01")));
        // Leap years: February 2024 has 29 days, Q1 2024 91, 2024 366.
        assert_eq!(Period::parse("2024-02").unwrap().days(), 29.0);
        assert_eq!(Period::parse("2024-Q1").unwrap().days(), 91.0);
        assert_eq!(Period::parse("2024").unwrap().days(), 366.0);
        assert_eq!(Period::parse("2100-02").unwrap().days(), 28.0);
        assert!(Period::parse("2026-Q5").is_err());
        assert!(Period::parse("2026-13").is_err());
    }

    #[test]
    fn a_job_spanning_a_quarter_boundary_is_split_between_the_quarters() {
        let s = spec("quarter", 10_000.0);
        // 2 GPUs from 2026-03-31 12:00 to 2026-04-01 12:00: 24 + 24 GPU-hours.
        let rows = job_rows("2026-03-31T12:00:00Z", "2026-04-01T12:00:00Z", "77", "nlp-lab", "alice", 2.0);
        let q1 = burn_down("i", "I", Some(&s), ms("2026-03-31T23:59:59Z"), &rows, &[], 0);
        let q2 = burn_down("i", "I", Some(&s), ms("2026-04-30"), &rows, &[], 0);
        assert_eq!(q1.period.as_ref().unwrap().label, "2026-Q1");
        assert_eq!(q1.used_gpu_hours, 24.0);
        assert_eq!(q2.period.as_ref().unwrap().label, "2026-Q2");
        assert_eq!(q2.used_gpu_hours, 24.0);
        assert_eq!(q1.used_gpu_hours + q2.used_gpu_hours, 48.0);
    }

    #[test]
    fn settled_in_flight_committed_and_projection_by_hand() {
        let mut s = spec("month", 3000.0);
        s.max_gpus = Some(8);
        // Leap February 2024 (29 days). Job A (done): 4 GPUs for Feb 1-10 = 960 GPU-h.
        // Job B (running): 2 GPUs since Feb 10 00:00.
        let mut rows = job_rows("2024-02-01", "2024-02-11", "A", "nlp-lab", "alice", 4.0);
        rows.extend(job_rows("2024-02-10", "2024-02-15", "B", "speech-lab", "bob", 2.0));
        let at = ms("2024-02-15");
        let running = [RunningJob { id: "B".into(), gpus: 2, remaining_s: Some(48.0 * 3600.0) }];
        let b = burn_down("ibn-sina", "Ibn Sina", Some(&s), at, &rows, &running, 2);
        assert_eq!(b.settled_gpu_hours, 960.0);
        assert_eq!(b.in_flight_gpu_hours, 5.0 * 24.0 * 2.0);
        assert_eq!(b.used_gpu_hours, 1200.0);
        assert_eq!(b.committed_gpu_hours, 96.0);
        assert!(b.committed_known);
        assert_eq!(b.remaining_gpu_hours, Some(1800.0));
        // Last 7 days (Feb 8-15): A Feb 8-10 = 3 days × 96 = 288; B 5 days × 48 = 240. Rate = 528 / 7 per day.
        let rate = 528.0 / 7.0;
        assert!((b.burn_rate_gpu_hours_per_day - rate).abs() < 1e-9);
        // 15 days left in the leap month (Feb 15 to Mar 1).
        let projected = 1200.0 + rate * 15.0;
        assert!((b.projected_gpu_hours.unwrap() - projected).abs() < 1e-9);
        // Runs out after 1800 / rate days: 23.86 days, after the end of the period: no date.
        assert_eq!(b.runs_out_ms, None);
        assert_eq!(b.state, State::Ok);
        // With a smaller grant it runs out within the month, on a date computed by hand.
        s.gpu_hours = 2000.0;
        let b = burn_down("ibn-sina", "Ibn Sina", Some(&s), at, &rows, &running, 2);
        let days = 800.0 / rate; // 10.606 days after Feb 15 → Feb 25 14:32
        assert_eq!(b.runs_out_ms, Some(at + (days * 86_400_000.0) as i64));
        assert_eq!(crate::time::format_date(b.runs_out_ms.unwrap()), "2024-02-25");
        assert_eq!(b.state, State::Warning, "projected over the grant");
        assert_eq!(b.efficiency_pct, Some(50.0));
        assert_eq!(b.by_user[0].key, "alice");
    }

    #[test]
    fn without_time_limits_committed_is_zero_and_said_so() {
        let s = spec("month", 100.0);
        let b = burn_down(
            "i",
            "I",
            Some(&s),
            ms("2026-05-10"),
            &[],
            &[RunningJob { id: "x".into(), gpus: 4, remaining_s: None }],
            4,
        );
        assert_eq!(b.committed_gpu_hours, 0.0);
        assert!(!b.committed_known);
    }

    #[test]
    fn sub_quotas_add_up_and_each_is_tracked() {
        let mut s = spec("year", 1000.0);
        s.accounts.insert("nlp-lab".into(), 600.0);
        s.accounts.insert("speech-lab".into(), 400.0);
        assert!(s.validate().is_ok());
        let mut rows = job_rows("2026-01-01", "2026-01-06", "1", "nlp-lab", "a", 1.0); // 120 h
        rows.extend(job_rows("2026-01-01", "2026-01-21", "2", "speech-lab", "b", 1.0)); // 480 h
        let b = burn_down("i", "I", Some(&s), ms("2026-02-01"), &rows, &[], 0);
        let sum: f64 = b.by_account.iter().map(|a| a.used_gpu_hours).sum();
        assert_eq!(sum, b.used_gpu_hours);
        let speech = b.by_account.iter().find(|a| a.key == "speech-lab").unwrap();
        assert_eq!(speech.share_pct, Some(120.0));
        assert!(b.reasons.iter().any(|r| r.contains("speech-lab")), "{:?}", b.reasons);
        assert_eq!(b.state, State::Warning);
        s.accounts.insert("extra".into(), 1.0);
        assert!(s.validate().unwrap_err().contains("add up to 1001"));
    }

    #[test]
    fn an_institute_without_a_quota_shows_its_use() {
        let rows = job_rows("2026-05-01", "2026-05-02", "1", "x", "u", 1.0);
        let b = burn_down("i", "I", None, ms("2026-05-10"), &rows, &[], 1);
        assert_eq!(b.state, State::NoQuota);
        assert_eq!(b.used_gpu_hours, 24.0);
        assert_eq!(b.granted_gpu_hours, None);
        assert_eq!(b.projected_gpu_hours, None);
    }

    #[test]
    fn exceeded_and_gpu_cap() {
        let mut s = spec("month", 10.0);
        s.max_gpus = Some(1);
        let rows = job_rows("2026-05-01", "2026-05-02", "1", "x", "u", 1.0);
        let b = burn_down("i", "I", Some(&s), ms("2026-05-10"), &rows, &[], 3);
        assert_eq!(b.state, State::Exceeded);
        assert!(b.reasons.iter().any(|r| r.contains("over the cap of 1")));
    }

    #[test]
    fn explicit_periods_include_their_last_day() {
        let mut s = spec("month", 10.0);
        s.period = None;
        s.start = Some("2026-01-15".into());
        s.end = Some("2026-03-14".into());
        assert!(s.validate().is_ok());
        let p = s.period_at(0);
        assert_eq!((p.start_ms, p.end_ms), (ms("2026-01-15"), ms("2026-03-15")));
        s.end = None;
        assert!(s.validate().is_err());
    }
}
