//! CloudWatch embedded metric format (EMF): one JSON line on stdout per emission,
//! which CloudWatch Logs turns into metrics without any API call.

use serde_json::{Map, Value, json};

/// The namespace of every metric of the gateway.
pub const NAMESPACE: &str = "CabitalGateway";

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// A count.
    Count,
    /// Milliseconds.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Renders one EMF line: `metrics` under `dimensions` (name, value) at `timestamp_ms`.
pub fn render(timestamp_ms: i64, dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) -> String {
    let mut root = Map::new();
    let dim_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    // Every metric is also published without dimensions, so that one alarm sees the total.
    let dimension_sets: Vec<Vec<&str>> =
        if dim_names.is_empty() { vec![Vec::new()] } else { vec![Vec::new(), dim_names] };
    let defs: Vec<Value> = metrics.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": dimension_sets, "Metrics": defs}]
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::from(*v));
    }
    for (n, v, _) in metrics {
        root.insert((*n).into(), json!(v));
    }
    Value::Object(root).to_string()
}

/// Emits one EMF line on stdout.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, f64, Unit)]) {
    let ts = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    println!("{}", render(ts, dimensions, metrics));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_emf_envelope() {
        let line = render(
            1_700_000_000_000,
            &[("Function", "webhook")],
            &[("WebhookReceived", 1.0, Unit::Count), ("Latency", 12.5, Unit::Milliseconds)],
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let m = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], NAMESPACE);
        assert_eq!(m["Dimensions"], json!([[], ["Function"]]));
        assert_eq!(m["Metrics"][1], json!({"Name": "Latency", "Unit": "Milliseconds"}));
        assert_eq!(v["Function"], "webhook");
        assert_eq!(v["WebhookReceived"], 1.0);
        assert_eq!(v["Latency"], 12.5);
        assert!(!line.contains('\n'));
        let bare: Value = serde_json::from_str(&render(1, &[], &[("X", 1.0, Unit::Count)])).unwrap();
        assert_eq!(bare["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }
}
