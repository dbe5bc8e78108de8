//! The desired Kubernetes objects of the running state, read from the actors a chunk at a
//! time and handed to a projection target (the manifest directory, the cluster).
//!
//! A read holds the actor (and the events waiting for it) while it renders, so each read
//! renders at most [`CHUNK`] objects; and a pass never holds all desired objects, nor a copy of
//! a concept's state, at once (10,000 fences would need several hundred MB).

use std::future::Future;
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::Arc;

use events::schema::{FenceKey, ResourceKey};
use projections::{KubeObject, ObjectRef};
use serde_json::Value;

use crate::host::{DispatchError, Dispatcher};

/// Objects rendered per read of an actor.
pub const CHUNK: usize = 256;

/// One thing a projection target should make true.
#[derive(Clone, Debug, PartialEq)]
pub enum DesiredItem {
    /// An object meshplane owns, whole.
    Object(ObjectRef, Box<KubeObject>),
    /// The status of an object meshplane does not own (a ServiceFence written by someone
    /// else): apiVersion, kind, metadata name/namespace and `status`.
    Status(ObjectRef, Value),
}

/// Where the chunks of a pass go.
pub trait ChunkSink {
    fn take(&mut self, chunk: Vec<DesiredItem>) -> impl Future<Output = Result<(), String>>;
}

/// Render every desired object into `sink`, a chunk at a time. Returns the newest log position
/// a chunk saw (chunks may see successive positions; the pass after the next delivery covers
/// whatever changed meanwhile).
pub async fn walk(dispatcher: &Dispatcher, sink: &mut impl ChunkSink) -> Result<u64, String> {
    let host = |e: DispatchError| e.to_string();
    let mut position = 0;
    let mut after: Option<ResourceKey> = None;
    loop {
        let cursor = after.take();
        let (objects, last, at) = dispatcher
            .read_resources(move |s, position| {
                let range = match cursor {
                    Some(k) => s.resources.range((Excluded(k), Unbounded)),
                    None => s.resources.range::<ResourceKey, _>(..),
                };
                let mut objects = Vec::new();
                let mut last = None;
                for (key, resource) in range.take(CHUNK) {
                    last = Some(key.clone());
                    match projections::desired::resource_object(key, resource) {
                        Some(Ok((r, o))) => objects.push(DesiredItem::Object(r, Box::new(o))),
                        Some(Err((r, why))) => {
                            tracing::error!(object = %r, error = %why, "cannot project object")
                        }
                        None => {}
                    }
                }
                (objects, last, position)
            })
            .await
            .map_err(host)?;
        position = position.max(at);
        sink.take(objects).await?;
        match last {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    // The applied ServiceFences (the fence concept adds their status); few, so copied.
    let applied = dispatcher
        .read_resources(|s, _| {
            let mut only = actors::resource::ResourceState::default();
            only.resources.extend(
                s.list(actors::fence::SERVICE_FENCE_KIND, None)
                    .map(|(k, r)| (k.clone(), r.clone())),
            );
            only
        })
        .await
        .map_err(host)?;
    let applied = Arc::new(applied);
    let mut after: Option<FenceKey> = None;
    loop {
        let cursor = after.take();
        let applied = applied.clone();
        let (objects, last, at) = dispatcher
            .read_fences(move |s, position| {
                let range = match cursor {
                    Some(k) => s.fences.range((Excluded(k), Unbounded)),
                    None => s.fences.range::<FenceKey, _>(..),
                };
                let mut out = std::collections::BTreeMap::new();
                let mut statuses = Vec::new();
                let mut last = None;
                for (key, _) in range.take(CHUNK) {
                    last = Some(key.clone());
                    projections::fence::fence_objects(s, &applied, key, &mut out);
                    if let Some((r, status)) =
                        projections::fence::observed_fence_status(s, &applied, key)
                    {
                        statuses.push(DesiredItem::Status(r, status));
                    }
                }
                if last.is_none() {
                    out.extend(projections::fence::fallback_object(s));
                }
                let mut items: Vec<DesiredItem> = out
                    .into_iter()
                    .map(|(r, o)| DesiredItem::Object(r, Box::new(o)))
                    .collect();
                items.extend(statuses);
                (items, last, position)
            })
            .await
            .map_err(host)?;
        position = position.max(at);
        sink.take(objects).await?;
        match last {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    Ok(position)
}
