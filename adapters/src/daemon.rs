//! `meshplane run`: the log, the actor host, the projection to the manifest directory and the
//! HTTP API, wired together, with graceful shutdown on SIGTERM/SIGINT.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpServer};

use crate::api::{self, ApiState, Auth};
use crate::concepts::{self, IoContext};
use crate::desired::{self, KubeChanges};
use crate::error::Error;
use crate::etcd::EtcdProjector;
use crate::host::{fold_onto, timers, Dispatcher, Observer};
use crate::manifests::ManifestDir;
use crate::metrics::Metrics;
use crate::snapshot;
use crate::storage::{open_store, StoreKind};
use projections::ObjectRef;

/// How long shutdown waits for a last etcd projection pass.
const FINAL_ETCD_PASS: Duration = Duration::from_secs(5);

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7470";

/// Everything `meshplane run` is told.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Where desired objects are written; `<data_dir>/manifests` when not given.
    pub manifests_dir: Option<PathBuf>,
    /// Bearer token for mutating calls; required when `listen` is not a loopback address.
    pub token: Option<String>,
    pub max_body_bytes: usize,
    /// `Host` names the API answers to besides its own addresses and `localhost` (`*`: any).
    pub allowed_hosts: Vec<String>,
    /// The HTTP server's time and connection limits.
    pub http_limits: HttpLimits,
    pub store: StoreKind,
    /// etcd endpoints to project into (EaseMesh's key layout); none: no etcd projection.
    pub etcd: Vec<String>,
    /// Write a snapshot of the state every this many events (0: never).
    pub snapshot_every: u64,
    /// Snapshots kept: older ones are removed after each new one (0: keep all, for time travel
    /// with `replay --to`).
    pub snapshot_keep: usize,
    /// Where to serve Envoy's Access Log Service (gRPC) for the fence; none: not served.
    pub als_listen: Option<SocketAddr>,
    /// Run as a Kubernetes controller; none: the manifest directory is the projection target.
    pub kube: Option<KubeSettings>,
}

/// How long the API waits for a client, and how many it serves at once.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Time to receive a request's head (actix's `client_request_timeout`; 408 after).
    pub header_timeout: Duration,
    /// Time to receive a whole request body (408 after).
    pub body_timeout: Duration,
    /// Open API connections at once; none: derived from the process's file limit.
    pub max_connections: Option<usize>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: api::DEFAULT_BODY_TIMEOUT,
            max_connections: None,
        }
    }
}

/// Default time to receive a request's head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a response is given to flush before a closing connection is dropped.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// HTTP workers (threads); connections are bounded per worker.
const HTTP_WORKERS: usize = 2;

/// The Kubernetes adapter's settings.
#[derive(Clone, Debug)]
pub struct KubeSettings {
    /// The kubeconfig to use; none: the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// The leader Lease; none: apply without one (a single daemon).
    pub lease: Option<crate::kube::lease::LeaseConfig>,
}

impl DaemonConfig {
    /// Refuse configurations that would be insecure or cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.listen.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(Error::Config(format!(
                "listening on {} (not a loopback address) requires a token for mutating calls: pass --token or set MESHPLANE_TOKEN",
                self.listen
            )));
        }
        if let Some(als) = self.als_listen {
            if !als.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
                return Err(Error::Config(format!(
                    "--als-listen {als} (not a loopback address) requires a token: pass --token"
                )));
            }
        }
        for endpoint in &self.etcd {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "--etcd {endpoint}: expected a URL such as http://127.0.0.1:2379"
                )));
            }
        }
        if self.max_body_bytes == 0 {
            return Err(Error::Config(
                "--max-body-bytes must be greater than 0".into(),
            ));
        }
        api::AllowedHosts::new(Some(self.listen.ip()), &self.allowed_hosts)
            .map_err(Error::Config)?;
        let limits = &self.http_limits;
        if limits.header_timeout.is_zero() || limits.body_timeout.is_zero() {
            return Err(Error::Config(
                "--header-timeout and --body-timeout must be greater than 0".into(),
            ));
        }
        if limits.max_connections == Some(0) {
            return Err(Error::Config(
                "--max-connections must be greater than 0".into(),
            ));
        }
        if let Some(lease) = self.kube.as_ref().and_then(|k| k.lease.as_ref()) {
            lease.validate()?;
        }
        Ok(())
    }

    pub fn manifests_dir(&self) -> PathBuf {
        self.manifests_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("manifests"))
    }
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(config: DaemonConfig) -> Result<(), Error> {
    config.validate()?;
    let store = open_store(&config.data_dir, config.store)?;
    let manifests = ManifestDir::open(&config.manifests_dir())?;
    tracing::info!(
        data = %config.data_dir.display(),
        store = %config.store,
        head = store.head(),
        manifests = %manifests.root().display(),
        "opened the event log"
    );
    let system = actix_rt::System::new();
    let result = system.block_on(serve(config, store.clone(), manifests));
    // Dropping the last handle joins the writer: everything acknowledged is already durable.
    drop(store);
    result
}

async fn serve(
    config: DaemonConfig,
    store: Arc<dyn events::EventStore>,
    manifests: ManifestDir,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::default());
    let snapshots = snapshot::dir(&config.data_dir);
    let Host {
        dispatcher,
        kube_changes,
    } = start_host(store, metrics.clone(), Some(&snapshots))?;
    let snapshotter = (config.snapshot_every > 0).then(|| {
        actix_rt::spawn(snapshot_forever(
            dispatcher.clone(),
            snapshots.clone(),
            config.snapshot_every,
            config.snapshot_keep,
        ))
    });
    // Every concept's timers (liveness, ageing) and its own I/O (intakes, servers).
    let mut tasks = timers::spawn_all(&dispatcher);
    let io = concepts::start_all(&IoContext {
        dispatcher: &dispatcher,
        token: config.token.clone(),
        als_listen: config.als_listen,
    })
    .await?;
    tasks.extend(io.tasks);
    let etcd = (!config.etcd.is_empty()).then(|| {
        actix_rt::spawn(
            EtcdProjector::new(config.etcd.clone(), metrics.clone()).run(dispatcher.clone()),
        )
    });
    let manifests = Arc::new(Mutex::new(manifests));
    // With a cluster, the cluster is the projection target; without, the manifest directory.
    let kube = match &config.kube {
        Some(settings) => {
            Some(start_kube(settings, &dispatcher, &metrics, kube_changes.clone()).await?)
        }
        None => None,
    };
    let projector = kube.is_none().then(|| {
        actix_rt::spawn(project_forever(
            dispatcher.clone(),
            manifests.clone(),
            metrics.clone(),
            kube_changes,
        ))
    });

    let hosts = api::AllowedHosts::new(Some(config.listen.ip()), &config.allowed_hosts)
        .map_err(Error::Config)?;
    let limits = config.http_limits;
    let max_connections = limits
        .max_connections
        .unwrap_or_else(|| api::connections::budget(api::connections::open_files_limit()));
    let state = web::Data::new(ApiState {
        dispatcher: dispatcher.clone(),
        metrics: metrics.clone(),
        auth: Auth::new(config.token.clone()),
        max_body_bytes: config.max_body_bytes,
        http: api::HttpRules {
            hosts,
            body_timeout: limits.body_timeout,
        },
        io: io.data,
        snapshots: Some(snapshots.clone()),
        past: Default::default(),
    });
    let server = HttpServer::new(move || App::new().configure(api::configure(state.clone())))
        .workers(HTTP_WORKERS)
        // A client that is slow to send its head, or its body (`body::read_limited`), loses
        // its connection; the number of connections stays under the file limit. Together they
        // keep `/healthz` answering under hundreds of slow clients.
        .client_request_timeout(limits.header_timeout)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .max_connections(api::connections::per_worker(max_connections, HTTP_WORKERS))
        .shutdown_timeout(10)
        .disable_signals()
        .bind(config.listen)
        .map_err(Error::Server)?
        .run();
    tracing::info!(
        listen = %config.listen,
        max_connections,
        header_timeout = ?limits.header_timeout,
        body_timeout = ?limits.body_timeout,
        "serving the meshplane API"
    );
    // actix-server would treat SIGINT as a forced stop; both signals stop gracefully here:
    // the listener closes and in-flight requests finish first.
    let handle = server.handle();
    actix_rt::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "stopping gracefully");
        handle.stop(true).await;
    });
    server.await.map_err(Error::Server)?;
    tracing::info!("shutting down");
    for task in &tasks {
        task.abort();
    }
    if let Some(projector) = &projector {
        projector.abort();
    }
    if let Some(kube) = kube {
        kube.stop().await;
    }
    if let Some(snapshotter) = snapshotter {
        snapshotter.abort();
    }
    if let Some(etcd) = etcd {
        etcd.abort();
        // A last pass so etcd reflects everything acknowledged, if it is reachable.
        let mut last = EtcdProjector::new(config.etcd.clone(), metrics.clone());
        match tokio::time::timeout(FINAL_ETCD_PASS, last.pass(&dispatcher)).await {
            Ok(true) => {}
            _ => {
                tracing::warn!("etcd did not take the final projection; the next start catches up")
            }
        }
    }
    // A last projection so the manifest directory reflects everything acknowledged (the
    // cluster catches up at the next start, which compares against what it holds).
    if projector.is_some() {
        project_once(&dispatcher, &manifests, &metrics).await;
    }
    Ok(())
}

/// The running Kubernetes adapter.
pub struct KubeAdapter {
    client: kube::Client,
    lease: Option<crate::kube::lease::LeaseConfig>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KubeAdapter {
    /// Stop the watchers, the projector and the lease, then hand the lease over: a clean
    /// shutdown frees it at once, so another daemon need not wait for it to expire.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(lease) = &self.lease {
            let release = crate::kube::lease::release(&self.client, lease);
            match tokio::time::timeout(lease.request_timeout * 2, release).await {
                Ok(Ok(())) => tracing::info!("released the leader lease"),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not release the leader lease"),
                Err(_) => tracing::warn!("releasing the leader lease timed out"),
            }
        }
    }
}

/// Connect to the cluster and start the Kubernetes adapter: the leader lease (unless turned
/// off), the watchers, and the projector.
pub async fn start_kube(
    settings: &KubeSettings,
    dispatcher: &Dispatcher,
    metrics: &Arc<Metrics>,
    changes: Arc<KubeChanges>,
) -> Result<KubeAdapter, Error> {
    use crate::kube::{apply, client, kinds, lease, observe, project};
    let client = client::connect(settings.kubeconfig.as_deref()).await?;
    let mut tasks = Vec::new();
    let leadership = match &settings.lease {
        Some(config) => {
            tracing::info!(
                namespace = %config.namespace,
                name = %config.name,
                identity = %config.identity,
                "taking part in leader election"
            );
            let (leadership, task) = lease::spawn(client.clone(), config.clone());
            tasks.push(task);
            leadership
        }
        None => {
            tracing::warn!("applying without a lease (--no-lease): run exactly one daemon");
            lease::Leadership::always()
        }
    };
    tasks.extend(observe::spawn_watchers(
        client.clone(),
        dispatcher.clone(),
        metrics.clone(),
        &kinds::watched(),
    ));
    let applier = apply::Applier::new(
        client.clone(),
        leadership.clone(),
        metrics.clone(),
        apply::ApplyConfig::default(),
    );
    tasks.push(actix_rt::spawn(project::run_projector(
        dispatcher.clone(),
        applier,
        leadership,
        metrics.clone(),
        changes,
    )));
    tracing::info!("running as a Kubernetes controller");
    Ok(KubeAdapter {
        client,
        lease: settings.lease.clone(),
        tasks,
    })
}

/// The running actor host.
pub struct Host {
    pub dispatcher: Dispatcher,
    /// The last position whose event changes a Kubernetes object.
    pub kube_changes: Arc<KubeChanges>,
}

/// Fold the log (onto the newest valid snapshot in `snapshots`, when given and there is one)
/// and start the actor host, every concept's memory recalled from the folded state and
/// following every delivered event. Must run inside an actix `System`.
pub fn start_host(
    store: Arc<dyn events::EventStore>,
    metrics: Arc<Metrics>,
    snapshots: Option<&std::path::Path>,
) -> Result<Host, Error> {
    let start = snapshots
        .and_then(|dir| snapshot::load_newest(dir, store.as_ref()))
        .unwrap_or_default();
    let mesh = fold_onto(store.as_ref(), start, None)?;
    let kube_changes = Arc::new(KubeChanges::default());
    let observers: Vec<Arc<dyn Observer>> = vec![kube_changes.clone()];
    let dispatcher = Dispatcher::start_from(store, metrics, mesh, observers)?;
    Ok(Host {
        dispatcher,
        kube_changes,
    })
}

/// Write a snapshot whenever delivery has moved `every` events past the last one. A failed
/// snapshot is only logged: snapshots are a cache, the log stays the truth.
async fn snapshot_forever(dispatcher: Dispatcher, dir: PathBuf, every: u64, keep: usize) {
    let mut delivered = dispatcher.watch_delivered();
    let mut last = *delivered.borrow_and_update();
    loop {
        if delivered.changed().await.is_err() {
            return;
        }
        if *delivered.borrow_and_update() < last + every {
            continue;
        }
        let mesh = match dispatcher.mesh().await {
            Ok(mesh) => mesh,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read state for a snapshot");
                continue;
            }
        };
        last = mesh.position;
        let store = dispatcher.store().clone();
        let dir = dir.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<PathBuf, Error> {
            let at = store.read_from(mesh.position, 1)?;
            let id = at
                .first()
                .map(|e| e.event_id)
                .ok_or_else(|| Error::Snapshot(format!("no event at {}", mesh.position)))?;
            snapshot::write(&dir, &mesh, id, keep)
        })
        .await;
        match written {
            Ok(Ok(path)) => {
                tracing::info!(position = last, path = %path.display(), "wrote a snapshot")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write a snapshot"),
            Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
        }
    }
}

/// Wait for SIGTERM or SIGINT; returns the signal's name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Re-project whenever delivery advances; bursts of events coalesce into one pass.
async fn project_forever(
    dispatcher: Dispatcher,
    manifests: Arc<Mutex<ManifestDir>>,
    metrics: Arc<Metrics>,
    changes: Arc<KubeChanges>,
) {
    let mut delivered = dispatcher.watch_delivered();
    // The first pass always runs: the directory may hold what an older log desired.
    let mut covered = None;
    loop {
        let position = *delivered.borrow_and_update();
        let wanted = changes.last();
        if covered.is_none_or(|c| wanted > c) {
            project_once(&dispatcher, &manifests, &metrics).await;
            covered = Some(wanted);
        } else {
            // Nothing desired changed since the last pass: the directory reflects this position.
            metrics.projected.fetch_max(position, Ordering::Relaxed);
        }
        if delivered.changed().await.is_err() {
            return;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn project_once(
    dispatcher: &Dispatcher,
    manifests: &Arc<Mutex<ManifestDir>>,
    metrics: &Arc<Metrics>,
) {
    match project_manifests(dispatcher, manifests).await {
        Ok(pass) => {
            metrics.projected.store(pass.position, Ordering::Relaxed);
            metrics
                .desired_objects
                .store(pass.objects as u64, Ordering::Relaxed);
            metrics
                .manifest_writes
                .fetch_add(pass.written as u64, Ordering::Relaxed);
            metrics
                .manifest_deletes
                .fetch_add(pass.removed as u64, Ordering::Relaxed);
            if pass.written + pass.removed > 0 {
                tracing::info!(
                    position = pass.position,
                    written = pass.written,
                    removed = pass.removed,
                    "projected to the manifest directory"
                );
            }
        }
        Err(e) => {
            metrics.projection_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "projection to the manifest directory failed");
        }
    }
}

/// What one projection pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// The newest log position a chunk of the pass saw.
    pub position: u64,
    pub objects: usize,
    pub written: usize,
    pub removed: usize,
}

/// One pass over every desired Kubernetes object, a chunk at a time, then the removal of the
/// files of objects no longer desired.
pub async fn project_manifests(
    dispatcher: &Dispatcher,
    manifests: &Arc<Mutex<ManifestDir>>,
) -> Result<Pass, String> {
    let mut sink = ManifestSink {
        manifests: manifests.clone(),
        keep: BTreeSet::new(),
        pass: Pass::default(),
    };
    let position = desired::walk(dispatcher, &mut sink).await?;
    let ManifestSink { keep, mut pass, .. } = sink;
    pass.position = position;
    pass.objects = keep.len();
    let manifests = manifests.clone();
    pass.removed = tokio::task::spawn_blocking(move || {
        manifests
            .lock()
            .expect("manifest dir lock")
            .retain(|r| keep.contains(r))
    })
    .await
    .map_err(|e| format!("projection task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    Ok(pass)
}

/// Writes the chunks of a pass into the manifest directory (only the files whose content
/// changes). Statuses of objects meshplane does not own have no file.
struct ManifestSink {
    manifests: Arc<Mutex<ManifestDir>>,
    keep: BTreeSet<ObjectRef>,
    pass: Pass,
}

impl desired::ChunkSink for ManifestSink {
    async fn take(&mut self, chunk: Vec<desired::DesiredItem>) -> Result<(), String> {
        let objects: Vec<(ObjectRef, projections::KubeObject)> = chunk
            .into_iter()
            .filter_map(|item| match item {
                desired::DesiredItem::Object(r, o) => Some((r, *o)),
                // A status of an object someone else owns has no file; unprojectable
                // entries were reported by the walk.
                desired::DesiredItem::Status(..) | desired::DesiredItem::Unprojectable(..) => None,
            })
            .collect();
        self.keep.extend(objects.iter().map(|(r, _)| r.clone()));
        let manifests = self.manifests.clone();
        self.pass.written += tokio::task::spawn_blocking(move || {
            let mut dir = manifests.lock().expect("manifest dir lock");
            let mut written = 0;
            for (r, object) in &objects {
                if dir.put(r, object)? {
                    written += 1;
                }
            }
            Ok::<_, Error>(written)
        })
        .await
        .map_err(|e| format!("projection task failed: {e}"))?
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}
