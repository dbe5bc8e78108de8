//! Desired vs observed → a plan of creates, updates and deletes.

use std::collections::BTreeMap;

/// What must change so that observed becomes desired. Every list is in key order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan<K, V> {
    pub creates: Vec<(K, V)>,
    pub updates: Vec<(K, V)>,
    pub deletes: Vec<K>,
}

impl<K, V> Plan<K, V> {
    pub fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.updates.is_empty() && self.deletes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.creates.len() + self.updates.len() + self.deletes.len()
    }
}

impl<K: std::fmt::Display, V> std::fmt::Display for Plan<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, _) in &self.creates {
            writeln!(f, "create {k}")?;
        }
        for (k, _) in &self.updates {
            writeln!(f, "update {k}")?;
        }
        for k in &self.deletes {
            writeln!(f, "delete {k}")?;
        }
        Ok(())
    }
}

/// Compare desired with observed. Objects equal in both need nothing.
pub fn plan<K: Ord + Clone, V: PartialEq + Clone>(
    desired: &BTreeMap<K, V>,
    observed: &BTreeMap<K, V>,
) -> Plan<K, V> {
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    for (k, want) in desired {
        match observed.get(k) {
            None => creates.push((k.clone(), want.clone())),
            Some(have) if have != want => updates.push((k.clone(), want.clone())),
            Some(_) => {}
        }
    }
    let deletes = observed
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    Plan {
        creates,
        updates,
        deletes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_creates_updates_and_deletes() {
        let desired = BTreeMap::from([("a", 1), ("b", 2), ("c", 3)]);
        let observed = BTreeMap::from([("b", 2), ("c", 4), ("d", 5)]);
        let p = plan(&desired, &observed);
        assert_eq!(p.creates, vec![("a", 1)]);
        assert_eq!(p.updates, vec![("c", 3)]);
        assert_eq!(p.deletes, vec!["d"]);
        assert_eq!(p.to_string(), "create a\nupdate c\ndelete d\n");
        assert!(plan(&desired, &desired).is_empty());
    }
}
