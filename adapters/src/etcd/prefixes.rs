//! The key prefixes the etcd target owns. Everything it reads, puts and deletes lies under one
//! of them; keys outside are never touched.

use std::collections::BTreeMap;

use super::checkpoint::CHECKPOINT_KEY;
use crate::error::Error;

/// A validated, normalised set of owned prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedPrefixes {
    /// Sorted, none a prefix of another (a nested prefix would make reads see keys twice).
    prefixes: Vec<String>,
}

impl OwnedPrefixes {
    /// Validate and normalise. Rejects an empty list, an empty prefix (it would own all of
    /// etcd) and a prefix that covers [`CHECKPOINT_KEY`] (the target would delete its own
    /// checkpoint as "not desired").
    pub fn new(prefixes: Vec<String>) -> Result<Self, Error> {
        if prefixes.is_empty() {
            return Err(Error::Config("etcd: no owned key prefixes".into()));
        }
        let mut sorted = prefixes;
        sorted.sort();
        sorted.dedup();
        let mut kept: Vec<String> = Vec::with_capacity(sorted.len());
        for prefix in sorted {
            if prefix.is_empty() {
                return Err(Error::Config(
                    "etcd: an empty owned prefix would own every key".into(),
                ));
            }
            if CHECKPOINT_KEY.starts_with(prefix.as_str()) {
                return Err(Error::Config(format!(
                    "etcd: owned prefix {prefix:?} covers the checkpoint key {CHECKPOINT_KEY}"
                )));
            }
            // Sorted order puts a covering prefix right before the prefixes it covers.
            if kept.last().is_some_and(|k| prefix.starts_with(k.as_str())) {
                continue;
            }
            kept.push(prefix);
        }
        Ok(OwnedPrefixes { prefixes: kept })
    }

    pub fn as_slice(&self) -> &[String] {
        &self.prefixes
    }

    pub fn owns(&self, key: &[u8]) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p.as_bytes()))
    }

    /// Every desired key must be owned; checked before anything is written.
    pub fn check_desired(&self, desired: &BTreeMap<String, String>) -> Result<(), Error> {
        match desired.keys().find(|k| !self.owns(k.as_bytes())) {
            Some(key) => Err(Error::EtcdKeyNotOwned {
                key: key.clone(),
                prefixes: self.prefixes.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// The end of the key range holding every key that starts with `prefix` (etcd's convention:
/// the prefix with its last byte below 0xff incremented; `\0` means "to the end of the key
/// space" when there is none).
pub fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_end_increments_the_last_byte() {
        assert_eq!(range_end(b"/mesh/"), b"/mesh0".to_vec());
        assert_eq!(range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(range_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn nested_prefixes_collapse_and_bad_ones_are_rejected() {
        let p = OwnedPrefixes::new(vec!["/mesh/x/".into(), "/mesh/".into(), "/a/".into()]).unwrap();
        assert_eq!(p.as_slice(), ["/a/".to_string(), "/mesh/".to_string()]);
        assert!(p.owns(b"/mesh/x/1"));
        assert!(!p.owns(b"/meshplane/resources/a"));
        assert!(OwnedPrefixes::new(vec![]).is_err());
        assert!(OwnedPrefixes::new(vec!["".into()]).is_err());
        assert!(OwnedPrefixes::new(vec!["/meshplane/".into()]).is_err());
        assert!(OwnedPrefixes::new(vec!["/meshplane/checkpoints/etcd".into()]).is_err());
    }

    #[test]
    fn desired_keys_must_be_owned() {
        let p = OwnedPrefixes::new(vec!["/mesh/".into()]).unwrap();
        let ok = BTreeMap::from([("/mesh/a".to_string(), "1".to_string())]);
        assert!(p.check_desired(&ok).is_ok());
        let bad = BTreeMap::from([("/other/a".to_string(), "1".to_string())]);
        assert!(matches!(
            p.check_desired(&bad),
            Err(Error::EtcdKeyNotOwned { key, .. }) if key == "/other/a"
        ));
    }
}
