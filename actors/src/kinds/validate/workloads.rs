//! Workloads (Deployments, StatefulSets; the same rules hold for DaemonSets and ReplicaSets):
//! replicas and counts are not negative, the selector is valid, non-empty and matches the pod
//! template's labels, and the template is a valid pod: at least one container, containers named
//! by unique DNS labels with an image and valid ports, restartPolicy Always.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::report::{
    check, duplicate, forbidden, invalid, invalid_str, required, shown, unsupported,
};
use super::{meta, names, ports};
use crate::decider::Rejection;

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const POD_MANAGEMENT: &[&str] = &["OrderedReady", "Parallel"];
const STATEFUL_UPDATES: &[&str] = &["OnDelete", "RollingUpdate"];
const DEPLOYMENT_STRATEGIES: &[&str] = &["Recreate", "RollingUpdate"];

pub fn deployment(deployment: &Deployment) -> Result<(), Rejection> {
    let spec = &deployment.spec;
    not_negative("spec.replicas", spec.replicas)?;
    not_negative("spec.minReadySeconds", spec.min_ready_seconds)?;
    not_negative("spec.revisionHistoryLimit", spec.revision_history_limit)?;
    if let Some(t) = spec
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .filter(|t| !t.is_empty() && !DEPLOYMENT_STRATEGIES.contains(t))
    {
        return Err(unsupported("spec.strategy.type", t, DEPLOYMENT_STRATEGIES));
    }
    selected_template(&spec.selector, &spec.template, "deployment")
}

pub fn stateful_set(set: &StatefulSet) -> Result<(), Rejection> {
    let spec = &set.spec;
    not_negative("spec.replicas", spec.replicas)?;
    not_negative("spec.minReadySeconds", spec.min_ready_seconds)?;
    not_negative("spec.revisionHistoryLimit", spec.revision_history_limit)?;
    if let Some(p) = spec
        .pod_management_policy
        .as_deref()
        .filter(|p| !p.is_empty() && !POD_MANAGEMENT.contains(p))
    {
        return Err(unsupported("spec.podManagementPolicy", p, POD_MANAGEMENT));
    }
    if let Some(t) = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .filter(|t| !t.is_empty() && !STATEFUL_UPDATES.contains(t))
    {
        return Err(unsupported("spec.updateStrategy.type", t, STATEFUL_UPDATES));
    }
    selected_template(&spec.selector, &spec.template, "statefulset")
}

fn not_negative(field: &str, value: Option<i32>) -> Result<(), Rejection> {
    match value {
        Some(n) if n < 0 => Err(invalid(field, n, "must be greater than or equal to 0")),
        _ => Ok(()),
    }
}

/// The selector and the template it selects (`ValidatePodTemplateSpecForReplicaSet`).
fn selected_template(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    kind: &str,
) -> Result<(), Rejection> {
    label_selector(selector, "spec.selector")?;
    let match_labels = selector.match_labels.as_ref();
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    if match_labels.is_none_or(BTreeMap::is_empty) && expressions.is_empty() {
        return Err(invalid(
            "spec.selector",
            "{}",
            &format!("empty selector is invalid for {kind}"),
        ));
    }
    let empty = BTreeMap::new();
    let template_meta = template.metadata.as_ref();
    let labels = template_meta
        .and_then(|m| m.labels.as_ref())
        .unwrap_or(&empty);
    if !selects(selector, labels) {
        return Err(invalid(
            "spec.template.metadata.labels",
            meta::shown_labels(labels),
            "`selector` does not match template `labels`",
        ));
    }
    meta::labels(Some(labels), "spec.template.metadata.labels")?;
    meta::annotations(
        template_meta.and_then(|m| m.annotations.as_ref()),
        "spec.template.metadata.annotations",
    )?;
    let Some(pod) = &template.spec else {
        return Err(required("spec.template.spec.containers", ""));
    };
    if let Some(policy) = pod.restart_policy.as_deref().filter(|p| *p != "Always") {
        return Err(unsupported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if pod.active_deadline_seconds.is_some() {
        return Err(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    if pod.containers.is_empty() {
        return Err(required("spec.template.spec.containers", ""));
    }
    let init = pod.init_containers.as_deref().unwrap_or_default();
    let all = init
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.template.spec.initContainers[{i}]"), c))
        .chain(
            pod.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("spec.template.spec.containers[{i}]"), c)),
        )
        .collect::<Vec<_>>();
    let mut seen = BTreeSet::new();
    for (at, c) in &all {
        container(c, at)?;
        if !seen.insert(c.name.as_str()) {
            return Err(duplicate(format!("{at}.name"), shown(&c.name)));
        }
    }
    ports::unique_host_ports(all.iter().map(|(at, c)| {
        (
            format!("{at}.ports"),
            c.ports.as_deref().unwrap_or_default(),
        )
    }))
}

/// One container (`validateContainers`, the parts that need no other object).
fn container(c: &Container, at: &str) -> Result<(), Rejection> {
    if c.name.is_empty() {
        return Err(required(format!("{at}.name"), ""));
    }
    check(
        format!("{at}.name"),
        &c.name,
        names::is_dns1123_label(&c.name),
    )?;
    match c.image.as_deref() {
        None | Some("") => return Err(required(format!("{at}.image"), "")),
        Some(image) if image.trim() != image => {
            return Err(invalid_str(
                format!("{at}.image"),
                image,
                "must not have leading or trailing whitespace",
            ))
        }
        Some(_) => {}
    }
    if let Some(p) = c
        .image_pull_policy
        .as_deref()
        .filter(|p| !p.is_empty() && !PULL_POLICIES.contains(p))
    {
        return Err(unsupported(
            format!("{at}.imagePullPolicy"),
            p,
            PULL_POLICIES,
        ));
    }
    ports::container(
        c.ports.as_deref().unwrap_or_default(),
        &format!("{at}.ports"),
    )
}

/// A label selector's own validity (`ValidateLabelSelector`): keys are qualified names,
/// `In`/`NotIn` need values and `Exists`/`DoesNotExist` take none, values are label values.
pub fn label_selector(selector: &LabelSelector, at: &str) -> Result<(), Rejection> {
    for (i, req) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{at}.matchExpressions[{i}]");
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(required(
                    format!("{at}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ))
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(forbidden(
                    format!("{at}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(invalid_str(
                    format!("{at}.operator"),
                    other,
                    "not a valid selector operator",
                ))
            }
        }
        check(
            format!("{at}.key"),
            &req.key,
            names::is_qualified_name(&req.key),
        )?;
        for (j, value) in values.iter().enumerate() {
            check(
                format!("{at}.values[{j}]"),
                value,
                names::is_label_value(value),
            )?;
        }
    }
    meta::labels(selector.match_labels.as_ref(), &format!("{at}.matchLabels"))
}

/// Whether `selector` (already valid) selects an object labelled `labels`.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn deployment(spec: Value) -> Result<(), String> {
        super::super::deployment(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": spec}))
        .map_err(|e| e.to_string())
    }

    fn spec(replicas: i64, selector: Value, labels: Value, containers: Value) -> Value {
        json!({"replicas": replicas, "selector": selector,
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}}})
    }

    fn web() -> Value {
        json!([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}])
    }

    #[test]
    fn a_valid_deployment_passes() {
        deployment(spec(
            2,
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web", "v": "1"}),
            web(),
        ))
        .unwrap();
        deployment(spec(
            0,
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]},
                {"key": "old", "operator": "DoesNotExist"}]}),
            json!({"app": "web"}),
            web(),
        ))
        .unwrap();
    }

    #[test]
    fn replicas_may_not_be_negative() {
        assert_eq!(
            deployment(spec(
                -1,
                json!({"matchLabels": {"app": "web"}}),
                json!({"app": "web"}),
                web()
            ))
            .unwrap_err(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn the_selector_must_match_the_template() {
        assert_eq!(
            deployment(spec(1, json!({"matchLabels": {"app": "api"}}), json!({"app": "web"}), web()))
                .unwrap_err(),
            "spec.template.metadata.labels: Invalid value: {\"app\": \"web\"}: `selector` does not match template `labels`"
        );
        assert_eq!(
            deployment(spec(1, json!({}), json!({"app": "web"}), web())).unwrap_err(),
            "spec.selector: Invalid value: {}: empty selector is invalid for deployment"
        );
        assert!(deployment(spec(
            1,
            json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
            json!({"app": "web"}),
            web()
        ))
        .unwrap_err()
        .starts_with("spec.selector.matchExpressions[0].values: Required value"));
        assert!(deployment(spec(
            1,
            json!({"matchExpressions": [{"key": "app", "operator": "Has"}]}),
            json!({"app": "web"}),
            web()
        ))
        .unwrap_err()
        .starts_with("spec.selector.matchExpressions[0].operator: Invalid value: \"Has\""));
    }

    #[test]
    fn containers_are_required_named_uniquely_and_valid() {
        let sel = || json!({"matchLabels": {"app": "web"}});
        let labels = || json!({"app": "web"});
        assert_eq!(
            deployment(spec(1, sel(), labels(), json!([]))).unwrap_err(),
            "spec.template.spec.containers: Required value"
        );
        assert_eq!(
            deployment(spec(
                1,
                sel(),
                labels(),
                json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}])
            ))
            .unwrap_err(),
            "spec.template.spec.containers[1].name: Duplicate value: \"a\""
        );
        assert!(deployment(spec(1, sel(), labels(), json!([{"name": "A_b", "image": "x"}])))
            .unwrap_err()
            .starts_with("spec.template.spec.containers[0].name: Invalid value: \"A_b\": a lowercase RFC 1123 label"));
        assert_eq!(
            deployment(spec(1, sel(), labels(), json!([{"name": "a"}]))).unwrap_err(),
            "spec.template.spec.containers[0].image: Required value"
        );
        assert_eq!(
            deployment(spec(1, sel(), labels(), json!([{"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}])))
                .unwrap_err(),
            "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            deployment(spec(
                1,
                sel(),
                labels(),
                json!([{"name": "a", "image": "x", "ports": [{"containerPort": 0}]}])
            ))
            .unwrap_err(),
            "spec.template.spec.containers[0].ports[0].containerPort: Required value"
        );
        assert_eq!(
            deployment(spec(
                1,
                sel(),
                labels(),
                json!([
                {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]}])
            ))
            .unwrap_err(),
            "spec.template.spec.containers[1].ports[0].hostPort: Duplicate value: \"8080/TCP\""
        );
        let mut never = spec(1, sel(), labels(), web());
        never["template"]["spec"]["restartPolicy"] = json!("Never");
        assert!(deployment(never)
            .unwrap_err()
            .starts_with("spec.template.spec.restartPolicy: Unsupported value: \"Never\""));
    }

    #[test]
    fn stateful_sets_share_the_rules() {
        let set = |spec: Value| {
            super::super::stateful_set(&json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "db"}, "spec": spec}))
            .map_err(|e| e.to_string())
        };
        let mut s = spec(
            -1,
            json!({"matchLabels": {"app": "db"}}),
            json!({"app": "db"}),
            web(),
        );
        assert!(set(s.clone())
            .unwrap_err()
            .starts_with("spec.replicas: Invalid value: -1"));
        s["replicas"] = json!(1);
        set(s.clone()).unwrap();
        s["podManagementPolicy"] = json!("Serial");
        assert!(set(s)
            .unwrap_err()
            .starts_with("spec.podManagementPolicy: Unsupported value"));
        assert!(set(spec(
            1,
            json!({"matchLabels": {"app": "db"}}),
            json!({}),
            web()
        ))
        .unwrap_err()
        .ends_with("`selector` does not match template `labels`"));
    }
}
