//! The quota table: every institute's burn-down in at most 80 columns, readable
//! without colour; and the lines of `--check`.

use crate::format::{exact, fit, hours, span};
use crate::quota::{BurnDown, State};
use crate::time::{format_date, format_rfc3339};
use std::fmt::Write;

/// Which breakdown to print under each institute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Account,
    User,
}

fn state(s: State) -> &'static str {
    match s {
        State::Ok => "ok",
        State::Warning => "WARNING",
        State::Exceeded => "EXCEEDED",
        State::NoQuota => "no quota",
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|p| format!("{p:.0}%")).unwrap_or_else(|| "-".into())
}

/// The table, every line at most 80 columns, readable without colour.
pub fn table(items: &[BurnDown], by: Option<By>) -> String {
    let mut out = String::new();
    let at = items.first().map(|b| b.at_ms).unwrap_or(0);
    let _ = writeln!(out, "Quotas at {} (GPU-hours; utilisation: NVML GPU utilisation)", format_rfc3339(at));
    let _ = writeln!(
        out,
        "{:<16} {:<8} {:>9} {:>9} {:>5} {:>9} {:<10} {:>7}",
        "INSTITUTE", "PERIOD", "GRANTED", "USED", "USE", "PROJECTED", "RUNS OUT", "GPUS"
    );
    for b in items {
        let period = b.period.as_ref().map(|p| p.label.clone()).unwrap_or_else(|| "-".into());
        let granted = b.granted_gpu_hours.map(exact).unwrap_or_else(|| "-".into());
        let projected = b.projected_gpu_hours.map(hours).unwrap_or_else(|| "-".into());
        let runs_out = b.runs_out_ms.map(format_date).unwrap_or_else(|| "-".into());
        let gpus = match b.max_gpus {
            Some(cap) => format!("{}/{cap}", b.gpus_in_use),
            None => b.gpus_in_use.to_string(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>9} {:>9} {:>5} {:>9} {:<10} {:>7}",
            fit(&b.institute, 16),
            fit(&period, 8),
            granted,
            hours(b.used_gpu_hours),
            pct(b.used_pct),
            projected,
            runs_out,
            gpus
        );
        let committed = if b.committed_known { hours(b.committed_gpu_hours) } else { "n/a (no time limits)".into() };
        let eff = b.efficiency_pct.map(|e| format!("{e:.0}%")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "  {:<9} settled {} · in flight {} · committed {}",
            state(b.state),
            hours(b.settled_gpu_hours),
            hours(b.in_flight_gpu_hours),
            committed
        );
        let queued = match b.queued_gpus {
            Some(q) if q > 0 => format!(" · {q} GPUs queued"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "            burn {}/day over {} · efficiency {}{queued}",
            hours(b.burn_rate_gpu_hours_per_day),
            span(b.burn_window_s),
            eff
        );
        if let (Some(m), Some(sm)) = (b.gpm_measured_gpu_hours, b.sm_active_gpu_hours) {
            let _ = writeln!(
                out,
                "            SM active {} GPU-h of {} measured by GPM ({:.0}%)",
                hours(sm),
                hours(m),
                sm / m * 100.0
            );
        }
        for r in &b.reasons {
            let _ = writeln!(out, "            ! {}", fit(r, 66));
        }
        let rows = match by {
            Some(By::Account) => &b.by_account,
            Some(By::User) => &b.by_user,
            None => continue,
        };
        for r in rows {
            let key = if r.key.is_empty() { "(none)" } else { &r.key };
            let granted = r.granted_gpu_hours.map(exact).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "    {:<20} {:>9} {:>9} {:>5}",
                fit(key, 20),
                granted,
                hours(r.used_gpu_hours),
                pct(r.share_pct)
            );
        }
    }
    out
}

/// One line per institute (`OK`, `WARNING`, `OVER`, `NO QUOTA`) and the worst status.
pub fn check_lines(items: &[BurnDown]) -> (i32, String) {
    let mut worst = 0;
    let mut out = String::new();
    for b in items {
        let (word, code) = match b.state {
            State::Ok => ("OK", 0),
            State::Warning => ("WARNING", 1),
            State::Exceeded => ("OVER", 2),
            State::NoQuota => ("NO QUOTA", 0),
        };
        worst = worst.max(code);
        let period = b.period.as_ref().map(|p| p.label.as_str()).unwrap_or("-");
        let used = match (b.granted_gpu_hours, b.used_pct) {
            (Some(g), Some(p)) => {
                format!("{} of {} GPU-h used ({p:.1}%) in {period}", hours(b.used_gpu_hours), exact(g))
            }
            _ => format!("{} GPU-h used in {period}", hours(b.used_gpu_hours)),
        };
        let why = if b.reasons.is_empty() { String::new() } else { format!("; {}", b.reasons.join("; ")) };
        out.push_str(&format!("{word} {}: {used}{why}\n", b.institute));
    }
    (worst, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::Amounts;
    use crate::quota::{QuotaSpec, RunningJob, Use, UseRow, burn_down};

    fn sample() -> Vec<BurnDown> {
        let at = crate::time::parse_instant("2026-11-15").unwrap();
        let spec = QuotaSpec {
            gpu_hours: 120_000.0,
            period: Some("quarter".into()),
            start: None,
            end: None,
            max_gpus: Some(96),
            warn_at_pct: 80.0,
            accounts: [("nlp-lab".to_string(), 80_000.0), ("speech-lab".to_string(), 40_000.0)].into(),
        };
        let rows: Vec<UseRow> = (0..24 * 40)
            .map(|h| UseRow {
                hour: at / 1000 - 3600 * (h + 1),
                account: if h % 3 == 0 { "speech-lab" } else { "nlp-lab" }.into(),
                user: format!("user{}", h % 5),
                job: format!("{}", h / 24),
                amounts: Amounts {
                    allocated_s: 3600.0 * 90.0,
                    busy_s: 3600.0 * 60.0,
                    gpm_s: 3600.0 * 80.0,
                    sm_active_s: 3600.0 * 20.0,
                    ..Default::default()
                },
            })
            .collect();
        let spec = spec.resolve().unwrap();
        let mut ibn = burn_down(
            "ibn-sina",
            "Ibn Sina",
            Some(&spec),
            at,
            &Use {
                rows: &rows,
                running: &[RunningJob { id: "0".into(), gpus: 8, remaining_s: None }],
                gpus_in_use: 84,
                data_since_ms: None,
            },
        );
        ibn.queued_gpus = Some(16);
        vec![
            ibn,
            burn_down(
                "a-very-long-institute-name",
                "Long",
                None,
                at,
                &Use { rows: &[], running: &[], gpus_in_use: 0, data_since_ms: None },
            ),
        ]
    }

    #[test]
    fn fits_80_columns_and_says_what_it_shows() {
        for by in [None, Some(By::Account), Some(By::User)] {
            let t = table(&sample(), by);
            for line in t.lines() {
                assert!(line.chars().count() <= 80, "{} columns: {line}", line.chars().count());
            }
            assert!(t.contains("ibn-sina") && t.contains("2026-Q4"));
            assert!(t.contains("committed n/a (no time limits)"));
            assert!(t.contains("no quota"));
        }
        assert!(table(&sample(), None).contains("16 GPUs queued"));
        // SM-active GPU-hours where GPM measured, named as such; nothing where it did not.
        let t = table(&sample(), None);
        assert!(t.contains("SM active 19,200 GPU-h of 76,800 measured by GPM (25%)"), "{t}");
        assert_eq!(t.matches("SM active").count(), 1, "the institute without GPM has no SM line");
        let t = table(&sample(), Some(By::Account));
        assert!(t.contains("nlp-lab") && t.contains("80,000"));
    }

    #[test]
    fn grants_are_printed_with_the_precision_they_have() {
        let mut items = sample();
        items[0].granted_gpu_hours = Some(0.5);
        items[0].by_account[0].granted_gpu_hours = Some(0.25);
        let t = table(&items, Some(By::Account));
        let line = t.lines().find(|l| l.starts_with("ibn-sina")).unwrap();
        assert_eq!(line.split_whitespace().nth(2), Some("0.5"), "{line}");
        assert!(
            t.lines().any(|l| l.trim_start().starts_with(&items[0].by_account[0].key) && l.contains(" 0.25 ")),
            "{t}"
        );
    }
}
