//! Every JSON example in docs/api.md parses into the API type its block names
//! and says nothing the type would not say back: the documentation and the
//! contract cannot drift apart.

use jazari::api::cluster::{ClusterView, JobsResponse};
use jazari::api::findings::FindingsResponse;
use jazari::api::history::{HistoryResponse, SeriesResponse};
use jazari::api::quota::QuotasResponse;
use jazari::api::report::Report;
use jazari::api::scheduler::SchedulerResponse;
use jazari::api::usage::{CoverageResponse, UsageResponse};
use jazari::api::{BatchOutcome, ErrorBody, InstitutesResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// (type name, JSON) of every ```json block with a type label.
fn examples() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let mut out = vec![];
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        if let Some(name) = l.strip_prefix("```json ") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            out.push((name.trim().to_string(), body.join("\n")));
        }
    }
    out
}

/// Equal as the API means it: numbers by value, an absent key the same as null.
fn same(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-9 => Ok(()),
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                same(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().try_for_each(|(i, (a, b))| same(a, b, &format!("{path}[{i}]")))
        }
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: documented {a}, the type says {b}")),
    }
}

fn check<T: DeserializeOwned + Serialize>(name: &str, text: &str) {
    let documented: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} example is not JSON: {e}"));
    let typed: T = serde_json::from_value(documented.clone())
        .unwrap_or_else(|e| panic!("the {name} example in docs/api.md does not parse as the type: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Err(e) = same(&documented, &back, name) {
        panic!("the {name} example in docs/api.md and the type differ: {e}");
    }
}

#[test]
fn every_documented_example_is_the_type_it_names() {
    let ex = examples();
    let mut checked = vec![];
    for (name, text) in &ex {
        match name.as_str() {
            "ErrorBody" => check::<ErrorBody>(name, text),
            "BatchOutcome" => check::<BatchOutcome>(name, text),
            "ClusterView" => check::<ClusterView>(name, text),
            "JobsResponse" => check::<JobsResponse>(name, text),
            "UsageResponse" => check::<UsageResponse>(name, text),
            "HistoryResponse" => check::<HistoryResponse>(name, text),
            "SeriesResponse" => check::<SeriesResponse>(name, text),
            "CoverageResponse" => check::<CoverageResponse>(name, text),
            "InstitutesResponse" => check::<InstitutesResponse>(name, text),
            "QuotasResponse" => check::<QuotasResponse>(name, text),
            "Report" => check::<Report>(name, text),
            "SchedulerResponse" => check::<SchedulerResponse>(name, text),
            "FindingsResponse" => check::<FindingsResponse>(name, text),
            other => panic!("docs/api.md labels a block `{other}`, which this test does not know"),
        }
        checked.push(name.as_str());
    }
    for needed in ["ClusterView", "UsageResponse", "QuotasResponse", "Report", "FindingsResponse", "BatchOutcome"] {
        assert!(checked.contains(&needed), "docs/api.md has no `{needed}` example");
    }
}

#[test]
fn a_stale_field_in_the_docs_is_caught() {
    let stale = r#"{"accepted": 1, "duplicates": 0, "rejected": 3}"#;
    let typed: BatchOutcome = serde_json::from_str(stale).unwrap();
    let back = serde_json::to_value(typed).unwrap();
    assert!(same(&serde_json::from_str(stale).unwrap(), &back, "x").is_err());
}
