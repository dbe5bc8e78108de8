//! The fence concept (Slime lazyload): which services a fenced service really calls, so its
//! Istio Sidecar can be narrowed to them.
//!
//! Inputs are resources (ServiceFences, the SlimeBoot configuration, Namespaces, Services,
//! VirtualServices: see [`kinds`]) and the fence's own events (dependencies learned from
//! traffic, their ageing, passed deadlines). From them the state keeps, for every fence that
//! exists — applied by hand, or created automatically by the `slime.io/serviceFenced`
//! hierarchy — its domains and workload selector, recomputed incrementally: each input change
//! re-renders exactly the fences that depend on it (reverse indexes by host, namespace and
//! selector label), which [`FenceState::rebuild_all`] cross-checks in tests.

pub mod alias;
pub mod attribution;
pub mod cluster;
pub mod config;
pub mod domains;
pub mod explain;
pub mod kinds;
pub mod learned;
pub mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use events::schema::{
    DependencyForgotten, DependencyIdle, DependencyLearned, DependencySeen, FenceKey,
    HostDeadlinePassed, ResourceKey, Via,
};
use events::{Event, ExpectedVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ctx::Ctx;
use crate::decider::{expect_version, Decider, Decision, Meta, Outcome, Rejection};
use cluster::{namespace_of_host, ObjectKey};
pub use config::FenceConfig;
pub use domains::{Domain, DomainSource, DomainStatus};
pub use learned::Learned;
pub use spec::{FenceSpec, Strategy};

/// The auto-fence label on services and namespaces.
pub const FENCED_LABEL: &str = "slime.io/serviceFenced";
/// The label auto-created fences carry (and manual ones do not need).
pub const CREATED_BY_LABEL: &str = "app.kubernetes.io/created-by";
pub const CREATED_BY_VALUE: &str = "fence-controller";

/// Kinds of resources the fence reads (declared in [`kinds`]).
pub const SERVICE_FENCE_KIND: &str = kinds::SERVICE_FENCE.kind;
pub const SLIMEBOOT_KIND: &str = kinds::SLIME_BOOT.kind;
pub const VIRTUAL_SERVICE_KIND: &str = kinds::VIRTUAL_SERVICE.kind;
/// Kinds of the objects the fence renders (declared in [`kinds`]).
pub const SIDECAR_KIND: &str = kinds::SIDECAR.kind;
pub const ENVOY_FILTER_KIND: &str = kinds::ENVOY_FILTER.kind;

/// Whether the fence concept folds resources of this kind.
pub fn reads_kind(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace" | "Service" | VIRTUAL_SERVICE_KIND | SERVICE_FENCE_KIND | SLIMEBOOT_KIND
    )
}

/// Why a fence exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// A ServiceFence resource (never touched by auto-fencing).
    Manual { position: u64 },
    /// Created by the auto-fence hierarchy.
    Auto { reason: AutoReason },
}

/// Which level of the `slime.io/serviceFenced` hierarchy fenced a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AutoReason {
    ServiceLabel,
    NamespaceLabel,
    DefaultFence,
}

impl AutoReason {
    pub fn describe(self) -> &'static str {
        match self {
            AutoReason::ServiceLabel => "service label slime.io/serviceFenced=true",
            AutoReason::NamespaceLabel => "namespace label slime.io/serviceFenced=true",
            AutoReason::DefaultFence => "defaultFence",
        }
    }
}

/// One existing fence, rendered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceView {
    pub origin: Origin,
    pub spec: FenceSpec,
    pub domains: BTreeMap<String, Domain>,
    /// The Sidecar's workload selector; `None` when the fence wants its service's selector and
    /// the service is missing (then there is no Sidecar, as in Slime).
    pub workload_selector: Option<BTreeMap<String, String>>,
}

impl FenceView {
    /// Whether the fence has a Sidecar.
    pub fn has_sidecar(&self) -> bool {
        self.spec.enable && self.workload_selector.is_some()
    }
}

/// What a fence's rendering depends on, for the reverse indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Refs {
    hosts: BTreeSet<String>,
    namespaces: BTreeSet<String>,
    pairs: BTreeSet<(String, String)>,
}

/// Reverse indexes from inputs to the fences that read them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Index {
    by_host: BTreeMap<String, BTreeSet<FenceKey>>,
    by_namespace: BTreeMap<String, BTreeSet<FenceKey>>,
    by_pair: BTreeMap<(String, String), BTreeSet<FenceKey>>,
    refs: BTreeMap<FenceKey, Refs>,
}

impl Index {
    fn remove(&mut self, key: &FenceKey) {
        let Some(refs) = self.refs.remove(key) else {
            return;
        };
        fn drop_from<K: Ord>(map: &mut BTreeMap<K, BTreeSet<FenceKey>>, k: K, key: &FenceKey) {
            if let Some(set) = map.get_mut(&k) {
                set.remove(key);
                if set.is_empty() {
                    map.remove(&k);
                }
            }
        }
        for h in refs.hosts {
            drop_from(&mut self.by_host, h, key);
        }
        for ns in refs.namespaces {
            drop_from(&mut self.by_namespace, ns, key);
        }
        for p in refs.pairs {
            drop_from(&mut self.by_pair, p, key);
        }
    }

    fn add(&mut self, key: &FenceKey, refs: Refs) {
        for h in &refs.hosts {
            self.by_host
                .entry(h.clone())
                .or_default()
                .insert(key.clone());
        }
        for ns in &refs.namespaces {
            self.by_namespace
                .entry(ns.clone())
                .or_default()
                .insert(key.clone());
        }
        for p in &refs.pairs {
            self.by_pair
                .entry(p.clone())
                .or_default()
                .insert(key.clone());
        }
        self.refs.insert(key.clone(), refs);
    }
}

/// State of the fence concept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceState {
    /// Every SlimeBoot with a lazyload module; the first in key order is in force.
    pub configs: BTreeMap<ResourceKey, FenceConfig>,
    pub config: FenceConfig,
    pub cluster: cluster::ClusterView,
    /// ServiceFence resources, with the position of their last change.
    pub manual: BTreeMap<FenceKey, (FenceSpec, u64)>,
    pub learned: BTreeMap<FenceKey, BTreeMap<String, Learned>>,
    /// Static hosts whose deadline was recorded as passed: host → the deadline.
    pub passed: BTreeMap<FenceKey, BTreeMap<String, i64>>,
    /// Stream version of each fence's stream.
    pub versions: BTreeMap<FenceKey, u64>,
    /// Every existing fence, rendered.
    pub fences: BTreeMap<FenceKey, FenceView>,
    index: Index,
    /// The ServiceFences applied through meshplane, as applied: what the fence's projection
    /// renders them from (meshplane owns them whole; an observed one only gets a status). A
    /// copy of the resource concept's, so the projection reads only this state; left out of
    /// the digest, which the resource concept's already covers.
    pub applied: BTreeMap<FenceKey, crate::resource::StoredResource>,
}

/// The fence state as the digest sees it: every field but the copy of the applied
/// ServiceFences, in declaration order (postcard encodes fields by position, so this is the
/// digest of the state before the copy existed).
#[derive(Serialize)]
struct DigestView<'a> {
    configs: &'a BTreeMap<ResourceKey, FenceConfig>,
    config: &'a FenceConfig,
    cluster: &'a cluster::ClusterView,
    manual: &'a BTreeMap<FenceKey, (FenceSpec, u64)>,
    learned: &'a BTreeMap<FenceKey, BTreeMap<String, Learned>>,
    passed: &'a BTreeMap<FenceKey, BTreeMap<String, i64>>,
    versions: &'a BTreeMap<FenceKey, u64>,
    fences: &'a BTreeMap<FenceKey, FenceView>,
    index: &'a Index,
}

impl FenceState {
    fn digest_view(&self) -> DigestView<'_> {
        DigestView {
            configs: &self.configs,
            config: &self.config,
            cluster: &self.cluster,
            manual: &self.manual,
            learned: &self.learned,
            passed: &self.passed,
            versions: &self.versions,
            fences: &self.fences,
            index: &self.index,
        }
    }

    /// Keep (or drop) the copy of an applied ServiceFence.
    fn note_applied(&mut self, event: &Event, meta: &Meta) {
        match event {
            Event::ResourceApplied(e) if e.key.kind == SERVICE_FENCE_KIND => {
                let fence = FenceKey::new(&e.key.namespace, &e.key.name);
                self.applied.insert(
                    fence,
                    crate::resource::StoredResource {
                        api_version: e.api_version.clone(),
                        labels: e.labels.clone(),
                        annotations: e.annotations.clone(),
                        body: e.body.clone(),
                        version: meta.stream_version,
                        created_position: meta.position,
                        created_at_ms: meta.recorded_at_ms,
                        updated_position: meta.position,
                        updated_at_ms: meta.recorded_at_ms,
                    },
                );
            }
            Event::ResourceDeleted(e) if e.key.kind == SERVICE_FENCE_KIND => {
                self.applied
                    .remove(&FenceKey::new(&e.key.namespace, &e.key.name));
            }
            _ => {}
        }
    }
}

/// One sighting of a dependency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Normalised destination host.
    pub host: String,
    pub seen_at_ms: i64,
    /// How the caller was identified.
    pub source: String,
    /// The destination as reported.
    pub raw: String,
}

/// Commands of the fence concept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceCommand {
    /// Sightings of one fence's dependencies, from one kind of source.
    Observe {
        fence: FenceKey,
        via: Via,
        sightings: Vec<Sighting>,
    },
    /// Age the fence's dependencies and deadlines as of `now_ms`: the monitor's clock reading
    /// when it found the fence due, recorded as the evidence's `detected_at_ms` (as the
    /// liveness monitor's readings are), so what was found due is what gets aged.
    Sweep { fence: FenceKey, now_ms: i64 },
}

impl FenceState {
    pub fn get(&self, key: &FenceKey) -> Option<&FenceView> {
        self.fences.get(key)
    }

    /// Record a stream version reached by an undone event (see `Mesh::note_stream_version`).
    pub fn note_version(&mut self, fence: &FenceKey, version: u64) {
        self.versions.insert(fence.clone(), version);
    }

    /// Fences with ageing or a deadline due at `now_ms`, in key order.
    pub fn due(&self, now_ms: i64) -> Vec<FenceKey> {
        let mut out = BTreeSet::new();
        for (key, deps) in &self.learned {
            if deps
                .values()
                .any(|l| learned::next_due_ms(l, &self.config) <= now_ms)
            {
                out.insert(key.clone());
            }
        }
        for (key, view) in &self.fences {
            if !self.deadlines_due(key, view, now_ms).is_empty() {
                out.insert(key.clone());
            }
        }
        out.into_iter().collect()
    }

    fn deadlines_due(&self, key: &FenceKey, view: &FenceView, now_ms: i64) -> Vec<(String, i64)> {
        let passed = self.passed.get(key);
        view.spec
            .hosts
            .iter()
            .filter_map(|(host, s)| match s {
                Strategy::Deadline { expire_ms }
                    if *expire_ms <= now_ms
                        && passed.and_then(|p| p.get(host)) != Some(expire_ms) =>
                {
                    Some((host.clone(), *expire_ms))
                }
                _ => None,
            })
            .collect()
    }

    /// The Sidecar egress hosts of a fence (see [`domains::egress_hosts`]).
    pub fn egress_hosts(&self, key: &FenceKey) -> Option<Vec<String>> {
        let view = self.fences.get(key)?;
        Some(domains::egress_hosts(
            &key.namespace,
            &view.domains,
            &self.config,
        ))
    }

    /// Why the hierarchy fences this service, if it does.
    fn auto_reason(&self, key: &FenceKey) -> Option<AutoReason> {
        if !self.config.auto_fence {
            return None;
        }
        let service = self
            .cluster
            .services
            .get(&(key.namespace.clone(), key.name.clone()))?;
        if service.selector.is_empty() {
            return None;
        }
        let label = |labels: Option<&BTreeMap<String, String>>| match labels
            .and_then(|l| l.get(FENCED_LABEL))
            .map(String::as_str)
        {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        match label(Some(&service.labels)) {
            Some(true) => return Some(AutoReason::ServiceLabel),
            Some(false) => return None,
            None => {}
        }
        match label(self.cluster.namespaces.get(&key.namespace)) {
            Some(true) => Some(AutoReason::NamespaceLabel),
            Some(false) => None,
            None => self
                .config
                .default_fence
                .then_some(AutoReason::DefaultFence),
        }
    }

    /// Re-render one fence from its inputs.
    fn rebuild(&mut self, key: &FenceKey) {
        self.index.remove(key);
        let (spec, origin) = match self.manual.get(key) {
            Some((spec, position)) => (
                spec.clone(),
                Origin::Manual {
                    position: *position,
                },
            ),
            None => match self.auto_reason(key) {
                Some(reason) => (FenceSpec::auto(), Origin::Auto { reason }),
                None => {
                    self.fences.remove(key);
                    return;
                }
            },
        };
        let domains = domains::compute(&domains::Inputs {
            spec: &spec,
            config: &self.config,
            cluster: &self.cluster,
            learned: self.learned.get(key),
            passed: self.passed.get(key),
        });
        let workload_selector = if !spec.workload_labels.is_empty() {
            Some(spec.workload_labels.clone())
        } else if spec.from_service {
            self.cluster
                .services
                .get(&(key.namespace.clone(), key.name.clone()))
                .map(|s| s.selector.clone())
                .filter(|s| !s.is_empty())
        } else {
            Some(BTreeMap::from([(
                self.config.service_label.clone(),
                key.name.clone(),
            )]))
        };
        let refs = Refs {
            hosts: domains.keys().cloned().collect(),
            namespaces: spec.namespaces.iter().cloned().collect(),
            pairs: spec
                .label_selectors
                .iter()
                .flat_map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect(),
        };
        self.index.add(key, refs);
        self.fences.insert(
            key.clone(),
            FenceView {
                origin,
                spec,
                domains,
                workload_selector,
            },
        );
    }

    /// Every key that may be a fence: manual fences and every service (auto candidates).
    fn candidates(&self) -> BTreeSet<FenceKey> {
        self.manual
            .keys()
            .cloned()
            .chain(
                self.cluster
                    .services
                    .keys()
                    .map(|(ns, name)| FenceKey::new(ns, name)),
            )
            .chain(self.fences.keys().cloned())
            .collect()
    }

    /// Re-render every fence from scratch (configuration changes; the reference the
    /// incremental path is tested against).
    pub fn rebuild_all(&mut self) {
        self.index = Index::default();
        self.fences.clear();
        for key in self.candidates() {
            self.rebuild(&key);
        }
    }

    fn fences_reading_hosts(&self, hosts: &BTreeSet<String>, out: &mut BTreeSet<FenceKey>) {
        for host in hosts {
            out.extend(self.index.by_host.get(host).into_iter().flatten().cloned());
            if let Some(ns) = namespace_of_host(host) {
                out.extend(
                    self.index
                        .by_namespace
                        .get(ns)
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        }
    }

    fn apply_resource(
        &mut self,
        key: &ResourceKey,
        labels: &BTreeMap<String, String>,
        body: &str,
        position: u64,
    ) {
        let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let mut affected = BTreeSet::new();
        match key.kind.as_str() {
            "Namespace" => {
                self.cluster.set_namespace(&key.name, labels.clone());
                self.namespace_changed(&key.name, &mut affected);
            }
            "Service" => {
                let object = (key.namespace.clone(), key.name.clone());
                let info = cluster::service_info(labels, &body, position);
                let new_labels = info.labels.clone();
                let old_labels = self.cluster.set_service(object.clone(), info);
                self.service_changed(&object, &old_labels, &new_labels, &mut affected);
            }
            VIRTUAL_SERVICE_KIND => {
                let info = cluster::virtual_service_info(&key.namespace, &body, position);
                let object = (key.namespace.clone(), key.name.clone());
                let mut touched = self.cluster.set_virtual_service(object, info.clone());
                touched.extend(info.hosts);
                self.fences_reading_hosts(&touched, &mut affected);
            }
            SERVICE_FENCE_KIND => {
                let fence = FenceKey::new(&key.namespace, &key.name);
                let spec = FenceSpec::parse(body.get("spec").unwrap_or(&Value::Null))
                    .unwrap_or_else(|_| FenceSpec {
                        enable: false,
                        ..FenceSpec::auto()
                    });
                self.manual.insert(fence.clone(), (spec, position));
                affected.insert(fence);
            }
            SLIMEBOOT_KIND => {
                match FenceConfig::from_slimeboot(body.get("spec").unwrap_or(&Value::Null)) {
                    Ok(Some(config)) => {
                        self.configs.insert(key.clone(), config);
                    }
                    _ => {
                        self.configs.remove(key);
                    }
                }
                return self.config_changed();
            }
            _ => return,
        }
        for fence in affected {
            self.rebuild(&fence);
        }
    }

    fn delete_resource(&mut self, key: &ResourceKey) {
        let mut affected = BTreeSet::new();
        match key.kind.as_str() {
            "Namespace" => {
                self.cluster.remove_namespace(&key.name);
                self.namespace_changed(&key.name, &mut affected);
            }
            "Service" => {
                let object = (key.namespace.clone(), key.name.clone());
                let old_labels = self.cluster.remove_service(&object);
                self.service_changed(&object, &old_labels, &BTreeMap::new(), &mut affected);
            }
            VIRTUAL_SERVICE_KIND => {
                let touched = self
                    .cluster
                    .remove_virtual_service(&(key.namespace.clone(), key.name.clone()));
                self.fences_reading_hosts(&touched, &mut affected);
            }
            SERVICE_FENCE_KIND => {
                let fence = FenceKey::new(&key.namespace, &key.name);
                self.manual.remove(&fence);
                affected.insert(fence);
            }
            SLIMEBOOT_KIND => {
                self.configs.remove(key);
                return self.config_changed();
            }
            _ => return,
        }
        for fence in affected {
            self.rebuild(&fence);
        }
    }

    fn namespace_changed(&self, ns: &str, affected: &mut BTreeSet<FenceKey>) {
        affected.extend(
            self.cluster
                .services_in(ns)
                .map(|(ns, name)| FenceKey::new(ns, name)),
        );
    }

    fn service_changed(
        &self,
        object: &ObjectKey,
        old_labels: &BTreeMap<String, String>,
        new_labels: &BTreeMap<String, String>,
        affected: &mut BTreeSet<FenceKey>,
    ) {
        affected.insert(FenceKey::new(&object.0, &object.1));
        for (k, v) in old_labels.iter().chain(new_labels) {
            let pair = (k.clone(), v.clone());
            affected.extend(self.index.by_pair.get(&pair).into_iter().flatten().cloned());
        }
        affected.extend(
            self.index
                .by_namespace
                .get(&object.0)
                .into_iter()
                .flatten()
                .cloned(),
        );
    }

    fn config_changed(&mut self) {
        let config = self.configs.values().next().cloned().unwrap_or_default();
        if config != self.config {
            self.config = config;
            self.rebuild_all();
        }
    }
}

/// The fence decider.
pub struct Fences;

impl crate::Concept for Fences {
    const NAME: &'static str = "fence";
    const KINDS: &'static [crate::kinds::KindSpec] = kinds::KINDS;
    /// The ageing monitor's tick.
    const TICK_MS: u64 = 1000;
    type Memory = attribution::Attribution;

    /// Its own events, and the resources and observed objects it reads (fences, its
    /// configuration, namespaces, services, VirtualServices).
    fn folds(event: &Event) -> bool {
        match event {
            Event::DependencyLearned(_)
            | Event::DependencySeen(_)
            | Event::DependencyIdle(_)
            | Event::DependencyForgotten(_)
            | Event::HostDeadlinePassed(_) => true,
            Event::ResourceApplied(e) => reads_kind(&e.key.kind),
            Event::ResourceDeleted(e) => reads_kind(&e.key.kind),
            Event::ObjectObserved(e) => reads_kind(&e.key.kind),
            Event::ObjectGone(e) => reads_kind(&e.key.kind),
            _ => false,
        }
    }

    fn note_version(state: &mut FenceState, event: &Event, version: u64) -> bool {
        let fence = match event {
            Event::DependencyLearned(e) => &e.fence,
            Event::DependencySeen(e) => &e.fence,
            Event::DependencyIdle(e) => &e.fence,
            Event::DependencyForgotten(e) => &e.fence,
            Event::HostDeadlinePassed(e) => &e.fence,
            _ => return false,
        };
        state.note_version(fence, version);
        true
    }

    fn digest(state: &FenceState) -> String {
        crate::mesh::digest_of(&state.digest_view())
    }

    /// A ServiceFence's (applied by hand or created automatically) and its Sidecar's: what
    /// the fence learned and how it aged.
    fn history(
        object: &crate::history::ObjectName,
    ) -> Result<Vec<crate::history::HistorySource>, Rejection> {
        let ours = object.kind == SERVICE_FENCE_KIND || object.kind == SIDECAR_KIND;
        Ok(ours
            .then(|| {
                let fence = FenceKey::new(&object.namespace, &object.name);
                crate::history::HistorySource::whole(fence.stream())
            })
            .into_iter()
            .collect())
    }

    fn recall(
        mesh: &crate::Mesh,
        _: Option<attribution::Attribution>,
        _: i64,
    ) -> attribution::Attribution {
        attribution::Attribution::from_mesh(mesh)
    }

    fn remember(memory: &mut attribution::Attribution, event: &Event, _: &Meta) {
        memory.follow(event);
    }

    fn due(state: &FenceState, _: &mut attribution::Attribution, now_ms: i64) -> Vec<FenceCommand> {
        state
            .due(now_ms)
            .into_iter()
            .map(|fence| FenceCommand::Sweep { fence, now_ms })
            .collect()
    }
}

impl Decider for Fences {
    type State = FenceState;
    type Command = FenceCommand;

    fn decide(
        state: &FenceState,
        command: FenceCommand,
        _ctx: &mut Ctx,
    ) -> Result<Decision, Rejection> {
        match command {
            FenceCommand::Observe {
                fence,
                via,
                sightings,
            } => observe(state, fence, via, sightings),
            FenceCommand::Sweep { fence, now_ms } => Ok(sweep(state, fence, now_ms)),
        }
    }

    fn evolve(state: &mut FenceState, event: Event, meta: &Meta) {
        state.note_applied(&event, meta);
        match event {
            Event::ResourceApplied(e) if reads_kind(&e.key.kind) => {
                state.apply_resource(&e.key, &e.labels, &e.body, meta.position);
            }
            Event::ResourceDeleted(e) if reads_kind(&e.key.kind) => {
                state.delete_resource(&e.key);
            }
            // What the cluster holds is read like what was applied through meshplane.
            Event::ObjectObserved(e) if reads_kind(&e.key.kind) => {
                state.apply_resource(&e.key, &e.labels, &e.body, meta.position);
            }
            Event::ObjectGone(e) if reads_kind(&e.key.kind) => {
                state.delete_resource(&e.key);
            }
            Event::DependencyLearned(e) => {
                state.versions.insert(e.fence.clone(), meta.stream_version);
                state.learned.entry(e.fence.clone()).or_default().insert(
                    e.host,
                    Learned {
                        first_seen_ms: e.seen_at_ms,
                        learned_position: meta.position,
                        last_seen_ms: e.seen_at_ms,
                        last_position: meta.position,
                        via: e.via,
                        source: e.source,
                        raw: e.raw,
                        refreshes: 0,
                        idle: None,
                    },
                );
                state.rebuild(&e.fence);
            }
            Event::DependencySeen(e) => {
                state.versions.insert(e.fence.clone(), meta.stream_version);
                let Some(l) = state
                    .learned
                    .get_mut(&e.fence)
                    .and_then(|m| m.get_mut(&e.host))
                else {
                    return;
                };
                l.last_seen_ms = l.last_seen_ms.max(e.seen_at_ms);
                l.last_position = meta.position;
                l.refreshes += 1;
                // Only a return from idle changes what the fence renders.
                if l.idle.take().is_some() {
                    state.rebuild(&e.fence);
                }
            }
            Event::DependencyIdle(e) => {
                state.versions.insert(e.fence.clone(), meta.stream_version);
                if let Some(l) = state
                    .learned
                    .get_mut(&e.fence)
                    .and_then(|m| m.get_mut(&e.host))
                {
                    l.idle = Some((e.ageing, meta.position));
                    state.rebuild(&e.fence);
                }
            }
            Event::DependencyForgotten(e) => {
                state.versions.insert(e.fence.clone(), meta.stream_version);
                if let Some(deps) = state.learned.get_mut(&e.fence) {
                    deps.remove(&e.host);
                    if deps.is_empty() {
                        state.learned.remove(&e.fence);
                    }
                    state.rebuild(&e.fence);
                }
            }
            Event::HostDeadlinePassed(e) => {
                state.versions.insert(e.fence.clone(), meta.stream_version);
                state
                    .passed
                    .entry(e.fence.clone())
                    .or_default()
                    .insert(e.host, e.deadline_ms);
                state.rebuild(&e.fence);
            }
            _ => {}
        }
    }
}

fn decision(state: &FenceState, fence: &FenceKey, events: Vec<Event>) -> Decision {
    let version = state.versions.get(fence).copied().unwrap_or(0);
    let outcome = if events.is_empty() {
        Outcome::Unchanged
    } else {
        Outcome::Configured
    };
    Decision {
        stream: fence.stream(),
        expected: if events.is_empty() {
            ExpectedVersion::Any
        } else {
            expect_version(version)
        },
        events,
        outcome,
        item_outcomes: Vec::new(),
    }
}

fn observe(
    state: &FenceState,
    fence: FenceKey,
    via: Via,
    sightings: Vec<Sighting>,
) -> Result<Decision, Rejection> {
    let Some(view) = state.fences.get(&fence) else {
        return Err(Rejection::not_found(format!("no fence {fence}")));
    };
    if !view.spec.enable {
        return Err(Rejection::not_found(format!(
            "fence {fence} is not enabled"
        )));
    }
    // The latest sighting of each host decides; hosts in order, so the events are too.
    let mut latest: BTreeMap<String, Sighting> = BTreeMap::new();
    for (i, s) in sightings.into_iter().enumerate() {
        spec::check_host(&s.host)
            .map_err(|m| Rejection::invalid(format!("sightings[{i}].host"), m))?;
        match latest.get(&s.host) {
            Some(seen) if seen.seen_at_ms >= s.seen_at_ms => {}
            _ => {
                latest.insert(s.host.clone(), s);
            }
        }
    }
    let known = state.learned.get(&fence);
    let window = state.config.refresh_window_ms;
    let mut events = Vec::new();
    for (host, s) in latest {
        match known.and_then(|k| k.get(&host)) {
            None => events.push(Event::DependencyLearned(DependencyLearned {
                fence: fence.clone(),
                host,
                seen_at_ms: s.seen_at_ms,
                via,
                source: s.source,
                raw: s.raw,
            })),
            Some(l) if l.idle.is_some() || s.seen_at_ms - l.last_seen_ms >= window => {
                if s.seen_at_ms > l.last_seen_ms {
                    events.push(Event::DependencySeen(DependencySeen {
                        fence: fence.clone(),
                        host,
                        seen_at_ms: s.seen_at_ms,
                        via,
                    }));
                }
            }
            Some(_) => {}
        }
    }
    Ok(decision(state, &fence, events))
}

fn sweep(state: &FenceState, fence: FenceKey, now_ms: i64) -> Decision {
    let mut events = Vec::new();
    for (host, l) in state.learned.get(&fence).into_iter().flatten() {
        match learned::judge(l, &state.config, now_ms) {
            learned::Due::Nothing => {}
            learned::Due::Idle(ageing) => events.push(Event::DependencyIdle(DependencyIdle {
                fence: fence.clone(),
                host: host.clone(),
                ageing,
            })),
            learned::Due::Forget { idle, forget } => {
                if let Some(ageing) = idle {
                    events.push(Event::DependencyIdle(DependencyIdle {
                        fence: fence.clone(),
                        host: host.clone(),
                        ageing,
                    }));
                }
                events.push(Event::DependencyForgotten(DependencyForgotten {
                    fence: fence.clone(),
                    host: host.clone(),
                    ageing: forget,
                }));
            }
        }
    }
    if let Some(view) = state.fences.get(&fence) {
        for (host, deadline_ms) in state.deadlines_due(&fence, view, now_ms) {
            events.push(Event::HostDeadlinePassed(HostDeadlinePassed {
                fence: fence.clone(),
                host,
                deadline_ms,
                detected_at_ms: now_ms,
            }));
        }
    }
    decision(state, &fence, events)
}
