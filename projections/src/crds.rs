//! The CustomResourceDefinitions meshplane owns and installs, generated from the Rust types
//! (kube-derive): ServiceFence (Slime's group and version, with the status subresource) and
//! SlimeBoot (meshplane's configuration input, in Slime's `config.netease.com/v1alpha1`).
//!
//! Istio's Sidecar, EnvoyFilter and VirtualService are not here: they are Istio's CRDs, which
//! Istio installs; meshplane only writes (and reads) objects of them.

use std::borrow::Cow;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;
use kube_derive::CustomResource;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::objects::slime::ServiceFence;

/// `config.netease.com/v1alpha1` SlimeBoot: the lazyload configuration the fence concept reads
/// (`spec.module[]`). Its spec is free-form in the schema, as in Slime's own CRD, so existing
/// SlimeBoots apply unchanged and a cluster that already has Slime's CRD keeps working;
/// meshplane validates the fields it reads itself, with messages naming the field, when the
/// object is applied. meshplane writes no status for it, so it has no status subresource.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "config.netease.com",
    version = "v1alpha1",
    kind = "SlimeBoot",
    plural = "slimeboots",
    singular = "slimeboot",
    namespaced,
    derive = "PartialEq",
    crates(kube_core = "::kube_core"),
    doc = "Slime's SlimeBoot: module configuration; meshplane reads its lazyload module."
)]
#[serde(transparent)]
pub struct SlimeBootSpec(pub Map<String, Value>);

impl JsonSchema for SlimeBootSpec {
    fn schema_name() -> Cow<'static, str> {
        "SlimeBootSpec".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Slime module configuration (`module[]`: name, kind, enable, general, global, metric); validated by meshplane when applied.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

/// Every CRD meshplane installs, in a fixed order: one per kind the kind table says meshplane
/// defines (`Definition::Meshplane`). kube-derive takes names as literals, so the types cannot
/// read the table; a test holds them to it.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![ServiceFence::crd(), SlimeBoot::crd()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use actors::kinds::{self, Definition};
    use serde_json::json;

    #[test]
    fn crds_are_the_kind_tables_own_kinds() {
        let crds: Vec<Value> = crds()
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        let own: Vec<_> = kinds::all()
            .filter(|k| k.definition == Definition::Meshplane)
            .collect();
        assert_eq!(crds.len(), own.len());
        for (crd, kind) in crds.iter().zip(own) {
            let spec = &crd["spec"];
            let names = &spec["names"];
            assert_eq!(names["kind"], kind.kind);
            assert_eq!(names["plural"], kind.plural);
            assert_eq!(spec["group"], kind.group());
            let scope = if kind.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            };
            assert_eq!(spec["scope"], scope, "{}", kind.kind);
            let versions: Vec<String> = spec["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| format!("{}/{}", kind.group(), v["name"].as_str().unwrap()))
                .collect();
            assert_eq!(versions, kind.api_versions, "{}", kind.kind);
            // The CLI's aliases are the CRD's short names and its singular.
            let short: Vec<&str> = names["shortNames"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| n.as_str().unwrap())
                .collect();
            let mut expected = short.clone();
            expected.extend(names["singular"].as_str());
            expected.sort_unstable();
            let mut aliases = kind.aliases.to_vec();
            aliases.sort_unstable();
            assert_eq!(aliases, expected, "{}", kind.kind);
        }
    }

    #[test]
    fn service_fence_crd_is_slimes_shape() {
        let crd = serde_json::to_value(ServiceFence::crd()).unwrap();
        assert_eq!(
            crd["metadata"]["name"],
            "servicefences.microservice.slime.io"
        );
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["svf"]));
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert_eq!(version["subresources"], json!({"status": {}}));
        let props = &version["schema"]["openAPIV3Schema"]["properties"];
        for field in [
            "enable",
            "host",
            "labelSelector",
            "namespaceSelector",
            "workloadSelector",
        ] {
            assert!(
                props["spec"]["properties"].get(field).is_some(),
                "spec.{field}"
            );
        }
        for field in ["domains", "metricStatus"] {
            assert!(
                props["status"]["properties"].get(field).is_some(),
                "status.{field}"
            );
        }
    }

    #[test]
    fn slimeboot_crd_keeps_unknown_fields_and_has_no_status() {
        let crd = serde_json::to_value(SlimeBoot::crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "slimeboots.config.netease.com");
        let version = &crd["spec"]["versions"][0];
        assert!(version.get("subresources").is_none_or(Value::is_null));
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], true);
        let boot: SlimeBoot = serde_json::from_value(json!({
            "apiVersion": "config.netease.com/v1alpha1", "kind": "SlimeBoot",
            "metadata": {"name": "lazyload", "namespace": "mesh-operator"},
            "spec": {"module": [{"kind": "lazyload", "enable": true}]}}))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&boot).unwrap()["spec"]["module"][0]["kind"],
            "lazyload"
        );
    }
}
