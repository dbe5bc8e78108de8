//! The checkpoint: the log position etcd is known to reflect, stored as JSON `{"position":P}`
//! in [`CHECKPOINT_KEY`], and the compare that fences every transaction on it.

use etcd_client::{Compare, CompareOp};
use serde::{Deserialize, Serialize};

/// Where the etcd target records the log position etcd reflects.
pub const CHECKPOINT_KEY: &str = "/meshplane/checkpoints/etcd";

#[derive(Serialize, Deserialize)]
struct Value {
    position: u64,
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

    pub fn at(position: u64) -> Self {
        let raw = serde_json::to_vec(&Value { position }).expect("a u64 always serialises");
        Checkpoint { raw: Some(raw) }
    }

    /// The position, if the key is present and holds a checkpoint.
    pub fn position(&self) -> Option<u64> {
        let raw = self.raw.as_deref()?;
        serde_json::from_slice::<Value>(raw)
            .ok()
            .map(|v| v.position)
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
        let c = Checkpoint::at(42);
        assert_eq!(c.raw(), Some(&br#"{"position":42}"#[..]));
        assert_eq!(c.position(), Some(42));
        assert_eq!(Checkpoint::absent().position(), None);
        assert_eq!(
            Checkpoint::from_raw(Some(b"junk".to_vec())).position(),
            None
        );
    }
}
