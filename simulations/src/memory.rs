//! Every concept's [`Memory`](actors::Concept::Memory) in the simulated daemon: the same pure
//! tables the real daemon keeps beside its log (heartbeats, the callers' address table), lost
//! at a crash, recalled from the folded state at a restart or rollback, and fed every appended
//! event. The simulator runs these real tables, never a twin.

use std::any::Any;

use actors::registry::{for_each_concept, ConceptVisitor};
use actors::{ConceptId, Mesh, Meta, Registered};
use events::Event;

/// One memory per registered concept, in registry order.
pub struct Memories {
    cells: Vec<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Memories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memories({} concepts)", self.cells.len())
    }
}

impl Memories {
    /// Every concept's memory for `mesh` at `now_ms`, keeping what `previous` knew that still
    /// holds (a rollback; `None` at a start).
    pub fn recall(mesh: &Mesh, previous: Option<Memories>, now_ms: i64) -> Memories {
        struct Recall<'a> {
            mesh: &'a Mesh,
            previous: Option<std::vec::IntoIter<Box<dyn Any + Send + Sync>>>,
            now_ms: i64,
            cells: Vec<Box<dyn Any + Send + Sync>>,
        }
        impl ConceptVisitor for Recall<'_> {
            fn visit<C: Registered>(&mut self) {
                let previous = self
                    .previous
                    .as_mut()
                    .and_then(Iterator::next)
                    .and_then(|cell| cell.downcast::<C::Memory>().ok())
                    .map(|memory| *memory);
                let memory = C::recall(self.mesh, previous, self.now_ms);
                self.cells.push(Box::new(memory));
            }
        }
        let mut recall = Recall {
            mesh,
            previous: previous.map(|p| p.cells.into_iter()),
            now_ms,
            cells: Vec::new(),
        };
        for_each_concept(&mut recall);
        Memories {
            cells: recall.cells,
        }
    }

    /// After a rollback: every memory rebuilt from `mesh`, keeping what the old ones knew that
    /// still holds (heartbeats of instances still registered).
    pub fn rebuild(&mut self, mesh: &Mesh, now_ms: i64) {
        let previous = Memories {
            cells: std::mem::take(&mut self.cells),
        };
        *self = Memories::recall(mesh, Some(previous), now_ms);
    }

    /// Concept `C`'s memory.
    pub fn of<C: Registered>(&self) -> &C::Memory {
        self.cells[C::ID as usize]
            .downcast_ref()
            .unwrap_or_else(|| unreachable!("the memory of {} has its type", C::NAME))
    }

    /// Concept `C`'s memory, to change (a heartbeat).
    pub fn of_mut<C: Registered>(&mut self) -> &mut C::Memory {
        self.cells[C::ID as usize]
            .downcast_mut()
            .unwrap_or_else(|| unreachable!("the memory of {} has its type", C::NAME))
    }

    /// Follow one appended event.
    pub fn remember(&mut self, event: &Event, meta: &Meta) {
        struct Remember<'a> {
            memories: &'a mut Memories,
            event: &'a Event,
            meta: &'a Meta,
        }
        impl ConceptVisitor for Remember<'_> {
            fn visit<C: Registered>(&mut self) {
                C::remember(self.memories.of_mut::<C>(), self.event, self.meta);
            }
        }
        for_each_concept(&mut Remember {
            memories: self,
            event,
            meta,
        });
    }

    /// The concepts that have timers, in registry order.
    pub fn timed() -> Vec<ConceptId> {
        struct Timed(Vec<ConceptId>);
        impl ConceptVisitor for Timed {
            fn visit<C: Registered>(&mut self) {
                if C::TICK_MS > 0 {
                    self.0.push(C::ID);
                }
            }
        }
        let mut timed = Timed(Vec::new());
        for_each_concept(&mut timed);
        timed.0
    }
}
