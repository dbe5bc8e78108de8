//! meshplane's own deployment manifests, built from k8s-openapi types: its Namespace, the
//! ServiceAccount, least-privilege RBAC for exactly what it reads and writes, a volume for the
//! event log, the Deployment and the Service. `meshplane install --print` renders them.
//!
//! Pure: the options are the only input. Nothing here carries meshplane's managed-by label,
//! so meshplane never takes its own installation for an object it may delete.

use std::collections::BTreeMap;

use actors::kinds::{rbac, Reach};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::Resource;
use serde::Serialize;
use serde_json::Value;

/// The namespace meshplane is installed into unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "meshplane-system";
/// Name of every object of the installation (ServiceAccount, roles, Deployment, Service).
pub const NAME: &str = "meshplane";
/// The Secret (created by the operator, not rendered) holding the API token, and its key.
pub const TOKEN_SECRET: &str = "meshplane-token";
pub const TOKEN_SECRET_KEY: &str = "token";
/// Ports: the HTTP API and Envoy's Access Log Service (Slime's 8082).
pub const HTTP_PORT: i32 = 7470;
pub const ALS_PORT: i32 = 8082;
/// Where the event log lives in the container.
pub const DATA_DIR: &str = "/var/lib/meshplane";
/// The non-root user and group the container runs as.
pub const RUN_AS: i64 = 65532;

/// What the installation is rendered for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallOptions {
    pub namespace: String,
    pub image: String,
}

impl InstallOptions {
    /// The defaults, with the image of this version.
    pub fn new(image: impl Into<String>) -> Self {
        InstallOptions {
            namespace: DEFAULT_NAMESPACE.into(),
            image: image.into(),
        }
    }
}

/// Every object of the installation, in apply order (namespace first, workload last), as
/// JSON in the shape the API server takes.
pub fn manifests(options: &InstallOptions) -> Vec<Value> {
    let ns = options.namespace.as_str();
    vec![
        value(&namespace(ns)),
        value(&service_account(ns)),
        value(&cluster_role()),
        value(&cluster_role_binding(ns)),
        value(&lease_role(ns)),
        value(&lease_role_binding(ns)),
        value(&data_volume_claim(ns)),
        value(&deployment(options)),
        value(&service(ns)),
    ]
}

/// The object as JSON with its `apiVersion` and `kind` (k8s-openapi adds them).
fn value<T: Serialize + Resource>(object: &T) -> Value {
    serde_json::to_value(object).expect("k8s-openapi types always serialize")
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), NAME.to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "control-plane".to_string(),
        ),
    ])
}

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels()),
        ..ObjectMeta::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn namespace(ns: &str) -> Namespace {
    Namespace {
        metadata: meta(None, ns),
        ..Namespace::default()
    }
}

pub fn service_account(ns: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(Some(ns), NAME),
        ..ServiceAccount::default()
    }
}

/// Cluster-wide rules, derived from the kind table (`actors::kinds::rbac`), one per API group
/// and access level:
///
/// - read and write: the kinds projected as applied (namespaces, configmaps, services,
///   endpoints, deployments, statefulsets, Istio VirtualServices), the fence's Istio Sidecars
///   and EnvoyFilter, and ServiceFences, whose status is a subresource of its own;
/// - read only (watched into the log): SlimeBoots (configuration), pods and nodes (instances
///   and their NodeUnits), EndpointSlices;
/// - events: create and patch (core/v1 Events about failed writes, on the source object).
///
/// Nothing else: no secrets, no CRDs (installed by `meshplane crds`, by an administrator),
/// no RBAC objects, no escalation.
pub fn rules() -> Vec<PolicyRule> {
    rbac_rules(Reach::Cluster)
}

fn rbac_rules(reach: Reach) -> Vec<PolicyRule> {
    rbac::rules(reach)
        .into_iter()
        .map(|r| PolicyRule {
            api_groups: Some(vec![r.group.to_string()]),
            resources: Some(r.resources),
            verbs: strings(r.verbs),
            ..PolicyRule::default()
        })
        .collect()
}

pub fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: meta(None, NAME),
        rules: Some(rules()),
        ..ClusterRole::default()
    }
}

fn subject(ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: NAME.into(),
        namespace: Some(ns.into()),
        ..Subject::default()
    }
}

pub fn cluster_role_binding(ns: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        // Named after the namespace: two installations in two namespaces do not collide.
        metadata: meta(None, &format!("{NAME}-{ns}")),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: NAME.into(),
        },
        subjects: Some(vec![subject(ns)]),
    }
}

/// Leader election: Leases in meshplane's own namespace only (the table's kinds granted in
/// meshplane's own namespace).
pub fn lease_role(ns: &str) -> Role {
    Role {
        metadata: meta(Some(ns), &format!("{NAME}-leader-election")),
        rules: Some(rbac_rules(Reach::OwnNamespace)),
    }
}

pub fn lease_role_binding(ns: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta(Some(ns), &format!("{NAME}-leader-election")),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: format!("{NAME}-leader-election"),
        },
        subjects: Some(vec![subject(ns)]),
    }
}

/// The event log's volume: the log is the only source of truth, so it outlives the pod.
pub fn data_volume_claim(ns: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(Some(ns), &format!("{NAME}-data")),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(strings(&["ReadWriteOnce"])),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity("1Gi".into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn http_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpu.into())),
        ("memory".to_string(), Quantity(memory.into())),
    ])
}

/// One replica (the log on a ReadWriteOnce volume has one writer; `Recreate` so that the new
/// pod mounts it only after the old one let go), running `meshplane run`.
pub fn deployment(options: &InstallOptions) -> Deployment {
    let ns = options.namespace.as_str();
    let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), NAME.to_string())]);
    let container = Container {
        name: NAME.into(),
        image: Some(options.image.clone()),
        args: Some(strings(&[
            "run",
            "--data",
            DATA_DIR,
            "--listen",
            "0.0.0.0:7470",
            "--als-listen",
            "0.0.0.0:8082",
            "--in-cluster",
        ])),
        env: Some(vec![
            EnvVar {
                name: "MESHPLANE_TOKEN".into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: TOKEN_SECRET.into(),
                        key: TOKEN_SECRET_KEY.into(),
                        optional: Some(false),
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
            // In-cluster clients call the API by its Service's names; the API refuses any
            // other `Host` (against DNS rebinding), IP addresses aside.
            EnvVar {
                name: "MESHPLANE_ALLOWED_HOSTS".into(),
                value: Some(format!(
                    "{NAME},{NAME}.{ns},{NAME}.{ns}.svc,{NAME}.{ns}.svc.cluster.local"
                )),
                ..EnvVar::default()
            },
            // The lease holder's identity.
            EnvVar {
                name: "POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
            EnvVar {
                name: "POD_NAMESPACE".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.namespace".into(),
                        ..ObjectFieldSelector::default()
                    }),
                    ..EnvVarSource::default()
                }),
                ..EnvVar::default()
            },
        ]),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".into()),
                container_port: HTTP_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("grpc-als".into()),
                container_port: ALS_PORT,
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(http_probe("/readyz", 5)),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(10),
            ..http_probe("/healthz", 10)
        }),
        resources: Some(ResourceRequirements {
            requests: Some(quantities("100m", "128Mi")),
            limits: Some(quantities("1", "512Mi")),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(strings(&["ALL"])),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    Deployment {
        metadata: meta(Some(ns), NAME),
        spec: DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(NAME.into()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "data".into(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: format!("{NAME}-data"),
                            ..PersistentVolumeClaimVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

pub fn service(ns: &str) -> Service {
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        // The HTTP API speaks HTTP/1.1; the ALS is gRPC (HTTP/2), so Istio treats it as such.
        app_protocol: Some(if name == "http" { "http" } else { "grpc" }.into()),
        ..ServicePort::default()
    };
    Service {
        metadata: meta(Some(ns), NAME),
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                NAME.to_string(),
            )])),
            ports: Some(vec![port("http", HTTP_PORT), port("grpc-als", ALS_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::MANAGED_BY_LABEL;

    #[test]
    fn renders_every_object_in_the_namespace_asked_for() {
        let objects = manifests(&InstallOptions {
            namespace: "mesh".into(),
            image: "meshplane:test".into(),
        });
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "PersistentVolumeClaim",
                "Deployment",
                "Service"
            ]
        );
        for o in &objects {
            assert!(o["apiVersion"].is_string(), "{o}");
            assert!(
                o["metadata"]["labels"].get(MANAGED_BY_LABEL).is_none(),
                "meshplane must not own its own installation: {o}"
            );
            if !matches!(
                o["kind"].as_str(),
                Some("Namespace" | "ClusterRole" | "ClusterRoleBinding")
            ) {
                assert_eq!(o["metadata"]["namespace"], "mesh", "{o}");
            }
        }
        let deploy = &objects[7];
        let container = &deploy["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "meshplane:test");
        assert_eq!(
            container["env"][0]["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": TOKEN_SECRET, "key": TOKEN_SECRET_KEY, "optional": false})
        );
        assert_eq!(
            container["env"][1]["value"],
            "meshplane,meshplane.mesh,meshplane.mesh.svc,meshplane.mesh.svc.cluster.local",
            "in-cluster clients' Host names are allowed"
        );
        assert_eq!(objects[3]["subjects"][0]["namespace"], "mesh");
    }

    /// The roles grant exactly what the kind table needs: every permission of every kind, in
    /// the ClusterRole or meshplane's namespace, and nothing else.
    #[test]
    fn rbac_covers_exactly_the_kind_table() {
        let granted = |rules: Vec<PolicyRule>| -> BTreeSet<(String, String, Vec<String>)> {
            rules
                .into_iter()
                .flat_map(|r| {
                    let group = r.api_groups.unwrap().concat();
                    let verbs = r.verbs;
                    r.resources
                        .unwrap()
                        .into_iter()
                        .map(move |x| (group.clone(), x, verbs.clone()))
                })
                .collect()
        };
        let needed = |reach: Reach| -> BTreeSet<(String, String, Vec<String>)> {
            actors::kinds::all()
                .flat_map(rbac::permissions)
                .filter(|p| p.reach == reach)
                .map(|p| (p.group.to_string(), p.resource, strings(p.verbs)))
                .collect()
        };
        assert_eq!(granted(rules()), needed(Reach::Cluster));
        assert_eq!(
            granted(lease_role("mesh").rules.unwrap()),
            needed(Reach::OwnNamespace)
        );
        assert_eq!(
            granted(lease_role("mesh").rules.unwrap()),
            BTreeSet::from([(
                "coordination.k8s.io".to_string(),
                "leases".to_string(),
                strings(&["get", "list", "watch", "create", "update", "patch"])
            )])
        );
    }

    #[test]
    fn rbac_never_grants_secrets_wildcards_or_rbac() {
        for r in rules() {
            let resources = r.resources.unwrap();
            assert!(!r
                .verbs
                .iter()
                .any(|v| v == "*" || v == "escalate" || v == "bind"));
            assert!(!resources.iter().any(|x| x == "*" || x == "secrets"));
            assert!(!r.api_groups.unwrap().iter().any(|g| g == "*"
                || g == "rbac.authorization.k8s.io"
                || g == "apiextensions.k8s.io"));
        }
    }
}
