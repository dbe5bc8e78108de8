//! Whether this daemon may write to the cluster now: a flag the election flips (which the
//! projector waits on) and a deadline that the flag cannot outlive (so a stalled election
//! task cannot keep this daemon writing after its lease could have passed to another).

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio::time::Instant;

/// Shared between the election task and every [`Leadership`] handle: leading until this
/// instant (none: not leading). Read with tokio's clock, so a paused test clock applies.
type Until = Arc<Mutex<Option<Instant>>>;

/// A read handle on the leadership: cheap to clone, checked before every write.
#[derive(Clone)]
pub struct Leadership {
    changes: watch::Receiver<bool>,
    /// The election's deadline; none for [`Leadership::always`] and [`Leadership::manual`],
    /// which have only the flag.
    until: Option<Until>,
    /// Keeps the channel open for [`Leadership::always`], whose flag never changes (a closed
    /// channel would tell the projector that leadership has ended for good).
    _keep_open: Option<Arc<watch::Sender<bool>>>,
}

impl Leadership {
    /// True while this daemon holds the lease: the flag is up and its deadline has not passed.
    pub fn is_leader(&self) -> bool {
        *self.changes.borrow()
            && self
                .until
                .as_ref()
                .is_none_or(|until| lock(until).is_some_and(|deadline| Instant::now() < deadline))
    }

    /// The flag, to wait for changes (the projector pauses while it is false). It turns false
    /// as soon as the election learns or decides that the lease is lost, including when its
    /// deadline passes.
    pub fn changes(&self) -> watch::Receiver<bool> {
        self.changes.clone()
    }

    /// Always the leader (`--no-lease`: exactly one daemon runs).
    pub fn always() -> Leadership {
        let (sender, changes) = watch::channel(true);
        Leadership {
            changes,
            until: None,
            _keep_open: Some(Arc::new(sender)),
        }
    }

    /// Leadership set by hand (tests): the sender flips it; dropping the sender ends it.
    pub fn manual(initial: bool) -> (Leadership, watch::Sender<bool>) {
        let (sender, changes) = watch::channel(initial);
        let leadership = Leadership {
            changes,
            until: None,
            _keep_open: None,
        };
        (leadership, sender)
    }
}

/// The election's side: the only writer of the flag and the deadline. Dropping it (the task
/// ended or was aborted) ends the leadership at once.
pub(crate) struct Seat {
    flag: watch::Sender<bool>,
    until: Until,
}

impl Seat {
    /// A seat not leading, and the handle that reads it.
    pub(crate) fn new() -> (Seat, Leadership) {
        let (flag, changes) = watch::channel(false);
        let until: Until = Arc::default();
        let leadership = Leadership {
            changes,
            until: Some(until.clone()),
            _keep_open: None,
        };
        (Seat { flag, until }, leadership)
    }

    /// Lead until `deadline` (a write succeeded). A deadline already past leads nothing: the
    /// answer came too late to prove anything.
    pub(crate) fn lead(&self, deadline: Instant) -> bool {
        if Instant::now() >= deadline {
            self.lose();
            return false;
        }
        *lock(&self.until) = Some(deadline);
        self.flag
            .send_if_modified(|leading| !std::mem::replace(leading, true))
    }

    /// Stop leading; true if this daemon was leading until now.
    pub(crate) fn lose(&self) -> bool {
        *lock(&self.until) = None;
        self.flag
            .send_if_modified(|leading| std::mem::replace(leading, false))
    }

    /// The deadline while leading.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if *self.flag.borrow() {
            *lock(&self.until)
        } else {
            None
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.lose();
    }
}

/// A poisoned lock still holds a plain `Option<Instant>`: nothing can be half-written.
fn lock(until: &Until) -> std::sync::MutexGuard<'_, Option<Instant>> {
    until.lock().unwrap_or_else(PoisonError::into_inner)
}
