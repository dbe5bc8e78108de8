//! A Service's spec, as `ValidateService` checks it: its type, its ports (required unless the
//! Service is headless or an ExternalName), its selector's labels, session affinity and the
//! external name.

use k8s_openapi::api::core::v1::Service;

use super::report::{check, required, unsupported};
use super::{meta, names, ports};
use crate::decider::Rejection;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];

pub fn validate(service: &Service) -> Result<(), Rejection> {
    let Some(spec) = &service.spec else {
        // An absent spec is defaulted to a ClusterIP Service with no ports.
        return Err(required("spec.ports", ""));
    };
    let kind = spec.type_.as_deref().filter(|t| !t.is_empty());
    if let Some(t) = kind.filter(|t| !TYPES.contains(t)) {
        return Err(unsupported("spec.type", t, TYPES));
    }
    let external = kind == Some("ExternalName");
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let service_ports = spec.ports.as_deref().unwrap_or_default();
    if service_ports.is_empty() && !headless && !external {
        return Err(required("spec.ports", ""));
    }
    ports::service(
        service_ports,
        matches!(kind, Some("NodePort" | "LoadBalancer")),
    )?;
    meta::labels(spec.selector.as_ref(), "spec.selector")?;
    if let Some(a) = spec
        .session_affinity
        .as_deref()
        .filter(|a| !a.is_empty() && !AFFINITIES.contains(a))
    {
        return Err(unsupported("spec.sessionAffinity", a, AFFINITIES));
    }
    if external {
        match spec.external_name.as_deref() {
            None | Some("") => return Err(required("spec.externalName", "")),
            // A trailing dot (a rooted name) is allowed.
            Some(name) => {
                let bare = name.strip_suffix('.').unwrap_or(name);
                check("spec.externalName", name, names::is_dns1123_subdomain(bare))?
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn service(spec: Value) -> Result<(), String> {
        super::super::service(&json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"}, "spec": spec}))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn port_numbers_are_between_1_and_65535() {
        service(json!({"ports": [{"port": 1}]})).unwrap();
        service(json!({"ports": [{"port": 65535}]})).unwrap();
        for port in [-1, 0, 65536] {
            assert_eq!(
                service(json!({"ports": [{"port": port}]})).unwrap_err(),
                format!(
                    "spec.ports[0].port: Invalid value: {port}: must be between 1 and 65535, inclusive"
                )
            );
        }
        // A null port is no port: the API server reads 0.
        assert!(service(json!({"ports": [{"port": null}]}))
            .unwrap_err()
            .starts_with("spec.ports[0].port: Invalid value: 0:"));
        assert!(
            service(json!({"ports": [{"port": 80, "targetPort": 70000}]}))
                .unwrap_err()
                .starts_with("spec.ports[0].targetPort: Invalid value: 70000")
        );
        service(json!({"ports": [{"port": 80, "targetPort": 0}]})).unwrap();
        service(json!({"ports": [{"port": 80, "targetPort": "http"}]})).unwrap();
        assert!(
            service(json!({"ports": [{"port": 80, "targetPort": "HTTP"}]}))
                .unwrap_err()
                .starts_with("spec.ports[0].targetPort: Invalid value: \"HTTP\"")
        );
    }

    #[test]
    fn ports_are_unique_by_port_and_protocol_and_named_when_several() {
        assert_eq!(
            service(json!({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]}))
                .unwrap_err(),
            "spec.ports[1]: Duplicate value: {port: 80, protocol: \"TCP\"}"
        );
        service(json!({"ports": [{"port": 53, "name": "a"}, {"port": 53, "name": "b", "protocol": "UDP"}]})).unwrap();
        assert_eq!(
            service(json!({"ports": [{"port": 80, "name": "a"}, {"port": 81}]})).unwrap_err(),
            "spec.ports[1].name: Required value"
        );
        assert_eq!(
            service(json!({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]}))
                .unwrap_err(),
            "spec.ports[1].name: Duplicate value: \"a\""
        );
        assert!(service(json!({"ports": [{"port": 80, "name": "Http"}]}))
            .unwrap_err()
            .contains("RFC 1123 label"));
        assert_eq!(
            service(json!({"ports": [{"port": 80, "protocol": "tcp"}]})).unwrap_err(),
            "spec.ports[0].protocol: Unsupported value: \"tcp\": supported values: \"TCP\", \"UDP\", \"SCTP\""
        );
    }

    #[test]
    fn ports_are_required_unless_headless_or_external() {
        assert_eq!(
            service(json!({"selector": {"app": "web"}})).unwrap_err(),
            "spec.ports: Required value"
        );
        service(json!({"clusterIP": "None", "selector": {"app": "web"}})).unwrap();
        service(json!({"type": "ExternalName", "externalName": "db.example.com"})).unwrap();
        assert_eq!(
            service(json!({"type": "ExternalName"})).unwrap_err(),
            "spec.externalName: Required value"
        );
        assert!(service(json!({"type": "Cluster", "ports": [{"port": 80}]}))
            .unwrap_err()
            .starts_with("spec.type: Unsupported value"));
    }

    #[test]
    fn node_ports_and_selectors() {
        assert_eq!(
            service(json!({"ports": [{"port": 80, "nodePort": 30080}]})).unwrap_err(),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        );
        service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})).unwrap();
        assert!(
            service(json!({"ports": [{"port": 80}], "selector": {"app": "a b"}}))
                .unwrap_err()
                .starts_with("spec.selector: Invalid value: \"a b\"")
        );
    }
}
