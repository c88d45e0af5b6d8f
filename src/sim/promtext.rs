//! A report as Prometheus text exposition, for load tests against a time
//! series database (`jazari sim --load --format prometheus`): every numeric
//! value of the report (booleans as 0 or 1) is one sample, named after its
//! field path, labelled with the node and the position of each list item
//! (`gpus="3"`), stamped with the report's end. Strings are left out.

use jazari_wire::Report;
use serde_json::Value;
use std::fmt::Write;

/// Appends `r`'s samples to `out`; returns how many.
pub fn write_report(r: &Report, out: &mut String) -> usize {
    let v = serde_json::to_value(r).expect("reports serialise");
    let mut labels = format!("node=\"{}\"", escape(&r.node));
    let mut name = String::from("jazari");
    walk(&v, "", &mut name, &mut labels, r.interval_end_ms, out)
}

/// Writes the samples under `v`, whose field is `key`, its metric `name` and its `labels` so far.
fn walk(v: &Value, key: &str, name: &mut String, labels: &mut String, ts_ms: i64, out: &mut String) -> usize {
    match v {
        Value::Number(n) => {
            let _ = writeln!(out, "{name}{{{labels}}} {} {ts_ms}", n.as_f64().unwrap_or(0.0));
            1
        }
        Value::Bool(b) => {
            let _ = writeln!(out, "{name}{{{labels}}} {} {ts_ms}", u8::from(*b));
            1
        }
        Value::Object(m) => {
            let mut n = 0;
            for (k, x) in m {
                let len = name.len();
                name.push('_');
                name.extend(k.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
                n += walk(x, k, name, labels, ts_ms, out);
                name.truncate(len);
            }
            n
        }
        Value::Array(items) => {
            let label: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            let mut n = 0;
            for (i, x) in items.iter().enumerate() {
                let len = labels.len();
                let _ = write!(labels, ",{label}=\"{i}\"");
                n += walk(x, key, name, labels, ts_ms, out);
                labels.truncate(len);
            }
            n
        }
        Value::Null | Value::String(_) => 0,
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimCluster, SimSpec, Tenant};

    #[test]
    fn every_number_of_a_report_is_a_sample() {
        let spec = SimSpec { nodes: 1, gpus_per_node: 2, seed: 3, prefix: "n".into(), faults: false };
        let tenants = vec![Tenant { account: "a".into(), users: vec!["u".into()] }];
        let r = SimCluster::new(&spec, tenants, 0).next_report(0, 10_000).unwrap();
        let mut text = String::new();
        let n = write_report(&r, &mut text);
        assert_eq!(n, text.lines().count());
        assert!(text.contains("jazari_seq{node=\"n0001\"} 0 10000\n"), "{text}");
        assert!(text.contains("jazari_gpus_util_gpu_pct{node=\"n0001\",gpus=\"1\"} "), "{text}");
        assert!(text.contains("jazari_host_load{node=\"n0001\",load=\"2\"} "), "{text}");
        assert!(text.contains("jazari_gpus_ecc_enabled{node=\"n0001\",gpus=\"0\"} 1 10000"), "{text}");
        assert!(!text.contains("kernel"), "strings are left out");
    }
}
