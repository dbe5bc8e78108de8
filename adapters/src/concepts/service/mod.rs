//! The service concept's I/O: EaseMesh's control-plane API (tenants, services and their
//! parts, and the service instances EaseMesh serves beside them).

use actix_web::web;

use super::ConceptIo;
use crate::api::method_not_allowed;

pub mod easemesh;

impl ConceptIo for actors::service::Services {
    fn routes(cfg: &mut web::ServiceConfig) {
        routes(cfg);
    }
}

/// EaseMesh's control-plane paths, under both `/apis/v1` and `/apis/v2` as Easegress serves
/// them.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/apis/{version:v[12]}/mesh/serviceinstances")
            .get(easemesh::list_instances)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/apis/{version:v[12]}/mesh/serviceinstances/{service}/{id}")
            .get(easemesh::get_instance)
            .delete(easemesh::offline_instance)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(
            "/apis/{version:v[12]}/mesh/services/{name}/{part:loadbalance|resilience|mock|tracings|metrics|outputserver}",
        )
        .get(easemesh::get_part)
        .post(easemesh::create_part)
        .put(easemesh::update_part)
        .delete(easemesh::delete_part)
        .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/apis/{version:v[12]}/mesh/{collection:tenants|services}")
            .get(easemesh::list)
            .post(easemesh::create)
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/apis/{version:v[12]}/mesh/{collection:tenants|services}/{name}")
            .get(easemesh::get)
            .put(easemesh::update)
            .delete(easemesh::delete)
            .default_service(web::to(method_not_allowed)),
    );
}
