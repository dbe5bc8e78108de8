//! One row of the kind table ([`KindSpec`]) and its facets.
//!
//! A row is built with `const` builder calls, one per facet, so each concept's table reads as a
//! list of what meshplane does with each kind, and facets that go together (a validation and a
//! projection; a status subresource and a write phase) can only be set together.

use serde_json::Value;

use super::validate::names::NameRule;
use crate::decider::Rejection;

/// Checks a whole applied object (apiVersion, kind, metadata and body) of one kind.
pub type Validate = fn(&Value) -> Result<(), Rejection>;

/// Whether objects of a kind live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// Who defines a kind's API in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Definition {
    /// Kubernetes itself.
    BuiltIn,
    /// A CustomResourceDefinition meshplane installs (`meshplane crds`).
    Meshplane,
    /// One of Istio's CRDs, installed with Istio; meshplane only reads and writes objects of it.
    Istio,
}

/// How resources of a kind applied through meshplane reach the outside world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// Projected as applied (the manifest directory, Kubernetes, etcd).
    AsApplied,
    /// Projected by the concept that reads it, which adds what it computed (a ServiceFence
    /// gets its status from the fence concept).
    ByConcept,
    /// Configuration meshplane itself reads; never projected (a SlimeBoot configures the fence
    /// concept; there is no slime-boot operator to hand it to).
    Configuration,
    /// Not accepted by `apply`: the kind is only watched (a Pod), only rendered by a concept
    /// (a Sidecar), or only used by meshplane's own machinery (its leader Lease).
    NotApplied,
}

/// What the watchers keep of an object of a watched kind.
///
/// Every observation becomes a log event, so what is kept decides both the size of the log and
/// what counts as a change: only the kept fields can make an event. Metadata (labels,
/// annotations, owners) is always kept; server bookkeeping never is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observe {
    /// The body fields kept, as paths from the object's root.
    pub keep: &'static [&'static [&'static str]],
    /// Drop `targetRef.resourceVersion` wherever it appears: Endpoints and EndpointSlices name
    /// their Pods with it, and it changes with every write to the Pod (a status condition), so
    /// keeping it would turn each Pod update into an Endpoints change.
    pub drop_target_ref_versions: bool,
}

impl Observe {
    /// The spec only. Never the status of a custom resource: meshplane writes ServiceFence
    /// status itself, and observing it would echo every status write back into the log.
    pub const SPEC: Observe = Observe::keep(&[&["spec"]]);

    pub const fn keep(keep: &'static [&'static [&'static str]]) -> Observe {
        Observe {
            keep,
            drop_target_ref_versions: false,
        }
    }

    pub const fn dropping_target_ref_versions(self) -> Observe {
        Observe {
            drop_target_ref_versions: true,
            ..self
        }
    }
}

/// When, within one pass of the applier, objects of a kind are written. Objects others live in
/// or are owned by go first, so the objects written after them can refer to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Namespaces: every namespaced object lives in one.
    Namespaces,
    /// Owners of other written objects (a ServiceFence owns its Sidecar): their uids, known
    /// once written, fill the owner references of the next phase.
    Owners,
    /// Everything else.
    Objects,
    /// Status subresources, after every object (their objects must exist). No kind is written
    /// in this phase; a kind with [`Write::status`] has its status written here.
    Statuses,
}

/// How meshplane writes a kind (the applier's server-side apply, and deletes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub phase: Phase,
    /// Whether meshplane writes the kind's status subresource (a ServiceFence's status, on
    /// fences it owns and on fences someone else applied).
    pub status: bool,
}

/// Verbs meshplane's own machinery needs on a kind, beyond what watching and writing imply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub verbs: &'static [&'static str],
    pub reach: Reach,
}

/// Where a permission is granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// In every namespace (the ClusterRole).
    Cluster,
    /// In meshplane's own namespace only (a Role): its leader Lease.
    OwnNamespace,
}

/// A column `meshplane get` shows for objects of a kind, after NAME (like a CRD's
/// `additionalPrinterColumns`).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub title: &'static str,
    pub value: fn(&Value) -> String,
}

/// Everything meshplane knows about one Kubernetes kind.
#[derive(Clone, Copy, Debug)]
pub struct KindSpec {
    pub kind: &'static str,
    /// The apiVersions meshplane knows the kind by (`apps/v1`, `networking.istio.io/v1`). The
    /// first is the one it renders and projects objects with; every one is accepted in an
    /// applied object.
    pub api_versions: &'static [&'static str],
    /// The apiVersion meshplane lists and watches the kind at, when it is not the first of
    /// [`KindSpec::api_versions`] (see [`KindSpec::api_version`]).
    list_version: Option<&'static str>,
    pub namespaced: bool,
    /// Lower-case plural, as used in URLs, RBAC rules and the CLI (`configmaps`).
    pub plural: &'static str,
    /// Other names the CLI accepts (`cm`, `configmap`), lower-case.
    pub aliases: &'static [&'static str],
    pub definition: Definition,
    /// How resources of this kind applied through meshplane are projected;
    /// [`Projection::NotApplied`] when `apply` does not accept the kind.
    pub projection: Projection,
    /// Set exactly when `apply` accepts the kind (see [`KindSpec::applied`]).
    validate: Option<Validate>,
    /// How the API server checks an object's name: a DNS-1123 subdomain unless the kind says
    /// otherwise (a Namespace's is a label, a Service's a DNS-1035 label).
    pub name_rule: NameRule,
    /// Set when the watchers observe the kind into the log.
    pub observe: Option<Observe>,
    /// Set when the applier writes (and deletes) objects of the kind.
    pub write: Option<Write>,
    /// What meshplane's own machinery needs beyond watching and writing.
    pub grant: Option<Grant>,
    /// The columns `meshplane get` shows.
    pub columns: &'static [Column],
}

impl KindSpec {
    /// A kind meshplane does nothing with yet; the builder calls below say what it does.
    pub const fn new(
        kind: &'static str,
        api_versions: &'static [&'static str],
        plural: &'static str,
        scope: Scope,
    ) -> KindSpec {
        assert!(!api_versions.is_empty(), "a kind needs an apiVersion");
        KindSpec {
            kind,
            api_versions,
            list_version: None,
            namespaced: matches!(scope, Scope::Namespaced),
            plural,
            aliases: &[],
            definition: Definition::BuiltIn,
            projection: Projection::NotApplied,
            validate: None,
            name_rule: NameRule::Dns1123Subdomain,
            observe: None,
            write: None,
            grant: None,
            columns: &[],
        }
    }

    pub const fn aliases(self, aliases: &'static [&'static str]) -> KindSpec {
        KindSpec { aliases, ..self }
    }

    pub const fn defined_by(self, definition: Definition) -> KindSpec {
        KindSpec { definition, ..self }
    }

    /// List and watch the kind at `api_version` rather than at the first of its apiVersions.
    pub const fn listed_at(self, api_version: &'static str) -> KindSpec {
        KindSpec {
            list_version: Some(api_version),
            ..self
        }
    }

    /// `apply` accepts the kind: objects are checked with `validate`, then projected.
    pub const fn applied(self, projection: Projection, validate: Validate) -> KindSpec {
        assert!(
            !matches!(projection, Projection::NotApplied),
            "an applied kind is projected somehow"
        );
        KindSpec {
            projection,
            validate: Some(validate),
            ..self
        }
    }

    /// Objects of the kind are named by `rule` rather than as DNS-1123 subdomains.
    pub const fn named(self, name_rule: NameRule) -> KindSpec {
        KindSpec { name_rule, ..self }
    }

    /// The watchers observe the kind, keeping what `observe` says.
    pub const fn observed(self, observe: Observe) -> KindSpec {
        KindSpec {
            observe: Some(observe),
            ..self
        }
    }

    /// The applier writes the kind, in `phase`.
    pub const fn written(self, phase: Phase) -> KindSpec {
        assert!(
            !matches!(phase, Phase::Statuses),
            "statuses are written after every kind"
        );
        KindSpec {
            write: Some(Write {
                phase,
                status: false,
            }),
            ..self
        }
    }

    /// The applier also writes the kind's status subresource (call after [`KindSpec::written`]).
    pub const fn with_status(self) -> KindSpec {
        let Some(write) = self.write else {
            panic!("only a written kind has its status written");
        };
        KindSpec {
            write: Some(Write {
                status: true,
                ..write
            }),
            ..self
        }
    }

    /// meshplane's own machinery needs `verbs` on the kind, in `reach`.
    pub const fn granted(self, verbs: &'static [&'static str], reach: Reach) -> KindSpec {
        KindSpec {
            grant: Some(Grant { verbs, reach }),
            ..self
        }
    }

    pub const fn columns(self, columns: &'static [Column]) -> KindSpec {
        KindSpec { columns, ..self }
    }

    /// The apiVersion meshplane lists and watches the kind at.
    pub fn api_version(&self) -> &'static str {
        self.list_version.unwrap_or(self.api_versions[0])
    }

    /// The apiVersion the projections render the kind at. An object listed at another version
    /// ([`KindSpec::api_version`]) is the same object: what was listed is keyed by this one, so
    /// it is compared with what is desired, never taken for an undesired object.
    pub fn render_version(&self) -> &'static str {
        self.api_versions[0]
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &'static str {
        group_of(self.api_version())
    }

    /// The version within the group, of [`KindSpec::api_version`].
    pub fn version(&self) -> &'static str {
        let api_version = self.api_version();
        api_version
            .rsplit_once('/')
            .map_or(api_version, |(_, version)| version)
    }

    /// Whether `apply` accepts the kind.
    pub fn is_applied(&self) -> bool {
        self.validate.is_some()
    }

    /// Whether the watchers observe the kind.
    pub fn is_watched(&self) -> bool {
        self.observe.is_some()
    }

    /// Whether the applier writes the kind.
    pub fn is_written(&self) -> bool {
        self.write.is_some()
    }

    /// Whether the applier writes the kind's status subresource.
    pub fn writes_status(&self) -> bool {
        self.write.is_some_and(|w| w.status)
    }

    /// Validate a whole object (apiVersion, kind, metadata and body) of this kind.
    pub fn validate(&self, object: &Value) -> Result<(), Rejection> {
        match self.validate {
            Some(validate) => validate(object),
            None => Err(Rejection::invalid(
                "kind",
                format!("{} is not applied through meshplane", self.kind),
            )),
        }
    }

    /// Whether `name` (case-insensitive) refers to this kind: its name, plural or an alias.
    pub fn matches(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(self.kind)
            || name.eq_ignore_ascii_case(self.plural)
            || self.aliases.iter().any(|a| name.eq_ignore_ascii_case(a))
    }
}

/// The group of an apiVersion (`""` for the core group's `v1`).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}
