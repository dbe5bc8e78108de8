//! The desired Kubernetes objects of the running state, read from the actors a chunk at a
//! time and handed to a projection target (the manifest directory, the cluster).
//!
//! Each concept's objects come from its [`Projection`]; the walk is expanded over the registry,
//! so a concept that writes Kubernetes objects is never left out. A read holds the actor (and
//! the events waiting for it) while it renders, so each read renders at most [`CHUNK`] entries;
//! and a pass never holds all desired objects, nor a copy of a concept's state, at once
//! (10,000 fences would need several hundred MB).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use projections::Projection;

use crate::host::{DispatchError, Dispatcher, Observer};

pub use projections::DesiredItem;

/// State entries rendered per read of an actor.
pub const CHUNK: usize = 256;

/// Where the chunks of a pass go.
pub trait ChunkSink {
    fn take(&mut self, chunk: Vec<DesiredItem>) -> impl Future<Output = Result<(), String>>;
}

/// Render concept `P`'s desired objects into `sink`, a chunk at a time. Returns the newest log
/// position a chunk saw.
async fn walk_concept<P: Projection>(
    dispatcher: &Dispatcher,
    sink: &mut impl ChunkSink,
) -> Result<u64, String> {
    let host = |e: DispatchError| e.to_string();
    let mut position = 0;
    let mut after: Option<P::Cursor> = None;
    loop {
        let cursor = after.take();
        let (items, last, at) = dispatcher
            .read::<P, _>(move |state, position| {
                let mut items = Vec::new();
                let last = P::kube_chunk(state, cursor.as_ref(), CHUNK, &mut items);
                (items, last, position)
            })
            .await
            .map_err(host)?;
        position = position.max(at);
        let mut chunk = Vec::with_capacity(items.len());
        for item in items {
            match item {
                DesiredItem::Unprojectable(r, why) => {
                    tracing::error!(object = %r, error = %why, "cannot project object")
                }
                item => chunk.push(item),
            }
        }
        sink.take(chunk).await?;
        match last {
            Some(k) => after = Some(k),
            None => return Ok(position),
        }
    }
}

/// Generates [`walk`] from the registry's list.
macro_rules! walk_table {
    ($($variant:ident $field:ident: $ty:ty,)+) => {
        /// Render every desired object into `sink`, a chunk at a time, concept by concept in
        /// registry order. Returns the newest log position a chunk saw (chunks may see
        /// successive positions; the pass after the next delivery covers whatever changed
        /// meanwhile).
        pub async fn walk(
            dispatcher: &Dispatcher,
            sink: &mut impl ChunkSink,
        ) -> Result<u64, String> {
            let mut position = 0;
            $(
                if <$ty as Projection>::TARGETS.kube {
                    position = position.max(walk_concept::<$ty>(dispatcher, sink).await?);
                }
            )+
            Ok(position)
        }
    };
}

actors::with_concepts!(walk_table);

/// Follows the log for the Kubernetes projectors: the position of the last event that changes
/// a desired Kubernetes object (an event folded by a concept whose projection writes
/// Kubernetes objects, or a rollback). Registry transitions change none, so at 100,000
/// instances they never cost a projection pass.
#[derive(Debug, Default)]
pub struct KubeChanges(AtomicU64);

impl KubeChanges {
    pub fn last(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl Observer for KubeChanges {
    fn observe(&self, event: &events::Event, meta: &actors::Meta) {
        if projections::concept::targets_of(event).kube {
            self.0.fetch_max(meta.position, Ordering::AcqRel);
        }
    }

    fn reset(&self, mesh: &actors::Mesh) {
        self.0.fetch_max(mesh.position, Ordering::AcqRel);
    }
}
