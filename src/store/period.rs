//! Periods whose bounds fall inside an hour, answered exactly from the
//! hourly ledger: the whole hours as they are, and in each edge hour the
//! nodes whose reported time there lies wholly inside the period (known from
//! the coverage record's first and last instant per hour and node). A node
//! whose time in an edge hour straddles a bound cannot be split exactly: the
//! query is refused, saying where.

use super::{Filter, GroupBy, Result, Store, UsageRow};
use crate::time::{HOUR_MS, format_rfc3339, hour_ceil_ms, hour_floor_ms};
use std::collections::BTreeMap;

/// A period over the hourly buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Whole hours [from_s, to_s) (may be empty).
    pub whole: (i64, i64),
    /// Edge hours (start, UTC seconds) and the nodes wholly inside the period there.
    pub edges: Vec<(i64, Vec<String>)>,
}

/// Splits [from_ms, to_ms); the error says which node straddles which bound.
pub fn split(store: &dyn Store, from_ms: i64, to_ms: i64) -> Result<std::result::Result<Split, String>> {
    let (a, b) = (hour_ceil_ms(from_ms), hour_floor_ms(to_ms));
    let whole = if a < b { (a / 1000, b / 1000) } else { (a / 1000, a / 1000) };
    let mut edge_hours: Vec<i64> = vec![];
    if from_ms % HOUR_MS != 0 {
        edge_hours.push(hour_floor_ms(from_ms));
    }
    if to_ms % HOUR_MS != 0 && !edge_hours.contains(&hour_floor_ms(to_ms)) {
        edge_hours.push(hour_floor_ms(to_ms));
    }
    let mut edges = vec![];
    for h in edge_hours {
        let mut inside = vec![];
        for c in store.coverage_hours(h / 1000, h / 1000 + 3600)? {
            if c.first_ms >= from_ms && c.last_ms <= to_ms {
                inside.push(c.node);
            } else if c.last_ms > from_ms && c.first_ms < to_ms {
                let bound = if c.first_ms < from_ms { from_ms } else { to_ms };
                return Ok(Err(format!(
                    "{} falls inside what node {} reported between {} and {}: the ledger keeps hourly buckets \
                     and can split an hour only where no node's reports cross the bound; use {} or {}",
                    format_rfc3339(bound),
                    c.node,
                    format_rfc3339(c.first_ms),
                    format_rfc3339(c.last_ms),
                    format_rfc3339(hour_floor_ms(bound)),
                    format_rfc3339(hour_floor_ms(bound) + HOUR_MS)
                )));
            }
        }
        edges.push((h / 1000, inside));
    }
    Ok(Ok(Split { whole, edges }))
}

/// Usage over [from_ms, to_ms), exactly, or why it cannot be answered exactly.
pub fn usage(
    store: &dyn Store,
    from_ms: i64,
    to_ms: i64,
    group: GroupBy,
    institute: Option<&str>,
) -> Result<std::result::Result<Vec<UsageRow>, String>> {
    let s = match split(store, from_ms, to_ms)? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let mut sum: BTreeMap<String, crate::accounting::Amounts> = BTreeMap::new();
    let mut add = |rows: Vec<UsageRow>| {
        for r in rows {
            sum.entry(r.key).or_default().add(&r.amounts);
        }
    };
    if s.whole.0 < s.whole.1 {
        add(store.usage(s.whole.0, s.whole.1, group, &Filter { institute, nodes: None })?);
    }
    for (h, nodes) in &s.edges {
        if !nodes.is_empty() {
            add(store.usage(*h, h + 3600, group, &Filter { institute, nodes: Some(nodes) })?);
        }
    }
    Ok(Ok(sum.into_iter().map(|(key, amounts)| UsageRow { key, amounts }).collect()))
}

/// Coverage per node over [from_ms, to_ms), exactly, or why it cannot be answered exactly.
pub fn coverage(
    store: &dyn Store,
    from_ms: i64,
    to_ms: i64,
) -> Result<std::result::Result<Vec<super::CoverageRow>, String>> {
    let s = match split(store, from_ms, to_ms)? {
        Ok(s) => s,
        Err(why) => return Ok(Err(why)),
    };
    let mut rows: BTreeMap<String, super::CoverageRow> = BTreeMap::new();
    let mut add = |r: super::CoverageRow| match rows.get_mut(&r.node) {
        Some(e) => {
            e.reports += r.reports;
            e.covered_s += r.covered_s;
            e.first_hour = e.first_hour.min(r.first_hour);
            e.last_hour = e.last_hour.max(r.last_hour);
        }
        None => {
            rows.insert(r.node.clone(), r);
        }
    };
    if s.whole.0 < s.whole.1 {
        store.coverage(s.whole.0, s.whole.1)?.into_iter().for_each(&mut add);
    }
    for (h, nodes) in &s.edges {
        for c in store.coverage_hours(*h, h + 3600)?.into_iter().filter(|c| nodes.contains(&c.node)) {
            add(super::CoverageRow {
                node: c.node,
                reports: c.reports,
                covered_s: c.covered_s,
                first_hour: c.hour,
                last_hour: c.hour,
            });
        }
    }
    Ok(Ok(rows.into_values().collect()))
}
