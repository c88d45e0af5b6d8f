//! Load tests with every request body built and compressed before the clock
//! starts (`jazari sim --load --prebuilt`), so the load generator's CPU
//! during the run is only sending: on a small machine shared with the
//! collector, building bodies as it goes takes CPU from the server it
//! measures. The same reports go either to a Jazari collector (zstd JSON
//! arrays, as agents send) or, as Prometheus text (gzip), to a time series
//! database's import endpoint, for a comparison on the same load.

use super::drive::LoadFigures;
use super::{SimCluster, SimSpec, Tenant, promtext};
use crate::api::{BatchOutcome, paths};
use crate::client::Client;
use jazari_wire::Report;
use std::io::Write;
use std::time::{Duration, Instant};

/// What the bodies are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BodyFormat {
    /// A JSON array of reports, zstd-compressed (level 3, as the agent sends), to /api/v1/reports.
    Jazari,
    /// Every numeric value of the reports as Prometheus text samples, gzip,
    /// to /api/v1/import/prometheus (VictoriaMetrics).
    Prometheus,
}

impl BodyFormat {
    fn path(self) -> &'static str {
        match self {
            BodyFormat::Jazari => paths::REPORTS,
            BodyFormat::Prometheus => "/api/v1/import/prometheus",
        }
    }
}

/// One request: its compressed body and how many reports it holds.
pub struct Body {
    pub bytes: Vec<u8>,
    pub reports: usize,
    /// Samples in it (Prometheus text), else 0.
    pub samples: usize,
}

/// What was built: per connection, its bodies in order.
pub struct Built {
    pub per_thread: Vec<Vec<Body>>,
    pub seconds: f64,
}

impl Built {
    pub fn reports(&self) -> usize {
        self.per_thread.iter().flatten().map(|b| b.reports).sum()
    }
    pub fn samples(&self) -> usize {
        self.per_thread.iter().flatten().map(|b| b.samples).sum()
    }
    pub fn bytes(&self) -> usize {
        self.per_thread.iter().flatten().map(|b| b.bytes.len()).sum()
    }
}

/// Builds `total` reports' bodies for `threads` connections, the reports
/// [`super::drive::load`] would send: each connection its own share of the
/// nodes, each body `batch` consecutive reports of one node, nodes in turn.
pub fn build(
    spec: &SimSpec,
    tenants: &[Tenant],
    batch: usize,
    threads: usize,
    total: usize,
    interval_ms: i64,
    format: BodyFormat,
) -> Built {
    let started = Instant::now();
    let start_ms = crate::time::now_ms() - 7 * crate::time::DAY_MS;
    let threads = threads.max(1);
    let per = spec.nodes.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let tenants = tenants.to_vec();
            let spec = super::drive::thread_spec(spec, t, per);
            let quota = total / threads + usize::from(t < total % threads);
            std::thread::spawn(move || {
                let mut c = SimCluster::new(&spec, tenants, start_ms);
                let mut out = vec![];
                let mut left = quota;
                while left > 0 && !c.is_empty() {
                    for n in 0..c.len() {
                        if left == 0 {
                            break;
                        }
                        let chunk: Vec<Report> =
                            (0..batch.min(left)).filter_map(|_| c.next_report(n, interval_ms)).collect();
                        left -= chunk.len();
                        out.push(encode(&chunk, format));
                    }
                }
                out
            })
        })
        .collect();
    let per_thread = handles.into_iter().map(|h| h.join().expect("build thread")).collect();
    Built { per_thread, seconds: started.elapsed().as_secs_f64() }
}

fn encode(chunk: &[Report], format: BodyFormat) -> Body {
    match format {
        BodyFormat::Jazari => {
            let json = serde_json::to_vec(chunk).expect("reports serialise");
            // In one call, so the frame says its size, as the agent's does (it pledges the size).
            Body { bytes: zstd::bulk::compress(&json, 3).expect("zstd in memory"), reports: chunk.len(), samples: 0 }
        }
        BodyFormat::Prometheus => {
            let mut text = String::new();
            let samples = chunk.iter().map(|r| promtext::write_report(r, &mut text)).sum();
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(text.as_bytes()).expect("gzip in memory");
            Body { bytes: z.finish().expect("gzip in memory"), reports: chunk.len(), samples }
        }
    }
}

/// Sends the built bodies, each connection its own in order, until they are
/// all sent or `duration` has passed. Connections are spread over `clients`.
pub fn send(clients: &[Client], built: Built, format: BodyFormat, duration: Duration) -> LoadFigures {
    let began = Instant::now();
    let handles: Vec<_> = built
        .per_thread
        .into_iter()
        .enumerate()
        .map(|(t, bodies)| {
            let client = clients[t % clients.len()].clone();
            std::thread::spawn(move || {
                let mut f = LoadFigures::default();
                let (content_type, encoding) = match format {
                    BodyFormat::Jazari => ("application/json", "zstd"),
                    BodyFormat::Prometheus => ("text/plain", "gzip"),
                };
                for body in bodies {
                    if began.elapsed() >= duration {
                        break;
                    }
                    let t0 = Instant::now();
                    match client.post_body(format.path(), body.bytes, content_type, Some(encoding)) {
                        Ok((status, text)) if (200..300).contains(&status) => {
                            f.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                            f.batches += 1;
                            f.reports += body.reports as u64;
                            f.accepted += match format {
                                BodyFormat::Jazari => {
                                    serde_json::from_str::<BatchOutcome>(&text).unwrap_or_default().accepted as u64
                                }
                                BodyFormat::Prometheus => body.reports as u64,
                            };
                        }
                        Ok((status, text)) => f.failed(&format!("collector answered {status}: {text}")),
                        Err(e) => f.failed(&e.to_string()),
                    }
                }
                f
            })
        })
        .collect();
    LoadFigures::sum(handles.into_iter().map(|h| h.join().expect("send thread")), began)
}
