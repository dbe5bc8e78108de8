//! The instance concept's I/O: meshplane's own registry API for sidecars and operators
//! (registration, heartbeats into the concept's memory, listing, offline/online). Liveness
//! transitions are the concept's timers (pure, run by `crate::host::timers`).

use actix_web::web;

use super::ConceptIo;
use crate::api::method_not_allowed;

pub mod api;

impl ConceptIo for actors::instance::Instances {
    fn routes(cfg: &mut web::ServiceConfig) {
        routes(cfg);
    }
}

/// meshplane's own registry API.
fn routes(cfg: &mut web::ServiceConfig) {
    let instance = "/api/v1/registry/instances/{service}/{id}";
    cfg.service(
        web::resource("/api/v1/registry/instances")
            .get(api::list_instances)
            .post(api::register)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(instance)
            .get(api::get_instance)
            .delete(api::deregister)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(format!("{instance}/heartbeat"))
            .put(api::heartbeat)
            .post(api::heartbeat)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(format!("{instance}/offline"))
            .post(api::offline)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(format!("{instance}/online"))
            .post(api::online)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/registry/heartbeats")
            .post(api::heartbeats)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/registry/services/{name}/visible")
            .get(api::visible)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/registry/{collection}")
            .get(api::list_catalog)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/api/v1/registry/{collection}/{name}")
            .get(api::get_catalog)
            .default_service(web::to(method_not_allowed)),
    );
}
