//! The checkpoint: the log position etcd is known to reflect, stored as JSON
//! `{"position":P,"epoch":E}` in [`CHECKPOINT_KEY`], and the compare that fences every
//! transaction on it. The epoch is new at every (re)connection: writing it makes every
//! transaction still in flight from before (one that timed out on our side but may yet reach
//! etcd) fail its compare, so nothing lands that the target does not know of.

use etcd_client::{Compare, CompareOp};
use serde::{Deserialize, Serialize};

/// Where the etcd target records the log position etcd reflects.
pub const CHECKPOINT_KEY: &str = "/meshplane/checkpoints/etcd";

#[derive(Serialize, Deserialize)]
struct Value {
    position: u64,
    /// Absent in checkpoints written before epochs existed.
    #[serde(default)]
    epoch: u64,
}

/// The checkpoint key as last read or written by this target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The exact bytes in etcd (`None`: the key is absent). The fence compares these bytes, not
    /// the parsed position, so any change by another writer is caught, even one we cannot parse.
    raw: Option<Vec<u8>>,
}

impl Checkpoint {
    pub fn absent() -> Self {
        Checkpoint { raw: None }
    }

    pub fn from_raw(raw: Option<Vec<u8>>) -> Self {
        Checkpoint { raw }
    }

    pub fn at(position: u64, epoch: u64) -> Self {
        let raw =
            serde_json::to_vec(&Value { position, epoch }).expect("two u64s always serialise");
        Checkpoint { raw: Some(raw) }
    }

    fn parsed(&self) -> Option<Value> {
        serde_json::from_slice::<Value>(self.raw.as_deref()?).ok()
    }

    /// The position, if the key is present and holds a checkpoint.
    pub fn position(&self) -> Option<u64> {
        self.parsed().map(|v| v.position)
    }

    /// The same epoch at a new position.
    pub fn advanced(&self, position: u64) -> Self {
        Checkpoint::at(position, self.parsed().map_or(0, |v| v.epoch))
    }

    /// The same position (0 when there is none) in a new epoch.
    pub fn renewed(&self, epoch: u64) -> Self {
        Checkpoint::at(self.position().unwrap_or(0), epoch)
    }

    pub fn raw(&self) -> Option<&[u8]> {
        self.raw.as_deref()
    }

    /// The guard of every transaction: the key still holds exactly what we last saw, or is
    /// still absent (version 0) if we saw none.
    pub fn fence(&self) -> Compare {
        match &self.raw {
            Some(raw) => Compare::value(CHECKPOINT_KEY, CompareOp::Equal, raw.clone()),
            None => Compare::version(CHECKPOINT_KEY, CompareOp::Equal, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_position_as_json() {
        let c = Checkpoint::at(42, 7);
        assert_eq!(c.raw(), Some(&br#"{"position":42,"epoch":7}"#[..]));
        assert_eq!(c.position(), Some(42));
        assert_eq!(c.advanced(43), Checkpoint::at(43, 7));
        assert_eq!(c.renewed(8), Checkpoint::at(42, 8));
        let old = Checkpoint::from_raw(Some(br#"{"position":5}"#.to_vec()));
        assert_eq!(old.position(), Some(5));
        assert_eq!(Checkpoint::absent().position(), None);
        assert_eq!(
            Checkpoint::from_raw(Some(b"junk".to_vec())).position(),
            None
        );
    }
}
