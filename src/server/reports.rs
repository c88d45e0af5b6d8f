//! `GET /api/v1/report`, and the one function that builds a report from a
//! store (used here and by `jazari report --config` on the collector host).

use super::app::App;
use super::error::ApiError;
use crate::api::report::{Report, ReportPeriod, ReportQuery};
use crate::config::Config;
use crate::report::{Inputs, Options, build};
use crate::store::{Filter, GroupBy, Store};
use crate::time::now_ms;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Builds the report of `period` from the store's roll-ups.
pub fn build_from_store(
    store: &dyn Store,
    cfg: &Config,
    period: &ReportPeriod,
    opts: &Options,
) -> crate::store::Result<Report> {
    // Pseudonyms under the store's secret key, made on first use.
    let keyed;
    let opts = if opts.anonymise && opts.key.is_empty() {
        let key = store.secret(crate::report::PSEUDONYM_KEY, &crate::auth::random_chars(32))?;
        keyed = Options { key, ..opts.clone() };
        &keyed
    } else {
        opts
    };
    let days = store.day_rows(period.start_s, period.end_s, None)?;
    let findings = store.findings_between(period.start_s * 1000, period.end_s * 1000)?;
    let hours = store.hour_rows(period.start_s, period.end_s)?;
    let coverage = store.coverage_input(period.start_s, period.end_s)?;
    // An institute sees the coverage of the nodes its use ran on, no others.
    let nodes: Option<BTreeSet<String>> = match &opts.institute {
        Some(i) => Some(
            store
                .usage(period.start_s, period.end_s, GroupBy::Node, &Filter { institute: Some(i), nodes: None })?
                .into_iter()
                .map(|r| r.key)
                .filter(|n| !n.is_empty())
                .collect(),
        ),
        None => None,
    };
    let now = now_ms();
    let inp = Inputs {
        cluster_name: &cfg.cluster,
        institutes: &cfg.institutes,
        days: &days,
        hours: &hours,
        coverage: &coverage,
        nodes: nodes.as_ref(),
        now_ms: now,
        findings: &findings,
    };
    Ok(build(&inp, period, opts, now))
}

/// The period a report query asks for.
pub fn period_of(q: &ReportQuery) -> Result<ReportPeriod, String> {
    match (&q.period, &q.from, &q.to) {
        (Some(p), None, None) => ReportPeriod::named(p),
        (None, Some(f), Some(t)) => ReportPeriod::dates(f, t),
        _ => Err("give `period` (2026, 2026-Q1, 2026-03) or both `from` and `to`".to_string()),
    }
}

pub async fn report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Json<Report>, ApiError> {
    let role = app.reader(&headers).await?;
    let period = period_of(&q).map_err(ApiError::bad)?;
    let institute = app.scoped_institute(&role, q.institute.as_deref())?;
    let opts = Options { institute, anonymise: q.anonymise.unwrap_or(false), key: String::new() };
    let a = app.clone();
    // An institute's report (asked by its token or for it) holds its figures only: no others' totals.
    let r = app.read(move |s| build_from_store(s, &a.cfg, &period, &opts)).await?;
    Ok(Json(r))
}
