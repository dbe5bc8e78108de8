//! The HTTP API on actix-web (contract: `docs/api.md`).
//!
//! Handlers only translate: HTTP → command or query → HTTP. Every decision is the decider's;
//! every state change goes through the dispatcher and the log.

mod auth;
pub(crate) mod body;
pub mod connections;
pub(crate) mod error;
pub mod guard;
mod history;
mod resources;
pub(crate) mod respond;
mod rollback;

use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::{web, HttpResponse};

use crate::host::Dispatcher;
use crate::metrics::Metrics;
pub use auth::Auth;
pub use body::{BodyLimits, DEFAULT_BODY_TIMEOUT};
pub use error::ApiError;
pub use guard::AllowedHosts;

/// Default limit on request bodies.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
pub struct ApiState {
    pub dispatcher: Dispatcher,
    pub metrics: Arc<Metrics>,
    pub auth: Auth,
    pub max_body_bytes: usize,
    /// The rules every request passes before its handler (see `guard`) and the body timeout.
    pub http: HttpRules,
    /// What the concepts' running I/O hands their routes (empty when it is not running).
    pub io: crate::concepts::IoData,
    /// The snapshot directory (for states at past positions), when snapshots are kept.
    pub snapshots: Option<std::path::PathBuf>,
    /// The last state folded for a past position (`?at=`): a paged listing asks for the same
    /// position several times.
    pub past: PastState,
}

/// See [`ApiState::http`].
#[derive(Clone, Debug)]
pub struct HttpRules {
    /// The `Host` values the API answers to.
    pub hosts: AllowedHosts,
    /// How long a handler waits for a whole request body (408 after).
    pub body_timeout: std::time::Duration,
}

impl Default for HttpRules {
    /// Loopback names only, the default body timeout.
    fn default() -> Self {
        HttpRules {
            hosts: AllowedHosts::default(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// See [`ApiState::past`].
pub type PastState = std::sync::Mutex<Option<Arc<actors::Mesh>>>;

impl ApiState {
    /// The size and time limits of request bodies.
    pub fn body_limits(&self) -> BodyLimits {
        BodyLimits {
            max_bytes: self.max_body_bytes,
            timeout: self.http.body_timeout,
        }
    }

    /// The state as of a past log position (`?at=POS`), folded from the log (and the newest
    /// snapshot before it). Position 0 is the empty state before the first event.
    pub async fn past(&self, at: u64) -> Result<Arc<actors::Mesh>, ApiError> {
        let store = self.dispatcher.store().clone();
        let head = store.head();
        if at > head {
            return Err(ApiError::invalid(
                "at",
                format!("position {at} is not in the log (0..={head})"),
            ));
        }
        if at == 0 {
            return Ok(Arc::new(actors::Mesh::default()));
        }
        if let Some(mesh) = self.past.lock().expect("past-state cache").as_ref() {
            if mesh.position == at {
                return Ok(mesh.clone());
            }
        }
        let snapshots = self.snapshots.clone();
        let mesh = tokio::task::spawn_blocking(move || {
            crate::host::state_at(store.as_ref(), snapshots.as_deref(), at)
        })
        .await
        .map_err(|e| ApiError::internal(format!("past-state task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("reading the log: {e}")))?;
        let mesh = Arc::new(mesh);
        *self.past.lock().expect("past-state cache") = Some(mesh.clone());
        Ok(mesh)
    }
}

/// Register every route on an actix-web app.
pub fn configure(state: web::Data<ApiState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let metrics = state.metrics.clone();
        let hosts = state.http.hosts.clone();
        cfg.app_data(state)
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| ApiError::invalid("(query)", e.to_string()).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::invalid("(path)", e.to_string()).into()),
            )
            .service(
                web::scope("")
                    .wrap_fn(move |req, srv| {
                        let method = req.method().to_string();
                        let metrics = metrics.clone();
                        // Refused before any handler runs or any body is read.
                        let fut = match guard::check(&hosts, &req) {
                            Ok(()) => futures::future::Either::Left(srv.call(req)),
                            Err(e) => {
                                tracing::debug!(error = %e, path = %req.path(), "request refused");
                                futures::future::Either::Right(futures::future::ok(
                                    req.into_response(e.response()),
                                ))
                            }
                        };
                        async move {
                            let res = fut.await?;
                            metrics.request(&method, res.status().as_u16());
                            Ok(res)
                        }
                    })
                    .service(
                        web::resource("/healthz").get(|| async {
                            HttpResponse::Ok().content_type("text/plain").body("ok")
                        }),
                    )
                    .service(web::resource("/readyz").get(readyz))
                    .service(web::resource("/metrics").get(metrics_text))
                    .service(
                        web::resource("/api/v1/kinds")
                            .get(resources::kinds)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/api/v1/apply")
                            .post(resources::apply)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/api/v1/resources/{kind}")
                            .get(resources::list)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/api/v1/resources/{kind}/{name}")
                            .get(resources::get)
                            .put(resources::put)
                            .delete(resources::delete)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/api/v1/rollback")
                            .post(rollback::rollback)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .service(
                        web::resource("/api/v1/history")
                            .get(history::history)
                            .default_service(web::to(method_not_allowed)),
                    )
                    .configure(crate::concepts::routes)
                    .default_service(web::to(not_found)),
            );
    }
}

async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    if let Some(why) = state.dispatcher.failure() {
        return ApiError::unavailable(format!("event delivery stopped: {why}")).response();
    }
    // A log that cannot write (a full disk, a failing device) is not ready; it reopens by itself.
    match state.dispatcher.store().health() {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(why) => ApiError::unavailable(format!("event log: {why}")).response(),
    }
}

async fn metrics_text(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).response()
}

pub(crate) async fn method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    ApiError::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{} is not allowed on {}", req.method(), req.path()),
        None,
    )
    .response()
}
