//! Burn-downs computed by hand.
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
    let p = period_containing(PeriodKind::Month, ms("2026-02-14T10:00:00Z"));
    assert_eq!((p.label.as_str(), p.start_ms, p.end_ms), ("2026-02", ms("2026-02-01"), ms("2026-03-01")));
    let p = period_containing(PeriodKind::Quarter, ms("2026-12-31T23:59:59Z"));
    assert_eq!((p.label.as_str(), p.start_ms, p.end_ms), ("2026-Q4", ms("2026-10-01"), ms("2027-01-01")));
    let p = period_containing(PeriodKind::Year, ms("2026-01-01"));
    assert_eq!((p.start_ms, p.end_ms), (ms("2026-01-01"), ms("2027-01-01")));
    // Leap years: February 2024 has 29 days, Q1 2024 91, 2024 366.
    assert_eq!(period_days(&parse_period("2024-02").unwrap()), 29.0);
    assert_eq!(period_days(&parse_period("2024-Q1").unwrap()), 91.0);
    assert_eq!(period_days(&parse_period("2024").unwrap()), 366.0);
    assert_eq!(period_days(&parse_period("2100-02").unwrap()), 28.0);
    assert!(parse_period("2026-Q5").is_err());
    assert!(parse_period("2026-13").is_err());
}

#[test]
fn a_job_spanning_a_quarter_boundary_is_split_between_the_quarters() {
    let s = spec("quarter", 10_000.0);
    // 2 GPUs from 2026-03-31 12:00 to 2026-04-01 12:00: 24 + 24 GPU-hours.
    let rows = job_rows("2026-03-31T12:00:00Z", "2026-04-01T12:00:00Z", "77", "nlp-lab", "alice", 2.0);
    let q1 = burn_down(
        "i",
        "I",
        Some(&s.resolve().unwrap()),
        ms("2026-03-31T23:59:59Z"),
        &Use { rows: &rows, running: &[], gpus_in_use: 0, data_since_ms: None },
    );
    let q2 = burn_down(
        "i",
        "I",
        Some(&s.resolve().unwrap()),
        ms("2026-04-30"),
        &Use { rows: &rows, running: &[], gpus_in_use: 0, data_since_ms: None },
    );
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
    let b = burn_down(
        "ibn-sina",
        "Ibn Sina",
        Some(&s.resolve().unwrap()),
        at,
        &Use { rows: &rows, running: &running, gpus_in_use: 2, data_since_ms: None },
    );
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
    let b = burn_down(
        "ibn-sina",
        "Ibn Sina",
        Some(&s.resolve().unwrap()),
        at,
        &Use { rows: &rows, running: &running, gpus_in_use: 2, data_since_ms: None },
    );
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
        Some(&s.resolve().unwrap()),
        ms("2026-05-10"),
        &Use {
            rows: &[],
            running: &[RunningJob { id: "x".into(), gpus: 4, remaining_s: None }],
            gpus_in_use: 4,
            data_since_ms: None,
        },
    );
    assert_eq!(b.committed_gpu_hours, 0.0);
    assert!(!b.committed_known);
}

#[test]
fn sub_quotas_add_up_and_each_is_tracked() {
    let mut s = spec("year", 1000.0);
    s.accounts.insert("nlp-lab".into(), 600.0);
    s.accounts.insert("speech-lab".into(), 400.0);
    assert!(s.resolve().is_ok());
    let mut rows = job_rows("2026-01-01", "2026-01-06", "1", "nlp-lab", "a", 1.0); // 120 h
    rows.extend(job_rows("2026-01-01", "2026-01-21", "2", "speech-lab", "b", 1.0)); // 480 h
    let b = burn_down(
        "i",
        "I",
        Some(&s.resolve().unwrap()),
        ms("2026-02-01"),
        &Use { rows: &rows, running: &[], gpus_in_use: 0, data_since_ms: None },
    );
    let sum: f64 = b.by_account.iter().map(|a| a.used_gpu_hours).sum();
    assert_eq!(sum, b.used_gpu_hours);
    let speech = b.by_account.iter().find(|a| a.key == "speech-lab").unwrap();
    assert_eq!(speech.share_pct, Some(120.0));
    assert!(b.reasons.iter().any(|r| r.contains("speech-lab")), "{:?}", b.reasons);
    assert_eq!(b.state, State::Warning);
    s.accounts.insert("extra".into(), 1.0);
    assert!(s.resolve().unwrap_err().contains("add up to 1001"));
}

#[test]
fn an_institute_without_a_quota_shows_its_use() {
    let rows = job_rows("2026-05-01", "2026-05-02", "1", "x", "u", 1.0);
    let b = burn_down(
        "i",
        "I",
        None,
        ms("2026-05-10"),
        &Use { rows: &rows, running: &[], gpus_in_use: 1, data_since_ms: None },
    );
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
    let b = burn_down(
        "i",
        "I",
        Some(&s.resolve().unwrap()),
        ms("2026-05-10"),
        &Use { rows: &rows, running: &[], gpus_in_use: 3, data_since_ms: None },
    );
    assert_eq!(b.state, State::Exceeded);
    assert!(b.reasons.iter().any(|r| r.contains("over the cap of 1")));
}

#[test]
fn explicit_periods_include_their_last_day() {
    let mut s = spec("month", 10.0);
    s.period = None;
    s.start = Some("2026-01-15".into());
    s.end = Some("2026-03-14".into());
    assert!(s.resolve().is_ok());
    let p = s.resolve().unwrap().period_at(0);
    assert_eq!((p.start_ms, p.end_ms), (ms("2026-01-15"), ms("2026-03-15")));
    s.end = None;
    assert!(s.resolve().is_err());
}

#[test]
fn the_burn_rate_is_taken_over_the_data_that_exists() {
    // A collector installed 2 days ago; an institute has held 54 GPUs since.
    let s = spec("quarter", 1_000_000.0);
    let at = ms("2026-05-10T12:00:00Z");
    let since = at - 2 * 86_400_000;
    let rows: Vec<UseRow> = job_rows("2026-05-08T12:00:00Z", "2026-05-10T12:00:00Z", "1", "x", "u", 54.0);
    let u = Use { rows: &rows, running: &[], gpus_in_use: 54, data_since_ms: Some(since) };
    let b = burn_down("i", "I", Some(&s.resolve().unwrap()), at, &u);
    assert_eq!(b.burn_window_s, 2.0 * 86_400.0, "the window is the 2 days with data");
    assert!((b.burn_rate_gpu_hours_per_day - 54.0 * 24.0).abs() < 1e-9, "{}", b.burn_rate_gpu_hours_per_day);
    // Without knowing when data began, 7 days are assumed: the rate reads a fraction of the real one.
    let b7 = burn_down("i", "I", Some(&s.resolve().unwrap()), at, &Use { data_since_ms: None, ..u });
    assert_eq!(b7.burn_window_s, 7.0 * 86_400.0);
    assert!(b7.burn_rate_gpu_hours_per_day < b.burn_rate_gpu_hours_per_day / 3.0);
    // Ten minutes of data do not make a rate: the window is at least an hour.
    let b = burn_down("i", "I", Some(&s.resolve().unwrap()), at, &Use { data_since_ms: Some(at - 600_000), ..u });
    assert_eq!(b.burn_window_s, 3600.0);
}
