//! Events about the log's own timeline: rollbacks.

use serde::{Deserialize, Serialize};

use super::Event;

pub const ROLLED_BACK: &str = "mesh.rolled_back";
/// The stream every rollback is appended to.
pub const ROLLBACK_STREAM: &str = "mesh/rollbacks";

/// Every concept's state returns to what it was at position `to`: the events between `to` and
/// this one are undone (they stay in the log, as history). New events continue from here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub to: u64,
    /// Why, as the operator said.
    pub reason: String,
}

pub(super) fn samples() -> Vec<Event> {
    vec![Event::RolledBack(RolledBack {
        to: 1_204,
        reason: "bad VirtualService rollout".into(),
    })]
}
