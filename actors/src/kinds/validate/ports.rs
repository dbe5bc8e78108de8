//! Ports: a Service's (`validateServicePort`), a container's (`validateContainerPorts`) and an
//! Endpoints subset's (`validateEndpointPort`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ContainerPort, EndpointPort, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names;
use super::report::{check, duplicate, invalid, required, shown, unsupported};
use crate::decider::Rejection;

/// The protocols a port may speak.
pub const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// A port number field.
pub fn number(field: &str, port: i32) -> Result<(), Rejection> {
    let problems = names::is_port_number(port.into());
    match problems.first() {
        Some(problem) => Err(invalid(field, port, problem)),
        None => Ok(()),
    }
}

/// A protocol, empty meaning TCP (the API server's default).
pub fn protocol(field: &str, protocol: Option<&str>) -> Result<(), Rejection> {
    match protocol {
        None | Some("") => Ok(()),
        Some(p) if PROTOCOLS.contains(&p) => Ok(()),
        Some(p) => Err(unsupported(field, p, PROTOCOLS)),
    }
}

/// A Service's ports: names (required and unique when there are several, DNS labels), numbers,
/// protocols, targetPorts, nodePorts, and no two with the same port and protocol.
pub fn service(ports: &[ServicePort], node_ports_allowed: bool) -> Result<(), Rejection> {
    let several = ports.len() > 1;
    let mut port_names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let name = port.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            if several {
                return Err(required(format!("{at}.name"), ""));
            }
        } else {
            check(format!("{at}.name"), name, names::is_dns1123_label(name))?;
            if !port_names.insert(name) {
                return Err(duplicate(format!("{at}.name"), shown(name)));
            }
        }
        number(&format!("{at}.port"), port.port)?;
        protocol(&format!("{at}.protocol"), port.protocol.as_deref())?;
        match &port.target_port {
            // 0 and "" are defaulted to the port.
            None => {}
            Some(IntOrString::Int(0)) => {}
            Some(IntOrString::Int(n)) => number(&format!("{at}.targetPort"), *n)?,
            Some(IntOrString::String(s)) if s.is_empty() => {}
            Some(IntOrString::String(s)) => {
                check(format!("{at}.targetPort"), s, names::is_port_name(s))?
            }
        }
        if let Some(node_port) = port.node_port.filter(|n| *n != 0) {
            if !node_ports_allowed {
                return Err(super::report::forbidden(
                    format!("{at}.nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            number(&format!("{at}.nodePort"), node_port)?;
            if !node_ports.insert((node_port, protocol_of(port.protocol.as_deref()))) {
                return Err(duplicate(format!("{at}.nodePort"), node_port));
            }
        }
        let protocol = protocol_of(port.protocol.as_deref());
        if !keys.insert((port.port, protocol)) {
            return Err(duplicate(
                at,
                format!("{{port: {}, protocol: {protocol:?}}}", port.port),
            ));
        }
    }
    Ok(())
}

/// A protocol after defaulting.
fn protocol_of(protocol: Option<&str>) -> &str {
    protocol.filter(|p| !p.is_empty()).unwrap_or("TCP")
}

/// One container's ports (at `at`, `spec.template.spec.containers[0].ports`): names are IANA
/// service names unique in the container, containerPort is required and a port number, as is a
/// hostPort when set.
pub fn container(ports: &[ContainerPort], at: &str) -> Result<(), Rejection> {
    let mut port_names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("{at}[{i}]");
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            check(format!("{at}.name"), name, names::is_port_name(name))?;
            if !port_names.insert(name) {
                return Err(duplicate(format!("{at}.name"), shown(name)));
            }
        }
        if port.container_port == 0 {
            return Err(required(format!("{at}.containerPort"), ""));
        }
        number(&format!("{at}.containerPort"), port.container_port)?;
        if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
            number(&format!("{at}.hostPort"), host_port)?;
        }
        protocol(&format!("{at}.protocol"), port.protocol.as_deref())?;
    }
    Ok(())
}

/// The host ports used by a pod's containers must be unique per protocol
/// (`AccumulateUniqueHostPorts`): `ports` are each container's, `at` each container's path.
pub fn unique_host_ports<'a>(
    containers: impl Iterator<Item = (String, &'a [ContainerPort])>,
) -> Result<(), Rejection> {
    let mut used = BTreeSet::new();
    for (at, ports) in containers {
        for (i, port) in ports.iter().enumerate() {
            let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
                continue;
            };
            let protocol = protocol_of(port.protocol.as_deref());
            if !used.insert((host_port, protocol)) {
                return Err(duplicate(
                    format!("{at}[{i}].hostPort"),
                    format!("\"{host_port}/{protocol}\""),
                ));
            }
        }
    }
    Ok(())
}

/// An Endpoints subset's ports (at `at`, `subsets[0].ports`): named when there are several,
/// names DNS labels, numbers ports.
pub fn endpoint(ports: &[EndpointPort], at: &str) -> Result<(), Rejection> {
    let several = ports.len() > 1;
    for (i, port) in ports.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match port.name.as_deref().unwrap_or_default() {
            "" if several => return Err(required(format!("{at}.name"), "")),
            "" => {}
            name => check(format!("{at}.name"), name, names::is_dns1123_label(name))?,
        }
        number(&format!("{at}.port"), port.port)?;
        protocol(&format!("{at}.protocol"), port.protocol.as_deref())?;
    }
    Ok(())
}
