//! The columns `meshplane get` shows for the resource concept's kinds (kubectl's, for the
//! kinds kubectl shows columns for).

use serde_json::Value;

use crate::kinds::Column;

pub const CONFIG_MAP: &[Column] = &[Column {
    title: "DATA",
    value: configmap_data,
}];

pub const SERVICE: &[Column] = &[
    Column {
        title: "TYPE",
        value: service_type,
    },
    Column {
        title: "PORTS",
        value: service_ports,
    },
];

/// Deployments and StatefulSets.
pub const WORKLOAD: &[Column] = &[
    Column {
        title: "REPLICAS",
        value: replicas,
    },
    Column {
        title: "IMAGES",
        value: images,
    },
];

fn configmap_data(object: &Value) -> String {
    let count = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_object)
            .map_or(0, |m| m.len())
    };
    (count("data") + count("binaryData")).to_string()
}

fn service_type(object: &Value) -> String {
    object
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string()
}

fn service_ports(object: &Value) -> String {
    let ports: Vec<String> = object
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            format!(
                "{}/{protocol}",
                p.get("port").map(scalar).unwrap_or_default()
            )
        })
        .collect();
    none_if_empty(ports)
}

fn replicas(object: &Value) -> String {
    object
        .pointer("/spec/replicas")
        .map(scalar)
        .unwrap_or_else(|| "1".into())
}

fn images(object: &Value) -> String {
    let images: Vec<String> = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
        .collect();
    none_if_empty(images)
}

fn none_if_empty(items: Vec<String>) -> String {
    if items.is_empty() {
        "<none>".into()
    } else {
        items.join(",")
    }
}

/// A JSON scalar as a cell: strings unquoted, null as `<none>`.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cells(columns: &[Column], object: &Value) -> Vec<String> {
        columns.iter().map(|c| (c.value)(object)).collect()
    }

    #[test]
    fn columns_read_the_object_like_kubectl() {
        let svc = json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(cells(SERVICE, &svc), ["ClusterIP", "80/TCP,53/UDP"]);
        assert_eq!(cells(SERVICE, &json!({})), ["ClusterIP", "<none>"]);
        let cm = json!({"data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        assert_eq!(cells(CONFIG_MAP, &cm), ["3"]);
        let deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"image": "web:1"}, {"image": "proxy:2"}]}}}});
        assert_eq!(cells(WORKLOAD, &deploy), ["1", "web:1,proxy:2"]);
    }
}
