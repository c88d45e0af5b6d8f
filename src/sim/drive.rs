//! Sending simulated reports: as fast as the collector takes them (load
//! tests), a backfill of past hours (the demo), or in real time.

use super::{SimCluster, SimSpec, Tenant};
use crate::api::{BatchOutcome, paths};
use crate::client::Client;
use jazari_wire::Report;

/// Figures of a load run.
#[derive(Debug, Default)]
pub struct LoadFigures {
    pub reports: u64,
    pub accepted: u64,
    pub batches: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latencies_ms: Vec<f64>,
}

impl LoadFigures {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return 0.0;
        }
        let mut v = self.latencies_ms.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() - 1) as f64 * p).round() as usize]
    }

    /// Counts a failed request (the first three are told on stderr).
    pub(crate) fn failed(&mut self, why: &str) {
        self.errors += 1;
        if self.errors <= 3 {
            eprintln!("jazari sim: {why}");
        }
    }

    /// The figures of several connections together, timed from `began`.
    pub(crate) fn sum(parts: impl Iterator<Item = LoadFigures>, began: std::time::Instant) -> LoadFigures {
        let mut total = LoadFigures::default();
        for f in parts {
            total.reports += f.reports;
            total.accepted += f.accepted;
            total.batches += f.batches;
            total.errors += f.errors;
            total.latencies_ms.extend(f.latencies_ms);
        }
        total.seconds = began.elapsed().as_secs_f64();
        total
    }
}

/// The share of the cluster that load connection `t` of `per` nodes each sends for.
pub(crate) fn thread_spec(spec: &SimSpec, t: usize, per: usize) -> SimSpec {
    SimSpec {
        nodes: per.min(spec.nodes.saturating_sub(t * per)),
        prefix: format!("{}t{t}-", spec.prefix),
        seed: spec.seed + t as u64,
        faults: false,
        ..spec.clone()
    }
}

/// Sends reports as fast as the collector takes them, with simulated time
/// running ahead (each node's reports are `interval_ms` apart, starting a
/// week back), from `threads` connections. A batch is `batch` consecutive
/// reports of one node, as an agent sends when it drains its spool.
/// Connections are spread over `clients` (collectors behind a load balancer).
pub fn load(
    clients: &[Client],
    spec: &SimSpec,
    tenants: &[Tenant],
    batch: usize,
    threads: usize,
    duration: std::time::Duration,
    interval_ms: i64,
) -> LoadFigures {
    let start_ms = crate::time::now_ms() - 7 * crate::time::DAY_MS;
    let began = std::time::Instant::now();
    let per = spec.nodes.div_ceil(threads.max(1));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|t| {
            let client = clients[t % clients.len()].clone();
            let tenants = tenants.to_vec();
            let spec = thread_spec(spec, t, per);
            std::thread::spawn(move || {
                let mut f = LoadFigures::default();
                let mut c = SimCluster::new(&spec, tenants, start_ms);
                // Like agents draining their spools: each batch is consecutive reports of one node.
                'outer: while began.elapsed() < duration {
                    for n in 0..c.len() {
                        if began.elapsed() >= duration {
                            break 'outer;
                        }
                        let chunk: Vec<Report> = (0..batch).filter_map(|_| c.next_report(n, interval_ms)).collect();
                        let json = serde_json::to_vec(&chunk).expect("reports serialise");
                        let t0 = std::time::Instant::now();
                        match client.post_json(paths::REPORTS, &json, Some(1)) {
                            Ok((200, body)) => {
                                f.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                                f.batches += 1;
                                f.reports += chunk.len() as u64;
                                let o: BatchOutcome = serde_json::from_str(&body).unwrap_or_default();
                                f.accepted += o.accepted as u64;
                            }
                            Ok((status, body)) => f.failed(&format!("collector answered {status}: {body}")),
                            Err(e) => f.failed(&e.to_string()),
                        }
                    }
                }
                f
            })
        })
        .collect();
    LoadFigures::sum(handles.into_iter().map(|h| h.join().expect("load thread")), began)
}

/// Sends `hours` of past reports, `step` apart, as agents draining their
/// spools would (one node's reports per batch), so a fresh collector has
/// history to show.
pub fn backfill(
    client: &Client,
    spec: &SimSpec,
    tenants: Vec<Tenant>,
    hours: i64,
    step_ms: i64,
) -> Result<u64, String> {
    let now = crate::time::now_ms();
    let start = now - hours * crate::time::HOUR_MS;
    let mut c = SimCluster::new(&SimSpec { faults: false, seed: spec.seed ^ 0x5eed, ..spec.clone() }, tenants, start);
    let per_node = ((now - start) / step_ms - 1).max(0) as usize;
    let mut sent = 0;
    for n in 0..c.len() {
        let reports: Vec<Report> = (0..per_node).filter_map(|_| c.next_report(n, step_ms)).collect();
        for chunk in reports.chunks(200) {
            let json = serde_json::to_vec(chunk).expect("reports serialise");
            match client.post_json(paths::REPORTS, &json, Some(1)) {
                Ok((200, _)) => sent += chunk.len() as u64,
                Ok((status, body)) => return Err(format!("collector answered {status}: {body}")),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(sent)
}

/// Runs simulated agents in real time: every `interval`, each node posts its
/// report, like an agent would. Stops when `stop` is set.
pub fn realtime(
    client: &Client,
    spec: &SimSpec,
    tenants: Vec<Tenant>,
    interval: std::time::Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    let interval_ms = interval.as_millis() as i64;
    let c = SimCluster::new(spec, tenants, crate::time::now_ms() - interval_ms);
    run(client, c, interval, stop);
}

/// The demo's cluster: `hours` of backfilled history (a report every
/// `step_ms`), then the same jobs go on in real time, so running jobs have
/// their true ages; faults (a silent node that returns, XIDs) start live.
pub fn backfill_then_realtime(
    client: &Client,
    spec: &SimSpec,
    tenants: Vec<Tenant>,
    hours: i64,
    step_ms: i64,
    interval: std::time::Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    let now = crate::time::now_ms();
    let mut c =
        SimCluster::new(&SimSpec { faults: false, ..spec.clone() }, tenants, now - hours * crate::time::HOUR_MS);
    let per_node = ((hours * crate::time::HOUR_MS) / step_ms - 1).max(0) as usize;
    'nodes: for n in 0..c.len() {
        let reports: Vec<Report> = (0..per_node).filter_map(|_| c.next_report(n, step_ms)).collect();
        for chunk in reports.chunks(200) {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let json = serde_json::to_vec(chunk).expect("reports serialise");
            match client.post_json(paths::REPORTS, &json, Some(1)) {
                Ok((200, _)) => {}
                Ok((status, body)) => {
                    tracing::warn!("demo backfill: collector answered {status}: {body}");
                    break 'nodes;
                }
                Err(e) => {
                    tracing::warn!("demo backfill: {e}");
                    break 'nodes;
                }
            }
        }
    }
    if spec.faults {
        c.faults_from(crate::time::now_ms());
    }
    run(client, c, interval, stop);
}

/// Every `interval`, each node of `c` posts its report until `stop`.
fn run(client: &Client, mut c: SimCluster, interval: std::time::Duration, stop: &std::sync::atomic::AtomicBool) {
    let mut warned = false;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let tick = std::time::Instant::now();
        for r in c.reports(crate::time::now_ms()) {
            let json = serde_json::to_vec(&r).expect("reports serialise");
            match client.post_json(paths::REPORTS, &json, Some(1)) {
                Ok((200, _)) => warned = false,
                Ok((status, body)) if !warned => {
                    tracing::warn!("simulated agent: collector answered {status}: {body}");
                    warned = true;
                }
                Err(e) if !warned => {
                    tracing::warn!("simulated agent: {e}");
                    warned = true;
                }
                _ => {}
            }
        }
        while tick.elapsed() < interval && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep((interval - tick.elapsed()).min(std::time::Duration::from_millis(100)));
        }
    }
}
