//! Metric families read off the collector's state at one rendering, handed
//! to the Prometheus client library to encode (names, label escaping, the
//! OpenMetrics and Prometheus text formats are the library's).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Label names and values of one series.
pub type Labels = Vec<(&'static str, String)>;

/// Units a family's name may end in (declared as its unit in OpenMetrics).
const UNITS: &[&str] = &["seconds", "bytes", "celsius", "joules", "watts", "hertz", "ratio"];

/// One family: its name as exported (without `_total`), help, type, series.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    unit: Option<Unit>,
    help: &'static str,
    counter: bool,
    samples: Vec<(Labels, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, counter: bool) -> Self {
        let unit = UNITS.iter().find(|u| name.strip_suffix(**u).is_some_and(|n| n.ends_with('_')));
        let (name, unit) = match unit {
            Some(u) => (&name[..name.len() - u.len() - 1], Some(Unit::Other(u.to_string()))),
            None => (name, None),
        };
        Family { name, unit, help, counter, samples: vec![] }
    }

    /// A gauge; `name` ends in its unit, if any (`jazari_gpu_power_watts`).
    pub fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, false)
    }

    /// A counter; `name` without `_total`, which the encoding adds.
    pub fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, true)
    }

    /// Adds a series.
    pub fn add(&mut self, labels: Labels, value: f64) {
        self.samples.push((labels, value));
    }

    /// Adds a series without labels.
    pub fn with(mut self, value: f64) -> Self {
        self.add(vec![], value);
        self
    }
}

/// The families of one rendering (those without series are left out).
#[derive(Debug, Default)]
pub struct Snapshot(pub Vec<Family>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in self.0.iter().filter(|f| !f.samples.is_empty()) {
            let kind = if f.counter { MetricType::Counter } else { MetricType::Gauge };
            let help = format!("{}.", f.help);
            let mut family = encoder.encode_descriptor(f.name, &help, f.unit.as_ref(), kind)?;
            for (labels, v) in &f.samples {
                let series = family.encode_family(labels)?;
                // Whole numbers as integers (`3`, not `3.0`).
                let whole = v.fract() == 0.0 && v.abs() < 9e15;
                match (f.counter, whole) {
                    (true, true) if *v >= 0.0 => ConstCounter::new(*v as u64).encode(series)?,
                    (true, _) => ConstCounter::new(*v).encode(series)?,
                    (false, true) => ConstGauge::new(*v as i64).encode(series)?,
                    (false, false) => ConstGauge::new(*v).encode(series)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn encoded(f: Family) -> (String, String) {
        let mut reg = Registry::default();
        reg.register_collector(Box::new(Snapshot(vec![f])));
        let (mut om, mut text) = (String::new(), String::new());
        prometheus_client::encoding::text::encode(&mut om, &reg).unwrap();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &reg).unwrap();
        (om, text)
    }

    #[test]
    fn label_values_are_escaped() {
        let mut f = Family::gauge("jazari_node_last_report_timestamp_seconds", "When the node last reported");
        f.add(vec![("node", "gpu\"a\\1\nx".into())], 1.5);
        let (om, text) = encoded(f);
        let line = r#"jazari_node_last_report_timestamp_seconds{node="gpu\"a\\1\nx"} 1.5"#;
        assert!(om.contains(line), "{om}");
        assert!(text.contains(line), "{text}");
        assert!(om.contains("# UNIT jazari_node_last_report_timestamp_seconds seconds\n"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }

    #[test]
    fn counters_get_their_suffix_and_units_their_metadata() {
        let f = Family::counter("jazari_gpu_energy_joules", "Energy").with(2.0);
        let (om, text) = encoded(f);
        assert!(om.contains("# TYPE jazari_gpu_energy_joules counter\n"), "{om}");
        assert!(om.contains("\njazari_gpu_energy_joules_total 2"), "{om}");
        assert!(text.contains("# TYPE jazari_gpu_energy_joules_total counter\njazari_gpu_energy_joules_total 2"));
        // No unit, no UNIT line.
        let f = Family::gauge("jazari_nodes_reporting", "Nodes").with(3.0);
        let (om, _) = encoded(f);
        assert!(om.contains("\njazari_nodes_reporting 3") && !om.contains("# UNIT"), "{om}");
        // Families without series are left out.
        assert_eq!(encoded(Family::gauge("jazari_nodes", "Nodes")).1, "");
    }
}
