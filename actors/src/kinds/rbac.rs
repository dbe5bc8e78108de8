//! The RBAC meshplane needs, derived from the kind table: what it watches it may read, what it
//! writes it may create, patch and delete, a status it writes it may patch, and its machinery
//! gets the verbs its kinds were granted. The install manifest renders exactly these rules, so
//! the permissions cannot drift from what the adapters do.

use super::spec::{KindSpec, Reach};

/// What watching a kind needs (list, then watch; get to read one object again).
pub const READ: &[&str] = &["get", "list", "watch"];
/// What writing a kind needs: server-side apply is a patch (create on first apply), deletes of
/// objects no longer desired, and the start-up listing of what meshplane owns.
pub const OWN: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];
/// What writing a status subresource needs.
pub const STATUS: &[&str] = &["get", "update", "patch"];

/// One permission a kind needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    /// The plural, or `plural/status` for the status subresource.
    pub resource: String,
    pub verbs: &'static [&'static str],
    pub reach: Reach,
}

/// Every permission `kind` needs: none for a kind meshplane only accepts in `apply`.
pub fn permissions(kind: &KindSpec) -> Vec<Permission> {
    let permission = |resource: String, verbs, reach| Permission {
        group: kind.group(),
        resource,
        verbs,
        reach,
    };
    let mut out = Vec::new();
    if kind.is_written() {
        out.push(permission(kind.plural.to_string(), OWN, Reach::Cluster));
    } else if kind.is_watched() {
        out.push(permission(kind.plural.to_string(), READ, Reach::Cluster));
    }
    if kind.writes_status() {
        out.push(permission(
            format!("{}/status", kind.plural),
            STATUS,
            Reach::Cluster,
        ));
    }
    if let Some(grant) = kind.grant {
        out.push(permission(
            kind.plural.to_string(),
            grant.verbs,
            grant.reach,
        ));
    }
    out
}

/// One rule of a (Cluster)Role: verbs on resources of one API group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub group: &'static str,
    pub resources: Vec<String>,
    pub verbs: &'static [&'static str],
}

/// The rules granted in `reach`: one per API group and set of verbs, in table order.
pub fn rules(reach: Reach) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    let permissions = super::all()
        .flat_map(permissions)
        .filter(|p| p.reach == reach);
    for p in permissions {
        match rules
            .iter_mut()
            .find(|r| r.group == p.group && r.verbs == p.verbs)
        {
            Some(rule) => rule.resources.push(p.resource),
            None => rules.push(Rule {
                group: p.group,
                resources: vec![p.resource],
                verbs: p.verbs,
            }),
        }
    }
    rules
}
