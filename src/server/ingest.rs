//! `POST /api/v1/reports`: the checks on a posted body, in the order the API
//! promises (token 401, size 413, encoding 415, decode 400, value ranges 400,
//! node allowed 403), then one transaction through the writer.

use super::app::{App, DEDUP_HORIZON_MS};
use super::error::ApiError;
use crate::auth::Role;
use crate::time::{HOUR_MS, now_ms};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jazari_wire::Limits;
use std::io::Read;
use std::sync::Arc;

pub async fn post_reports(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    // 1. token
    let role = app.authenticate(&headers).await?;
    // 2. size, as sent and decompressed
    let max = app.cfg.ingest.max_body_bytes;
    let too_large = || ApiError::too_large(format!("body is larger than ingest.max_body_bytes ({max} bytes)"));
    // An announced length over the limit is refused before any of the body is read.
    if headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()).is_some_and(|n| n > max)
    {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| too_large())?;
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let plain = decompress(encoding, &bytes, app.cfg.ingest.max_decompressed_bytes)?;
    // 3. decode
    let reports = jazari_wire::decode(&plain)?;
    if reports.is_empty() {
        return Err(ApiError::bad("empty batch: send one report or a non-empty array"));
    }
    // 4. value ranges
    let now = now_ms();
    let lim = Limits {
        now_ms: now,
        max_interval_ms: app.cfg.ingest.max_interval.as_millis() as i64,
        oldest_ms: now - DEDUP_HORIZON_MS + HOUR_MS,
    };
    for (i, r) in reports.iter().enumerate() {
        jazari_wire::validate(r, i, lim)?;
    }
    // 5. node allowed for this token
    if let Some(r) = reports.iter().find(|r| !role.may_report_for(&r.node)) {
        let msg = match &role {
            Role::Node(n) => format!("this token may send reports for node `{n}` only, not `{}`", r.node),
            _ => "only node tokens send reports".to_string(),
        };
        return Err(ApiError::forbidden(msg));
    }
    let n = reports.len();
    let outcome = app.ingest(reports).await?;
    tracing::debug!(reports = n, accepted = outcome.accepted, duplicates = outcome.duplicates, "batch committed");
    Ok(Json(outcome).into_response())
}

/// Decompresses a body according to its `Content-Encoding`, refusing more than `max` bytes out.
pub fn decompress(encoding: Option<&str>, body: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    let too_big = || ApiError::too_large(format!("body is larger than {max} bytes once decompressed"));
    let read_limited = |mut r: Box<dyn Read + '_>, what: &str| -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::with_capacity(body.len() * 4);
        r.by_ref()
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::bad(format!("body is not valid {what}: {e}")))?;
        if out.len() > max {
            return Err(too_big());
        }
        Ok(out)
    };
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > max {
                return Err(too_big());
            }
            Ok(body.to_vec())
        }
        Some("zstd") => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompression_is_bounded() {
        let big = vec![b' '; 100_000];
        let z = zstd::encode_all(&big[..], 3).unwrap();
        assert_eq!(decompress(Some("zstd"), &z, 200_000).unwrap().len(), 100_000);
        assert_eq!(decompress(Some("zstd"), &z, 50_000).unwrap_err().status, 413);
        assert_eq!(decompress(Some("br"), &z, 50_000).unwrap_err().status, 415);
        assert_eq!(decompress(Some("zstd"), b"not zstd", 50_000).unwrap_err().status, 400);
    }
}
