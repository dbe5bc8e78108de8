//! Each concept's [`Memory`](actors::Concept::Memory) in the daemon: what it keeps beside the
//! log (heartbeats, the callers' address table), behind a lock, rebuilt from the folded state at
//! start-up and at every rollback, and kept in step with the log by the delivery loop.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use actors::registry::{for_each_concept, ConceptVisitor};
use actors::{ConceptId, Mesh, Meta, Registered};
use events::Event;

/// One concept's memory, shared by its I/O (the heartbeat API, the access-log intake), its
/// timers and the delivery loop.
pub struct Memory<C: Registered> {
    cell: RwLock<C::Memory>,
}

impl<C: Registered> Memory<C> {
    /// A memory of its own (a view at a past position, a test).
    pub fn new(memory: C::Memory) -> Self {
        Memory {
            cell: RwLock::new(memory),
        }
    }

    /// Run `f` with read access (many readers at once: the intake's attribution).
    pub fn read<R>(&self, f: impl FnOnce(&C::Memory) -> R) -> R {
        // Every update is a whole step of the pure memory; a panic in one leaves it usable.
        let guard = self.cell.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    /// Run `f` with write access (a heartbeat, the timers' due and settle).
    pub fn write<R>(&self, f: impl FnOnce(&mut C::Memory) -> R) -> R {
        let mut guard = self.cell.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// What the delivery loop does with every concept's memory.
trait Cell: Send + Sync {
    fn remember(&self, batch: &[(Arc<Event>, Meta)]);
    fn recall(&self, mesh: &Mesh, now_ms: i64);
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<C: Registered> Cell for Memory<C> {
    fn remember(&self, batch: &[(Arc<Event>, Meta)]) {
        // One lock for the whole batch.
        self.write(|memory| {
            for (event, meta) in batch {
                C::remember(memory, event, meta);
            }
        });
    }

    fn recall(&self, mesh: &Mesh, now_ms: i64) {
        self.write(|memory| {
            // Move the old memory out while the new one is built from it.
            let previous = std::mem::replace(memory, C::recall(&Mesh::default(), None, now_ms));
            *memory = C::recall(mesh, Some(previous), now_ms);
        });
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Every concept's memory.
#[derive(Clone)]
pub struct Memories {
    cells: Arc<BTreeMap<ConceptId, Arc<dyn Cell>>>,
    any: Arc<BTreeMap<ConceptId, Arc<dyn Any + Send + Sync>>>,
}

impl Memories {
    /// Every concept's memory for `mesh`, after a start at `now_ms`.
    pub fn recall(mesh: &Mesh, now_ms: i64) -> Memories {
        struct Recall<'a> {
            mesh: &'a Mesh,
            now_ms: i64,
            cells: BTreeMap<ConceptId, Arc<dyn Cell>>,
        }
        impl ConceptVisitor for Recall<'_> {
            fn visit<C: Registered>(&mut self) {
                let memory = Arc::new(Memory::<C>::new(C::recall(self.mesh, None, self.now_ms)));
                self.cells.insert(C::ID, memory);
            }
        }
        let mut recall = Recall {
            mesh,
            now_ms,
            cells: BTreeMap::new(),
        };
        for_each_concept(&mut recall);
        let any = recall
            .cells
            .iter()
            .map(|(id, cell)| (*id, cell.clone().as_any()))
            .collect();
        Memories {
            cells: Arc::new(recall.cells),
            any: Arc::new(any),
        }
    }

    /// The memory of concept `C`.
    pub fn of<C: Registered>(&self) -> Arc<Memory<C>> {
        self.any[&C::ID]
            .clone()
            .downcast::<Memory<C>>()
            .unwrap_or_else(|_| unreachable!("the memory of {} has its type", C::NAME))
    }

    /// Follow a batch of durable events, in order.
    pub fn remember(&self, batch: &[(Arc<Event>, Meta)]) {
        for cell in self.cells.values() {
            cell.remember(batch);
        }
    }

    /// The state was replaced (a rollback): rebuild every memory from it.
    pub fn reset(&self, mesh: &Mesh, now_ms: i64) {
        for cell in self.cells.values() {
            cell.recall(mesh, now_ms);
        }
    }
}
