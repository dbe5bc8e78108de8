//! Each concept's I/O, one folder per concept, behind one trait ([`ConceptIo`]).
//!
//! A concept's routes, background tasks and intakes live in its folder here; technology code
//! (the Kubernetes client, etcd, the actor host, the manifest directory) stays in its own
//! module and names no concept. The daemon and the API router call [`routes`] and
//! [`start_all`], which are expanded from the registry (`actors::with_concepts!`): a concept
//! without a `ConceptIo` impl does not compile.
//!
//! Timers are not here: they are pure (`Concept::due`) and run for every concept by
//! [`crate::host::timers`].

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::web;

use crate::error::Error;
use crate::host::Dispatcher;

pub mod cluster;
pub mod fence;
pub mod instance;
pub mod resource;
pub mod service;

/// What the daemon tells a concept's I/O when it starts.
pub struct IoContext<'a> {
    pub dispatcher: &'a Dispatcher,
    /// The bearer token for mutating calls, when one is set.
    pub token: Option<String>,
    /// Where to serve Envoy's Access Log Service (gRPC); none: not served.
    pub als_listen: Option<SocketAddr>,
}

/// One concept's I/O: its HTTP routes and the tasks a running daemon starts for it.
pub trait ConceptIo: actors::Registered {
    /// Register the concept's HTTP routes. Handlers find what [`ConceptIo::start`] made
    /// through [`IoData`] (and answer 503 when it is not running).
    fn routes(_cfg: &mut web::ServiceConfig) {}

    /// Start the concept's background I/O for a running daemon.
    fn start(_ctx: &IoContext<'_>) -> impl std::future::Future<Output = Result<Started, Error>> {
        async { Ok(Started::default()) }
    }
}

/// What one concept's I/O started.
#[derive(Default)]
pub struct Started {
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    pub data: IoData,
}

impl Started {
    fn merge(&mut self, other: Started) {
        self.tasks.extend(other.tasks);
        self.data.merge(other.data);
    }
}

/// What the concepts' running I/O hands their routes (the fence's intake), by type.
#[derive(Clone, Default)]
pub struct IoData(BTreeMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl IoData {
    pub fn insert<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.0.insert(TypeId::of::<T>(), value);
    }

    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.get(&TypeId::of::<T>())?.clone().downcast().ok()
    }

    fn merge(&mut self, other: IoData) {
        self.0.extend(other.0);
    }
}

/// Generates [`routes`] and [`start_all`] from the registry's list.
macro_rules! io_table {
    ($($variant:ident $field:ident: $ty:ty,)+) => {
        /// Register every concept's routes.
        pub fn routes(cfg: &mut web::ServiceConfig) {
            $(<$ty as ConceptIo>::routes(cfg);)+
        }

        /// Start every concept's I/O.
        pub async fn start_all(ctx: &IoContext<'_>) -> Result<Started, Error> {
            let mut all = Started::default();
            $(all.merge(<$ty as ConceptIo>::start(ctx).await?);)+
            Ok(all)
        }
    };
}

actors::with_concepts!(io_table);
