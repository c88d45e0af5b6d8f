//! `POST /api/v1/reports`: the checks on a posted body, in the order the API
//! promises (token 401, size 413, encoding 415, decode 400, value ranges 400,
//! node allowed 403), then one transaction through the writer.
//!
//! Reading the body is bounded in size and time. Everything that costs CPU
//! (decompressing, decoding with counted lists, validating, preparing the
//! charges) runs on a blocking thread, at most `ingest.workers` batches at
//! once, so the threads that answer `/healthz` and other agents never wait
//! for it. Every refusal is counted by reason and node, and the time of
//! every batch answered 200 goes into a histogram.

use super::app::{App, DEDUP_HORIZON_MS};
use super::error::ApiError;
use super::listen::ClientCert;
use super::refusals::Refusal;
use crate::auth::Role;
use crate::time::{HOUR_MS, now_ms};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jazari_wire::{Limits, Report};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn post_reports(
    State(app): State<Arc<App>>,
    cert: Option<axum::Extension<ClientCert>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let cert = cert.map(|c| c.0);
    // The node the refusal is counted under: the token's, else the one reported once known.
    let mut node = None;
    match handle(&app, cert.as_ref(), &headers, body, &mut node).await {
        Ok(r) => {
            app.telemetry.ingest_batch.observe(started.elapsed().as_secs_f64());
            r
        }
        Err((e, linger)) => {
            let reason = if e.message.contains("nodes.max_nodes") { Refusal::NodeLimit } else { Refusal::of(e.status) };
            app.refused(reason, node.as_deref(), &e.message);
            let mut r = e.into_response();
            if linger {
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    }
}

type Refused = (ApiError, bool);

async fn handle(
    app: &Arc<App>,
    cert: Option<&ClientCert>,
    headers: &HeaderMap,
    body: Body,
    node: &mut Option<String>,
) -> Result<Response, Refused> {
    let no_linger = |e: ApiError| (e, false);
    // 1. token (or a client certificate, checked against each report's node below)
    let role = app.authenticate_node(headers, cert).await.map_err(no_linger)?;
    if let Role::Node(n) = &role
        && n != "*"
    {
        *node = Some(n.clone());
    }
    // 2. size, as sent, before reading: the rest of an over-long body is read
    // and thrown away for a short while, so the client can read the answer.
    let max = app.cfg.ingest.max_body_bytes;
    let too_large = || ApiError::too_large(format!("body is larger than ingest.max_body_bytes ({max} bytes)"));
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        tokio::spawn(linger(body));
        return Err((too_large(), true));
    }
    let timeout = app.cfg.server.body_timeout;
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Err(_) => {
            return Err(no_linger(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within server.body_timeout ({timeout:?})"),
            )));
        }
        Ok(Err(_)) => return Err((too_large(), true)),
        Ok(Ok(b)) => b,
    };
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::to_string);
    // 3-5, and preparing the charges, on a blocking thread, a bounded number at once.
    let permit =
        app.workers.acquire().await.map_err(|_| no_linger(ApiError::unavailable("the collector is stopping")))?;
    let work = {
        let app = app.clone();
        let role = role.clone();
        let cert = cert.cloned();
        tokio::task::spawn_blocking(move || {
            let (reports, first) = check(&app, &role, cert.as_ref(), encoding.as_deref(), &bytes);
            (reports.map(|r| (r.len(), app.prepare(r))), first)
        })
    };
    let (ready, first_node) = match work.await {
        Ok(r) => r,
        Err(e) => return Err(no_linger(ApiError::internal(e))),
    };
    drop(permit);
    if node.is_none() {
        *node = first_node;
    }
    let (n, ready) = ready.map_err(no_linger)?;
    let outcome = app.commit(ready).await.map_err(no_linger)?;
    tracing::debug!(reports = n, accepted = outcome.accepted, duplicates = outcome.duplicates, "batch committed");
    Ok(Json(outcome).into_response())
}

/// Decompresses, decodes (lists counted as they are read), validates and
/// checks the nodes; returns the reports and the first report's node.
fn check(
    app: &App,
    role: &Role,
    cert: Option<&ClientCert>,
    encoding: Option<&str>,
    bytes: &[u8],
) -> (Result<Vec<Report>, ApiError>, Option<String>) {
    let ing = &app.cfg.ingest;
    let plain = match decompress(encoding, bytes, ing.max_decompressed_bytes) {
        Ok(p) => p,
        Err(e) => return (Err(e), None),
    };
    let reports = match jazari_wire::decode_with(&plain, ing.decode_limits()) {
        Ok(r) => r,
        Err(e) => return (Err(e.into()), None),
    };
    drop(plain);
    let first = reports.first().map(|r| r.node.clone());
    let checked = (|| {
        if reports.is_empty() {
            return Err(ApiError::bad("empty batch: send one report or a non-empty array"));
        }
        // 4. value ranges
        let now = now_ms();
        let lim = Limits {
            now_ms: now,
            max_interval_ms: ing.max_interval.as_millis() as i64,
            oldest_ms: now - DEDUP_HORIZON_MS + HOUR_MS,
            max_users: ing.max_users_per_report,
        };
        for (i, r) in reports.iter().enumerate() {
            jazari_wire::validate(r, i, lim)?;
        }
        // 5. node allowed for this token or certificate, and known or within the count
        for r in &reports {
            app.may_report(role, cert, &r.node)?;
        }
        Ok(())
    })();
    (checked.map(|()| reports), first)
}

/// Reads and discards what is left of a refused body, for at most 2 s and
/// 64 MiB, so the client finishes sending and reads the refusal.
async fn linger(body: Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut left: u64 = 64 << 20;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while left > 0 {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(f))) => left = left.saturating_sub(f.data_ref().map_or(0, |d| d.len() as u64)),
            _ => break,
        }
    }
}

/// Decompresses a body according to its `Content-Encoding`, refusing more than `max` bytes out.
pub fn decompress(encoding: Option<&str>, body: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    let too_big = || {
        ApiError::too_large(format!(
            "body is larger than ingest.max_decompressed_bytes ({max} bytes) once decompressed"
        ))
    };
    // Grows to at most `max` bytes of capacity (no doubling past the limit).
    let read_limited = |mut r: Box<dyn Read + '_>, what: &str| -> Result<Vec<u8>, ApiError> {
        let mut out: Vec<u8> = Vec::with_capacity((body.len() * 4).min(max));
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = r.read(&mut buf).map_err(|e| ApiError::bad(format!("body is not valid {what}: {e}")))?;
            if n == 0 {
                return Ok(out);
            }
            if out.len() + n > max {
                return Err(too_big());
            }
            if out.capacity() < out.len() + n {
                let want = (out.capacity() * 2).max(out.len() + n).min(max);
                out.reserve_exact(want - out.len());
            }
            out.extend_from_slice(&buf[..n]);
        }
    };
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > max {
                return Err(too_big());
            }
            Ok(body.to_vec())
        }
        Some("zstd") => {
            // A frame that says its size (the agent's do) is decompressed in one
            // call into a buffer of that size, with this thread's kept context:
            // no context, window or buffer allocated per body. Anything else
            // (no size, several frames, a size that lies) goes the streaming way,
            // which also names what is wrong with a bad body.
            match zstd::zstd_safe::get_frame_content_size(body) {
                Ok(Some(n)) if n > max as u64 => return Err(too_big()),
                Ok(Some(n)) => {
                    if let Some(out) = decompress_sized(body, n as usize) {
                        return Ok(out);
                    }
                }
                _ => {}
            }
            let d = zstd::stream::read::Decoder::new(body).map_err(|e| ApiError::bad(format!("zstd: {e}")))?;
            read_limited(Box::new(d), "zstd")
        }
        Some("gzip") | Some("x-gzip") => read_limited(Box::new(flate2::read::GzDecoder::new(body)), "gzip"),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding `{other}` is not supported; use zstd or gzip"),
        )),
    }
}

/// Decompresses a zstd body whose frame says it holds `size` bytes, with a
/// context kept per thread; `None` when it does not decompress to exactly that.
fn decompress_sized(body: &[u8], size: usize) -> Option<Vec<u8>> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| {
        let mut cell = cell.borrow_mut();
        let dctx = cell.get_or_insert_with(zstd::zstd_safe::DCtx::create);
        let mut out = Vec::with_capacity(size);
        match dctx.decompress(&mut out, body) {
            Ok(n) if n == size => Some(out),
            _ => {
                // A failed call may leave the context mid-frame: start clean.
                let _ = dctx.reset(zstd::zstd_safe::ResetDirective::SessionAndParameters);
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompression_is_bounded() {
        let big = vec![b' '; 100_000];
        let z = zstd::encode_all(&big[..], 3).unwrap();
        assert_eq!(decompress(Some("zstd"), &z, 200_000).unwrap().len(), 100_000);
        let e = decompress(Some("zstd"), &z, 50_000).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(e.message.contains("ingest.max_decompressed_bytes"), "{}", e.message);
        assert_eq!(decompress(Some("br"), &z, 50_000).unwrap_err().status, 415);
        assert_eq!(decompress(Some("zstd"), b"not zstd", 50_000).unwrap_err().status, 400);
    }

    #[test]
    fn a_frame_that_says_its_size_is_bounded_and_checked() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let sized = zstd::bulk::compress(&big, 3).unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&sized).unwrap(), Some(100_000));
        assert_eq!(decompress(Some("zstd"), &sized, 200_000).unwrap(), big);
        // Over the limit: refused from the header alone.
        let e = decompress(Some("zstd"), &sized, 50_000).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(e.message.contains("ingest.max_decompressed_bytes"), "{}", e.message);
        // Two frames, the first saying its own size: both are read (the streaming way).
        let two = [zstd::bulk::compress(b"[1,", 3).unwrap(), zstd::bulk::compress(b"2]", 3).unwrap()].concat();
        assert_eq!(decompress(Some("zstd"), &two, 1_000).unwrap(), b"[1,2]");
        // Cut short: a 400, and the thread's kept context still decompresses the next body.
        let e = decompress(Some("zstd"), &sized[..sized.len() / 2], 200_000).unwrap_err();
        assert_eq!(e.status, 400, "{}", e.message);
        assert_eq!(decompress(Some("zstd"), &sized, 200_000).unwrap(), big);
    }
}
