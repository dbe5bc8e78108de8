//! Endpoints (`ValidateEndpoints`): each subset has addresses (ports may be absent: a headless
//! Service's endpoints need none); addresses are IP
//! addresses a Service may route to (not unspecified, loopback or link-local), hostnames DNS
//! labels; ports as [`super::ports::endpoint`] checks them.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints};

use super::names;
use super::ports;
use super::report::{check, invalid_str, required};
use crate::decider::Rejection;

pub fn validate(endpoints: &Endpoints) -> Result<(), Rejection> {
    for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
        let at = format!("subsets[{i}]");
        let ready = subset.addresses.as_deref().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
        if ready.is_empty() && not_ready.is_empty() {
            return Err(required(
                at,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, address) in ready.iter().enumerate() {
            self::address(address, &format!("{at}.addresses[{j}]"))?;
        }
        for (j, address) in not_ready.iter().enumerate() {
            self::address(address, &format!("{at}.notReadyAddresses[{j}]"))?;
        }
        ports::endpoint(
            subset.ports.as_deref().unwrap_or_default(),
            &format!("{at}.ports"),
        )?;
    }
    Ok(())
}

fn address(address: &EndpointAddress, at: &str) -> Result<(), Rejection> {
    let field = format!("{at}.ip");
    let ip: IpAddr = address
        .ip
        .parse()
        .map_err(|_| invalid_str(&field, &address.ip, "must be a valid IP address"))?;
    let special = if ip.is_unspecified() {
        Some("may not be unspecified (0.0.0.0)")
    } else if ip.is_loopback() {
        Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    } else if is_link_local(&ip) {
        Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    } else if is_link_local_multicast(&ip) {
        Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    } else {
        None
    };
    if let Some(problem) = special {
        return Err(invalid_str(field, &address.ip, problem));
    }
    if let Some(host) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
        check(
            format!("{at}.hostname"),
            host,
            names::is_dns1123_label(host),
        )?;
    }
    Ok(())
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_link_local_multicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn endpoints(subsets: Value) -> Result<(), String> {
        super::super::endpoints(&json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "e"}, "subsets": subsets}))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn addresses_and_ports() {
        endpoints(json!([{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}])).unwrap();
        assert!(
            endpoints(json!([{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}]))
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            endpoints(json!([{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}]}]))
                .unwrap_err()
                .starts_with("subsets[0].addresses[0].ip: Invalid value: \"nope\"")
        );
        assert_eq!(
            endpoints(json!([{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 0}]}]))
                .unwrap_err(),
            "subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            endpoints(json!([{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}, {"port": 81}]}]))
                .unwrap_err(),
            "subsets[0].ports[0].name: Required value"
        );
        assert!(endpoints(json!([{"ports": [{"port": 80}]}]))
            .unwrap_err()
            .starts_with("subsets[0]: Required value"));
        endpoints(json!([{"addresses": [{"ip": "192.0.2.10"}]}])).unwrap();
    }
}
