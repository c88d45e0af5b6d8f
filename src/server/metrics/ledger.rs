//! Families from the ledger: what each institute has been charged, as
//! counters (the hourly roll-up over all the hours the store holds, see
//! [`LedgerTotals`](crate::server::telemetry::LedgerTotals)), and the
//! quota burn-down of each institute with a quota, as gauges.

use super::families::Family;
use crate::accounting::Amounts;
use crate::api::quota::BurnDown;
use std::collections::BTreeMap;

/// A ledger counter: name, help, and how to read it off an institute's sums.
type Total = (&'static str, &'static str, fn(&Amounts) -> f64);

/// GPU-seconds and energy charged per institute.
pub fn institutes(cluster: &str, totals: &BTreeMap<String, Amounts>) -> Vec<Family> {
    let read: [Total; 5] = [
        (
            "jazari_institute_allocated_gpu_seconds",
            "GPU-seconds held by the institute's jobs, charged in the ledger",
            |a| a.allocated_s,
        ),
        ("jazari_institute_busy_gpu_seconds", "Allocated GPU-seconds x NVML utilisation, charged in the ledger", |a| {
            a.busy_s
        }),
        (
            "jazari_institute_idle_allocated_gpu_seconds",
            "Allocated GPU-seconds at or under the idle threshold, charged in the ledger",
            |a| a.idle_allocated_s,
        ),
        (
            "jazari_institute_unscheduled_gpu_seconds",
            "GPU-seconds used outside any job by the institute's users, charged in the ledger",
            |a| a.unscheduled_s,
        ),
        ("jazari_institute_energy_joules", "Energy of the institute's GPU time, charged in the ledger", |a| a.energy_j),
    ];
    read.iter()
        .map(|(name, help, f)| {
            let mut fam = Family::counter(name, help);
            for (institute, a) in totals {
                fam.add(vec![("cluster", cluster.to_string()), ("institute", institute.clone())], f(a));
            }
            fam
        })
        .collect()
}

/// Granted, used and projected GPU-seconds of the institutes with a quota, in their current period.
pub fn quotas(cluster: &str, burn_downs: &[BurnDown]) -> Vec<Family> {
    let mut granted = Family::gauge("jazari_quota_granted_gpu_seconds", "GPU-seconds the quota grants in its period");
    let mut used = Family::gauge("jazari_quota_used_gpu_seconds", "GPU-seconds used in the quota's period so far");
    let mut projected = Family::gauge(
        "jazari_quota_projected_gpu_seconds",
        "GPU-seconds the period will have used at its end, at the recent burn rate",
    );
    for b in burn_downs {
        let Some(g) = b.granted_gpu_hours else { continue };
        let labels = || vec![("cluster", cluster.to_string()), ("institute", b.institute.clone())];
        granted.add(labels(), g * 3600.0);
        used.add(labels(), b.used_gpu_hours * 3600.0);
        if let Some(p) = b.projected_gpu_hours {
            projected.add(labels(), p * 3600.0);
        }
    }
    vec![granted, used, projected]
}
