//! What to write: the puts and deletes that turn what etcd holds into what is desired, and how
//! to cut them into transactions etcd accepts.

use std::collections::BTreeMap;

use etcd_client::TxnOp;

/// etcd's default `--max-txn-ops`: a transaction with more operations is refused.
pub const MAX_TXN_OPS: usize = 128;

/// Budget of key and value bytes per transaction, below etcd's default `--max-request-bytes`
/// (1.5 MiB) with room for the compare and the framing, so large values cannot make a
/// transaction of 128 operations too big to be accepted.
pub const MAX_TXN_BYTES: usize = 1024 * 1024;

/// Per-operation framing counted against [`MAX_TXN_BYTES`].
const OP_OVERHEAD: usize = 16;

/// One write. Puts borrow the desired map (the common, large case, so nothing is copied until
/// the request is built); deletes own their key, which comes from what etcd held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Put { key: &'a str, value: &'a str },
    Delete { key: Vec<u8> },
}

impl Op<'_> {
    fn size(&self) -> usize {
        OP_OVERHEAD
            + match self {
                Op::Put { key, value } => key.len() + value.len(),
                Op::Delete { key } => key.len(),
            }
    }

    pub fn to_txn_op(&self) -> TxnOp {
        match self {
            Op::Put { key, value } => TxnOp::put(*key, *value, None),
            Op::Delete { key } => TxnOp::delete(key.clone(), None),
        }
    }
}

/// The puts (new or changed values) and deletes (held but no longer desired) that make `held`
/// equal `desired`, in key order. One merge walk over both sorted maps: Rust orders `str` by
/// bytes, as etcd orders keys.
pub fn diff<'a>(
    desired: &'a BTreeMap<String, String>,
    held: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Vec<Op<'a>> {
    let mut ops = Vec::new();
    let mut want = desired.iter().peekable();
    let mut have = held.iter().peekable();
    loop {
        match (want.peek(), have.peek()) {
            (None, None) => break,
            (Some((k, v)), None) => {
                ops.push(Op::Put { key: k, value: v });
                want.next();
            }
            (None, Some((k, _))) => {
                ops.push(Op::Delete { key: k.to_vec() });
                have.next();
            }
            (Some((wk, wv)), Some((hk, hv))) => match wk.as_bytes().cmp(hk.as_slice()) {
                std::cmp::Ordering::Less => {
                    ops.push(Op::Put { key: wk, value: wv });
                    want.next();
                }
                std::cmp::Ordering::Greater => {
                    ops.push(Op::Delete { key: hk.to_vec() });
                    have.next();
                }
                std::cmp::Ordering::Equal => {
                    if wv.as_bytes() != hv.as_slice() {
                        ops.push(Op::Put { key: wk, value: wv });
                    }
                    want.next();
                    have.next();
                }
            },
        }
    }
    ops
}

/// Cut `ops` into batches of at most `max_ops` operations and (unless one operation alone is
/// larger) `max_bytes` bytes, keeping their order.
pub fn batches<'a>(ops: Vec<Op<'a>>, max_ops: usize, max_bytes: usize) -> Vec<Vec<Op<'a>>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let size = op.size();
        if !current.is_empty() && (current.len() == max_ops || bytes + size > max_bytes) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(op);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether one more put of `extra` bytes (the checkpoint) still fits in `batch`.
pub fn fits_one_more(batch: &[Op<'_>], extra: usize, max_ops: usize, max_bytes: usize) -> bool {
    let bytes: usize = batch.iter().map(Op::size).sum();
    batch.len() < max_ops && bytes + extra + OP_OVERHEAD <= max_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn held(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn diff_puts_new_and_changed_and_deletes_the_rest() {
        let desired = map(&[("/m/a", "1"), ("/m/b", "2"), ("/m/d", "4")]);
        let have = held(&[("/m/a", "1"), ("/m/b", "old"), ("/m/c", "3")]);
        assert_eq!(
            diff(&desired, &have),
            vec![
                Op::Put {
                    key: "/m/b",
                    value: "2"
                },
                Op::Delete {
                    key: b"/m/c".to_vec()
                },
                Op::Put {
                    key: "/m/d",
                    value: "4"
                },
            ]
        );
        assert!(diff(
            &desired,
            &held(&[("/m/a", "1"), ("/m/b", "2"), ("/m/d", "4")])
        )
        .is_empty());
    }

    #[test]
    fn batches_respect_op_and_byte_limits() {
        let desired: BTreeMap<String, String> = (0..300)
            .map(|i| (format!("/m/{i:03}"), "v".into()))
            .collect();
        let ops = diff(&desired, &BTreeMap::new());
        let sizes: Vec<usize> = batches(ops.clone(), 128, usize::MAX)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![128, 128, 44]);
        // Each op is 16 + 6 + 1 = 23 bytes: 4 fit in 100.
        let sizes: Vec<usize> = batches(ops[..10].to_vec(), 128, 100)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        assert!(fits_one_more(&ops[..127], 10, 128, usize::MAX));
        assert!(!fits_one_more(&ops[..128], 10, 128, usize::MAX));
    }
}
