//! The access-log intake: entries from every source → the caller's fence and the normalised
//! destination (Slime's rules, §2.1 of the reference) → sightings for the fence actor.
//!
//! Only sightings that may matter reach the actor: a (fence, host) pair forwarded within the
//! refresh window is counted as fresh and dropped here, so a steady stream of calls to known
//! dependencies costs no actor round trip and no event. The actor still decides: it learns new
//! dependencies, refreshes old ones, and refuses fences that do not exist.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use actors::fence::cluster::service_host;
use actors::fence::config::DEFAULT_REFRESH_WINDOW_MS;
use actors::fence::spec::check_host;
use actors::fence::{FenceCommand, Sighting};
use actors::{MeshCommand, RejectionKind};
use events::schema::{FenceKey, Via};
use tokio::sync::Semaphore;

use super::attribution::{Attribution, Lookup};
use super::entry::{AccessLogEntry, EntryReceiver, IntakeCounters};
use crate::clock;
use crate::host::{DispatchError, Dispatcher};

/// Fence commands in flight at once.
const IN_FLIGHT: usize = 64;
/// Entries drained from the channel per pass (several batches share one grouping).
const MAX_PASS: usize = 16_384;

/// Where a sighting goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributed {
    pub fence: FenceKey,
    pub host: String,
    /// How the caller was identified (`10.0.0.1 → default/productpage`, `header → ...`).
    pub source: String,
    /// The destination as reported (`details:9080`).
    pub raw: String,
}

/// Why an entry yields no sighting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    NotInbound,
    UnknownSource,
    UnknownDestination,
}

/// Attribute one entry: the fences of its callers and the destination host for each (short
/// names complete with the caller's namespace, so callers in two namespaces can differ).
pub fn attribute(
    entry: &AccessLogEntry,
    lookup: &dyn Lookup,
    out: &mut Vec<Attributed>,
) -> Result<(), Skip> {
    let mut parts = entry.upstream_cluster.split('|');
    let direction = parts.next();
    if direction != Some("inbound") || parts.count() != 3 {
        return Err(Skip::NotInbound);
    }
    let authority = entry.authority.trim();
    let host = strip_port(authority).to_ascii_lowercase();
    if host.is_empty() || host.parse::<IpAddr>().is_ok() {
        return Err(Skip::UnknownDestination);
    }
    let explicit;
    let (callers, how): (&[(String, String)], String) = match entry.source.as_deref() {
        Some(source) => {
            let Some((ns, name)) = source.split_once('/') else {
                return Err(Skip::UnknownSource);
            };
            explicit = [(ns.to_string(), name.to_string())];
            (&explicit, "header".to_string())
        }
        None => {
            let callers = lookup.services_of(&entry.downstream_ip);
            (callers, entry.downstream_ip.clone())
        }
    };
    if callers.is_empty() {
        return Err(Skip::UnknownSource);
    }
    let start = out.len();
    for (ns, name) in callers {
        let Some(full) = normalise(&host, ns, lookup) else {
            continue;
        };
        out.push(Attributed {
            fence: FenceKey::new(ns, name),
            host: full,
            source: format!("{how} → {ns}/{name}"),
            raw: authority.to_string(),
        });
    }
    if out.len() == start {
        return Err(Skip::UnknownDestination);
    }
    Ok(())
}

/// `details:9080` → `details`; `[::1]:80` → `::1`.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Slime's normalisation by label count, then the host checks (no `unknown`, no global
/// sidecar: it is in every Sidecar already).
fn normalise(host: &str, caller_ns: &str, lookup: &dyn Lookup) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let full = match labels.as_slice() {
        [name] => service_host(caller_ns, name),
        [name, ns] | [name, ns, "svc"] if lookup.has_service(ns, name) => service_host(ns, name),
        _ => host.to_string(),
    };
    if check_host(&full).is_err() || full.starts_with("global-sidecar.") {
        return None;
    }
    Some(full)
}

/// The running intake.
pub struct Intake {
    dispatcher: Dispatcher,
    attribution: Arc<Attribution>,
    counters: Arc<IntakeCounters>,
    /// (fence, host) → when it was last forwarded.
    recent: Mutex<HashMap<(FenceKey, String), i64>>,
    window_ms: AtomicI64,
    in_flight: Arc<Semaphore>,
}

impl Intake {
    pub fn new(
        dispatcher: Dispatcher,
        attribution: Arc<Attribution>,
        counters: Arc<IntakeCounters>,
    ) -> Arc<Self> {
        Arc::new(Intake {
            dispatcher,
            attribution,
            counters,
            recent: Mutex::new(HashMap::new()),
            window_ms: AtomicI64::new(DEFAULT_REFRESH_WINDOW_MS),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    pub fn counters(&self) -> &Arc<IntakeCounters> {
        &self.counters
    }

    /// Follow the configuration's refresh window (and forget forwarded pairs older than it).
    pub fn set_window(&self, window_ms: i64) {
        self.window_ms.store(window_ms, Ordering::Relaxed);
        let now = clock::now_ms();
        self.recent
            .lock()
            .expect("recent lock")
            .retain(|_, at| now - *at < window_ms);
    }

    /// Consume entries until every sender is gone.
    pub async fn run(self: Arc<Self>, mut entries: EntryReceiver) {
        let mut pass = Vec::new();
        while let Some(batch) = entries.recv().await {
            pass.extend(batch);
            while pass.len() < MAX_PASS {
                match entries.try_recv() {
                    Ok(more) => pass.extend(more),
                    Err(_) => break,
                }
            }
            let per_fence = self.sort(std::mem::take(&mut pass));
            for (fence, sightings) in per_fence {
                let permit = self
                    .in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let me = self.clone();
                actix_rt::spawn(async move {
                    me.forward(fence, Via::AccessLog, sightings).await;
                    drop(permit);
                });
            }
        }
    }

    /// Attribute a pass of entries and keep the sightings not forwarded within the window,
    /// grouped by fence.
    fn sort(&self, entries: Vec<AccessLogEntry>) -> BTreeMap<FenceKey, Vec<Sighting>> {
        let now = clock::now_ms();
        let window = self.window_ms.load(Ordering::Relaxed);
        // `received` is counted by the sources (ALS, JSON lines), which also see the entries
        // that never get here (malformed, TCP).
        let c = &self.counters;
        let mut attributed = Vec::new();
        let (mut not_inbound, mut unknown_source, mut unknown_destination) = (0, 0, 0);
        self.attribution.with(|lookup| {
            for entry in &entries {
                match attribute(entry, lookup, &mut attributed) {
                    Ok(()) => {}
                    Err(Skip::NotInbound) => not_inbound += 1,
                    Err(Skip::UnknownSource) => unknown_source += 1,
                    Err(Skip::UnknownDestination) => unknown_destination += 1,
                }
            }
        });
        IntakeCounters::add(&c.not_inbound, not_inbound);
        IntakeCounters::add(&c.unknown_source, unknown_source);
        IntakeCounters::add(&c.unknown_destination, unknown_destination);
        let mut out: BTreeMap<FenceKey, Vec<Sighting>> = BTreeMap::new();
        let mut fresh = 0;
        let mut recent = self.recent.lock().expect("recent lock");
        for a in attributed {
            let pair = (a.fence, a.host);
            match recent.get(&pair) {
                Some(at) if now - *at < window => fresh += 1,
                _ => {
                    let sighting = Sighting {
                        host: pair.1.clone(),
                        seen_at_ms: now,
                        source: a.source,
                        raw: a.raw,
                    };
                    recent.insert(pair.clone(), now);
                    out.entry(pair.0).or_default().push(sighting);
                }
            }
        }
        IntakeCounters::add(&c.fresh, fresh);
        out
    }

    /// Hand one fence's sightings to the actor.
    pub async fn forward(&self, fence: FenceKey, via: Via, sightings: Vec<Sighting>) {
        let n = sightings.len() as u64;
        let hosts: Vec<String> = sightings.iter().map(|s| s.host.clone()).collect();
        let command = MeshCommand::Fence(FenceCommand::Observe {
            fence: fence.clone(),
            via,
            sightings,
        });
        match self.dispatcher.execute(command).await {
            Ok(_) => IntakeCounters::add(&self.counters.sightings, n),
            Err(DispatchError::Rejected { rejection, .. })
                if rejection.kind == RejectionKind::NotFound =>
            {
                IntakeCounters::add(&self.counters.unfenced_source, n)
            }
            Err(e) => {
                // Not recorded: let the next sighting through instead of waiting a window.
                tracing::warn!(fence = %fence, error = %e, "cannot record sightings");
                let mut recent = self.recent.lock().expect("recent lock");
                for host in hosts {
                    recent.remove(&(fence.clone(), host));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::schema::ResourceApplied;

    fn lookup() -> Attribution {
        let a = Attribution::default();
        for (ns, name, ip) in [
            ("default", "productpage", "10.0.0.1"),
            ("default", "details", "10.0.0.2"),
            ("prod", "productpage", "10.0.0.1"),
        ] {
            let body = serde_json::json!({"subsets": [{"addresses": [{"ip": ip}]}]});
            a.observe(
                &events::Event::ResourceApplied(ResourceApplied {
                    key: events::schema::ResourceKey::new("Endpoints", ns, name),
                    api_version: "v1".into(),
                    labels: Default::default(),
                    annotations: Default::default(),
                    body: body.to_string(),
                }),
                &actors::Meta {
                    position: 1,
                    stream_version: 1,
                    recorded_at_ms: 0,
                },
            );
        }
        a
    }

    fn entry(ip: &str, cluster: &str, authority: &str) -> AccessLogEntry {
        AccessLogEntry {
            downstream_ip: ip.into(),
            upstream_cluster: cluster.into(),
            authority: authority.into(),
            source: None,
            start_time_ms: 0,
        }
    }

    fn run(e: &AccessLogEntry) -> Result<Vec<(String, String)>, Skip> {
        let a = lookup();
        let mut out = Vec::new();
        a.with(|l| attribute(e, l, &mut out))?;
        Ok(out
            .into_iter()
            .map(|a| (a.fence.to_string(), a.host))
            .collect())
    }

    #[test]
    fn short_names_complete_with_each_callers_namespace() {
        let got = run(&entry("10.0.0.1", "inbound|9080||", "details:9080")).unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "default/productpage".into(),
                    "details.default.svc.cluster.local".into()
                ),
                (
                    "prod/productpage".into(),
                    "details.prod.svc.cluster.local".into()
                ),
            ]
        );
    }

    #[test]
    fn two_and_three_label_names_complete_only_for_known_services() {
        let got = run(&entry("10.0.0.2", "inbound|80||", "details.default")).unwrap();
        assert_eq!(got[0].1, "details.default.svc.cluster.local");
        let got = run(&entry("10.0.0.2", "inbound|80||", "details.default.svc:80")).unwrap();
        assert_eq!(got[0].1, "details.default.svc.cluster.local");
        let got = run(&entry("10.0.0.2", "inbound|80||", "example.com")).unwrap();
        assert_eq!(got[0].1, "example.com");
    }

    #[test]
    fn skips_are_classified() {
        assert_eq!(
            run(&entry("10.0.0.1", "outbound|9080||details", "details")),
            Err(Skip::NotInbound)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080", "details")),
            Err(Skip::NotInbound)
        );
        assert_eq!(
            run(&entry("10.9.9.9", "inbound|9080||", "details")),
            Err(Skip::UnknownSource)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080||", "10.0.0.2:9080")),
            Err(Skip::UnknownDestination)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080||", "unknown")),
            Err(Skip::UnknownDestination)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080||", "")),
            Err(Skip::UnknownDestination)
        );
        assert_eq!(
            run(&entry(
                "10.0.0.1",
                "inbound|9080||",
                "global-sidecar.mesh-operator.svc.cluster.local"
            )),
            Err(Skip::UnknownDestination)
        );
    }

    #[test]
    fn an_explicit_source_wins_over_the_address() {
        let mut e = entry("10.9.9.9", "inbound|9080||", "reviews:9080");
        e.source = Some("shop/cart".into());
        assert_eq!(
            run(&e).unwrap(),
            vec![("shop/cart".into(), "reviews.shop.svc.cluster.local".into())]
        );
        e.source = Some("no-slash".into());
        assert_eq!(run(&e), Err(Skip::UnknownSource));
    }
}
