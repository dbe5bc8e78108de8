//! The command line: clap types only, no behaviour.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default address of the daemon's HTTP API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7470";
/// Default request body limit of the daemon (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// meshplane: an event-sourced control plane for a service mesh.
#[derive(Debug, Parser)]
#[command(name = "meshplane", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or filter (`info`, `debug`, `adapters=debug,info`); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the event log, the actors, the manifest directory and the HTTP API.
    Run(RunArgs),
    /// Apply manifests (multi-document YAML or JSON) to the daemon.
    Apply(ApplyArgs),
    /// Show one resource or list resources of a kind.
    Get(GetArgs),
    /// Delete a resource by kind and name, or every object named in manifests.
    Delete(DeleteArgs),
    /// Fold a log without a daemon and print a stable digest of all state.
    Replay(ReplayArgs),
    /// Every event that touched one object, with position, time and the evidence of each
    /// decision (e.g. why an instance went out of service).
    History(HistoryArgs),
    /// Roll every concept back to its state at a past log position (appends a rollback event;
    /// the projections then converge the world). `--dry-run` shows the plan only.
    Rollback(RollbackArgs),
    /// Why a generated object looks the way it does: `explain sidecar NS/NAME` lists every
    /// egress host of a fence's Sidecar with the events that put it there.
    Explain(ExplainArgs),
    /// Export or import a whole log as JSON Lines.
    Log(LogArgs),
    /// Run the deterministic simulator for one seed (`--seed N`) or a swarm (`--seeds A..B`).
    Simulate(crate::commands::simulate::SimulateArgs),
    /// Print the CustomResourceDefinitions meshplane owns (ServiceFence, SlimeBoot) as YAML.
    Crds,
    /// Render meshplane's own deployment manifests (`install --print`).
    Install(InstallArgs),
}

/// Which storage engine holds the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Store {
    /// redb, the file DATA/events.redb (the default).
    #[default]
    Redb,
    /// sled, the directory DATA/sled.
    Sled,
}

impl From<Store> for adapters::storage::StoreKind {
    fn from(store: Store) -> Self {
        match store {
            Store::Redb => adapters::storage::StoreKind::Redb,
            Store::Sled => adapters::storage::StoreKind::Sled,
        }
    }
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data directory holding the event log.
    #[arg(
        long = "data",
        value_name = "DIR",
        env = "MESHPLANE_DATA",
        default_value = "./meshplane-data"
    )]
    pub dir: PathBuf,

    /// Storage engine of the log.
    #[arg(long, value_enum, default_value_t = Store::Redb)]
    pub store: Store,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Address the HTTP API listens on. Any non-loopback address requires --token.
    #[arg(long, value_name = "ADDR", env = "MESHPLANE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Directory the desired Kubernetes objects are written to as YAML files (default DATA/manifests).
    #[arg(long, value_name = "DIR", env = "MESHPLANE_MANIFESTS")]
    pub manifests: Option<PathBuf>,

    /// Bearer token that mutating API calls must carry. On the command line it is visible to
    /// every user in the process list: prefer MESHPLANE_TOKEN or --token-file.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MESHPLANE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Read the bearer token from the first line of this file (instead of --token).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Largest accepted request body, in bytes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// A `Host` name the API answers to besides its own addresses and `localhost`, e.g. the
    /// name of a proxy or Service in front of it (repeatable or comma-separated; `*`: any).
    /// Other names are refused, against DNS rebinding.
    #[arg(
        long,
        value_name = "NAME",
        env = "MESHPLANE_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_host: Vec<String>,

    /// Seconds allowed to receive a request's head.
    #[arg(long, value_name = "SECONDS", default_value_t = adapters::daemon::DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub header_timeout: u64,

    /// Seconds allowed to receive a whole request body (408 after).
    #[arg(long, value_name = "SECONDS", default_value_t = adapters::api::DEFAULT_BODY_TIMEOUT.as_secs())]
    pub body_timeout: u64,

    /// API connections open at once (default: derived from the open-file limit, keeping a
    /// quarter of it for the log and outbound connections).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Project the registry into etcd at this endpoint, in EaseMesh's key layout (repeatable or
    /// comma-separated). Without it, no etcd is used.
    #[arg(
        long,
        value_name = "URL",
        env = "MESHPLANE_ETCD",
        value_delimiter = ','
    )]
    pub etcd: Vec<String>,

    /// Write a snapshot of the state every N events (DATA/snapshots; 0, the default: never).
    /// Start-up loads the newest valid one and folds only the log after it. Off by default:
    /// each snapshot still clones and encodes the whole state (see BENCHMARKS.md).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub snapshot_every: u64,

    /// Keep the newest K snapshots, removing older ones after each new one (0: keep every
    /// snapshot, so that `replay --to` can start near any position of a long log).
    #[arg(long, value_name = "K", default_value_t = adapters::snapshot::DEFAULT_KEEP)]
    pub snapshot_keep: usize,

    /// Serve Envoy's Access Log Service (gRPC, `StreamAccessLogs`) here, for the fence to learn
    /// dependencies from the global sidecar's access log (Slime uses port 8082). Off unless
    /// given; any non-loopback address requires --token, presented by Envoy as
    /// `authorization: Bearer <token>` metadata (grpc_service.initial_metadata).
    #[arg(long, value_name = "ADDR", env = "MESHPLANE_ALS_LISTEN")]
    pub als_listen: Option<SocketAddr>,

    /// Run as a Kubernetes controller against the cluster of this kubeconfig (its current
    /// context): watch the cluster into the log and server-side apply the desired objects
    /// instead of writing the manifest directory.
    #[arg(long, value_name = "PATH", conflicts_with = "in_cluster")]
    pub kubeconfig: Option<PathBuf>,

    /// As --kubeconfig, with the service account of the pod the daemon runs in.
    #[arg(long)]
    pub in_cluster: bool,

    /// Namespace of the leader Lease (default: the pod's namespace from POD_NAMESPACE, else
    /// `meshplane`). Only the lease holder writes to the cluster.
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Name of the leader Lease.
    #[arg(long, value_name = "NAME", default_value = adapters::kube::lease::DEFAULT_LEASE_NAME)]
    pub lease_name: String,

    /// How long a holder that stopped renewing keeps the lease, in seconds; renewed every third
    /// of it. A follower takes over at most this long after the holder died.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub lease_duration: u64,

    /// Apply without taking the lease: only when exactly one daemon runs against the cluster.
    #[arg(long)]
    pub no_lease: bool,
}

/// How a client command finds and authenticates to the daemon.
#[derive(Clone, Debug, Default, Args)]
pub struct ClientArgs {
    /// URL of the daemon (else MESHPLANE_SERVER, else ~/.meshplane/config.yaml, else http://127.0.0.1:7470).
    #[arg(long, value_name = "URL", env = "MESHPLANE_SERVER")]
    pub server: Option<String>,

    /// Bearer token (else --token-file, else MESHPLANE_TOKEN, else the config file). On the
    /// command line it is visible to every user in the process list.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MESHPLANE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Read the bearer token from the first line of this file.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A manifest file, a directory of *.yaml/*.yml/*.json files, or `-` for standard input.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR|-",
        required = true
    )]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Kind: name, plural or alias (`configmaps`, `cm`, `ConfigMap`). Registry kinds:
    /// `serviceinstances` (`si`), `tenants`, `services` (mesh services; Kubernetes Services are
    /// `svc`), `meshcontrollers`.
    pub kind: String,

    /// Name of one resource; omit to list.
    pub name: Option<String>,

    /// Namespace (namespaced kinds; `default` when omitted).
    #[arg(
        short = 'n',
        long,
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,

    /// List across all namespaces.
    #[arg(short = 'A', long, conflicts_with = "name")]
    pub all_namespaces: bool,

    /// Answer from the state at this past log position (Kubernetes kinds); 0 is the empty state
    /// before the first event.
    #[arg(long, value_name = "POS")]
    pub at: Option<u64>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub filter: InstanceFilterArgs,

    #[command(flatten)]
    pub client: ClientArgs,
}

/// Filters of `get serviceinstances`; every given condition must hold.
#[derive(Clone, Debug, Default, Args)]
pub struct InstanceFilterArgs {
    /// Only instances of this service.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,

    /// Only instances whose service is in this tenant.
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,

    /// Only instances with this label (repeatable; all must match).
    #[arg(long = "label", short = 'l', value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Only instances with this status (UP or OUT_OF_SERVICE).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
}

impl InstanceFilterArgs {
    pub fn is_empty(&self) -> bool {
        self.service.is_none()
            && self.tenant.is_none()
            && self.labels.is_empty()
            && self.status.is_none()
    }
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The log position whose state to return to.
    #[arg(long, value_name = "POS")]
    pub to: u64,

    /// Print the objects the rollback would create, change and delete; append nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Confirm a rollback to position 0: the empty state before the first event, which deletes
    /// every object meshplane manages (refused without it).
    #[arg(long)]
    pub wipe: bool,

    /// Why (recorded in the rollback event).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// What to explain: `sidecar` (also `sidecars`, `servicefence`, `svf`).
    pub kind: String,

    /// The fence's `NAMESPACE/NAME` (or NAME with -n).
    pub name: String,

    /// Namespace, when NAME has none (`default` when omitted).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Kind: `serviceinstance` (`si`), `tenant`, `service` (mesh), `meshcontroller`, or a
    /// Kubernetes kind (`cm`, `svc`, `deploy`, ...).
    pub kind: String,

    /// Name (`SERVICE/INSTANCE_ID` for a service instance).
    pub name: String,

    /// Namespace (namespaced Kubernetes kinds; `default` when omitted).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kind: name, plural or alias.
    #[arg(
        required_unless_present = "files",
        conflicts_with = "files",
        requires = "name"
    )]
    pub kind: Option<String>,

    /// Name of the resource.
    pub name: Option<String>,

    /// Namespace (namespaced kinds; `default` when omitted).
    #[arg(short = 'n', long, value_name = "NS", conflicts_with = "files")]
    pub namespace: Option<String>,

    /// Delete every object named in these manifests (file, directory or `-`).
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["data", "log"]))]
pub struct ReplayArgs {
    /// Data directory whose log to fold (the daemon must not be running on it).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Storage engine of the log under --data.
    #[arg(long, value_enum, default_value_t = Store::Redb, requires = "data")]
    pub store: Store,

    /// A JSON Lines log, as written by `meshplane log export`.
    #[arg(long, value_name = "FILE.jsonl")]
    pub log: Option<PathBuf>,

    /// Stop after this log position: the state and digest as they were then.
    #[arg(long, value_name = "POS")]
    pub to: Option<u64>,

    /// Print only the digest lines (the last one is `digest <hex>`).
    #[arg(long, conflicts_with_all = ["desired", "diff_against", "diff_at"])]
    pub digest: bool,

    /// Print the desired objects at the position instead of the report: the Kubernetes objects
    /// as multi-document YAML, then the etcd keys and values (as YAML comments, so the output
    /// still applies with kubectl); `-o json` for one JSON document.
    #[arg(long, conflicts_with_all = ["diff_against", "diff_at"])]
    pub desired: bool,

    /// Output of --desired.
    #[arg(short = 'o', long, value_enum, default_value_t = ReplayOutput::Yaml, requires = "desired")]
    pub output: ReplayOutput,

    /// Compare with another log (a JSON Lines file or a data directory, same --store), folded
    /// to its end (or to --diff-at): which desired objects and which concepts' states differ.
    /// Exit code 0 when identical, 1 when they differ, 2 on trouble (like diff).
    #[arg(long, value_name = "FILE.jsonl|DIR")]
    pub diff_against: Option<PathBuf>,

    /// Compare with the state at this other position (of the same log, or of --diff-against).
    #[arg(long, value_name = "POS")]
    pub diff_at: Option<u64>,

    /// Fold from the start of the log, ignoring the snapshots in DIR/snapshots.
    #[arg(long)]
    pub no_snapshots: bool,
}

/// Output formats of `replay --desired`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayOutput {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: LogCommand,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Write every event of the log as JSON Lines.
    Export(ExportArgs),
    /// Load a JSON Lines log into an empty data directory.
    Import(ImportArgs),
    /// Check a log without changing it: every page checksum, every record, the acknowledged
    /// head. Prints what is intact; exits 1 when the log is damaged.
    Verify(VerifyArgs),
    /// Copy every intact record of a (damaged) log into a new data directory, without changing
    /// the source: the records from position 1 up to the first missing one become the new log,
    /// the intact records after a gap are written beside it as JSON Lines.
    Salvage(SalvageArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct SalvageArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// The new data directory (must not hold a log).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Output file (standard output when omitted or `-`).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// The JSON Lines file to import (`-` for standard input).
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print the manifests as multi-document YAML (the only mode: apply them with kubectl).
    #[arg(long, required = true)]
    pub print: bool,

    /// Namespace meshplane is installed into.
    #[arg(long, short = 'n', value_name = "NS", default_value = projections::install::DEFAULT_NAMESPACE)]
    pub namespace: String,

    /// Container image (default: meshplane:<this version>).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn replay_needs_exactly_one_source() {
        assert!(Cli::try_parse_from(["meshplane", "replay"]).is_err());
        assert!(Cli::try_parse_from(["meshplane", "replay", "--data", "d", "--log", "l"]).is_err());
        let cli =
            Cli::try_parse_from(["meshplane", "replay", "--log", "l.jsonl", "--digest"]).unwrap();
        match cli.command {
            Command::Replay(r) => assert!(r.digest && r.log.is_some() && r.data.is_none()),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn delete_takes_a_name_or_files() {
        assert!(Cli::try_parse_from(["meshplane", "delete"]).is_err());
        assert!(Cli::try_parse_from(["meshplane", "delete", "cm"]).is_err());
        assert!(Cli::try_parse_from(["meshplane", "delete", "cm", "web", "-f", "x.yaml"]).is_err());
        assert!(Cli::try_parse_from(["meshplane", "delete", "cm", "web", "-n", "shop"]).is_ok());
        assert!(Cli::try_parse_from(["meshplane", "delete", "-f", "x.yaml", "-f", "dir"]).is_ok());
    }

    #[test]
    fn global_log_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "meshplane",
            "get",
            "cm",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.log_level.as_deref(), Some("debug"));
    }
}
