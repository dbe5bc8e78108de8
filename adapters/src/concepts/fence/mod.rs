//! The fence concept's I/O: its API (fences, explain, the access-log intake's routes), the
//! access-log intake (Envoy ALS over gRPC, JSON lines over HTTP), Prometheus polling, and the
//! follower that keeps them in step with the lazyload configuration. The rules are pure
//! (`actors::fence`: attribution of callers, normalisation, learning, ageing); ageing and
//! deadlines run as the concept's timers (`crate::host::timers`).

pub mod als;
pub mod api;
pub mod entry;
pub mod intake;
pub mod jsonl;
pub mod monitor;
pub mod prometheus;

pub use entry::{AccessLogEntry, EntryReceiver, EntrySender, IntakeCounters, IntakeCounts};

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use super::{ConceptIo, IoContext, Started};
use crate::api::method_not_allowed;
use crate::error::Error;

/// How often the configuration follower looks at the lazyload configuration.
pub const CONFIG_TICK: Duration = Duration::from_secs(1);
/// Batches of access-log entries queued for the intake before senders wait.
const INTAKE_QUEUE: usize = 256;

impl ConceptIo for actors::fence::Fences {
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::resource("/api/v1/fences")
                .get(api::list)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/v1/fences/{namespace}/{name}")
                .get(api::get)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/v1/fences/{namespace}/{name}/explain")
                .get(api::explain)
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/v1/accesslog")
                .get(api::accesslog_stats)
                .post(api::post_accesslog)
                .default_service(web::to(method_not_allowed)),
        );
    }

    async fn start(ctx: &IoContext<'_>) -> Result<Started, Error> {
        let mut started = Started::default();
        let (io, intake, task) = start_intake(ctx.dispatcher);
        started.tasks.push(task);
        started.tasks.push(actix_rt::spawn(monitor::run_monitor(
            ctx.dispatcher.clone(),
            intake,
            CONFIG_TICK,
        )));
        if let Some(addr) = ctx.als_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Config(format!("--als-listen {addr}: {e}")))?;
            let bound = listener.local_addr().map_err(Error::Server)?;
            tracing::info!(listen = %bound, "serving Envoy access logs (gRPC ALS)");
            let sink = io.entries.clone();
            let counters = io.counters.clone();
            let token = ctx.token.clone();
            started.tasks.push(actix_rt::spawn(async move {
                let server =
                    als::serve_with_token(listener, sink, counters, token, std::future::pending());
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "the access-log gRPC server stopped");
                }
            }));
        }
        started.data.insert(io);
        Ok(started)
    }
}

/// Start the access-log intake: returns what the API and the gRPC server send entries to, the
/// intake itself (for the configuration follower and Prometheus), and its task.
pub fn start_intake(
    dispatcher: &crate::host::Dispatcher,
) -> (
    Arc<api::FenceIo>,
    Arc<intake::Intake>,
    tokio::task::JoinHandle<()>,
) {
    let counters = Arc::new(IntakeCounters::default());
    let intake = intake::Intake::new(dispatcher.clone(), counters.clone());
    let (entries, receiver) = tokio::sync::mpsc::channel(INTAKE_QUEUE);
    let task = actix_rt::spawn(intake.clone().run(receiver));
    (Arc::new(api::FenceIo { entries, counters }), intake, task)
}
