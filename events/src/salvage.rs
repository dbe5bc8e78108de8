//! Salvage: find every intact record in the bytes of a damaged log file, whatever the storage
//! engine's own structures still say.
//!
//! Every record is stored as a frame (length, CRC32C, envelope) laid out contiguously, inside
//! redb's pages as in a plain file, so the records can be found by scanning the raw bytes for
//! frames that verify, without trusting the B-tree, the headers or the commit slots. A frame is
//! accepted only when its envelope decodes to exactly its length *and* its checksum matches, so
//! random bytes are not taken for records. Old copies of a record (redb copies pages on write)
//! are the same bytes and count once; two different verified records claiming one position are
//! reported as a conflict, and the first one found is kept.

use std::collections::BTreeMap;

use crate::envelope::{Envelope, ENVELOPE_VERSION};
use crate::frame::{HEADER_LEN, MAX_BODY_LEN};

/// The smallest body an envelope can have (version byte, seven fields, a 16-byte id).
const MIN_BODY_LEN: usize = 24;

/// What a scan found.
#[derive(Debug, Default)]
pub struct Found {
    /// Every verified record, by position.
    pub records: BTreeMap<u64, Envelope>,
    /// Positions where two different verified records were found.
    pub conflicts: Vec<u64>,
}

impl Found {
    /// The records from position 1 up to the first missing one: what a new log can hold.
    pub fn dense_prefix(&self) -> Vec<&Envelope> {
        self.records
            .values()
            .zip(1u64..)
            .take_while(|(e, expected)| e.position == *expected)
            .map(|(e, _)| e)
            .collect()
    }

    /// The records after the first missing position.
    pub fn after_gap(&self) -> Vec<&Envelope> {
        let dense = self.dense_prefix().len();
        self.records.values().skip(dense).collect()
    }

    /// The missing position ranges between 1 and the highest record found.
    pub fn gaps(&self) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut next = 1;
        for position in self.records.keys() {
            if *position > next {
                gaps.push((next, position - 1));
            }
            next = position + 1;
        }
        gaps
    }
}

/// Scan `bytes` (a whole log file) for intact records.
pub fn scan(bytes: &[u8]) -> Found {
    let mut found = Found::default();
    let mut at = 0;
    while at + HEADER_LEN + MIN_BODY_LEN <= bytes.len() {
        match frame_at(bytes, at) {
            Some((envelope, used)) => {
                keep(&mut found, envelope);
                at += used;
            }
            None => at += 1,
        }
    }
    found
}

fn keep(found: &mut Found, envelope: Envelope) {
    match found.records.get(&envelope.position) {
        Some(kept) if *kept != envelope => {
            if found.conflicts.last() != Some(&envelope.position) {
                found.conflicts.push(envelope.position);
            }
        }
        Some(_) => {}
        None => {
            found.records.insert(envelope.position, envelope);
        }
    }
}

/// The verified frame starting at `at`, and its length. The cheap tests come first: most offsets
/// fail on the length or the version byte, most of the rest when the envelope does not decode
/// to exactly the body's length; the checksum is computed only for those that do.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Envelope, usize)> {
    let header = &bytes[at..at + HEADER_LEN];
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&len) || at + HEADER_LEN + len > bytes.len() {
        return None;
    }
    let body = &bytes[at + HEADER_LEN..at + HEADER_LEN + len];
    if body[0] != ENVELOPE_VERSION {
        return None;
    }
    let (envelope, rest) = postcard::take_from_bytes::<Envelope>(&body[1..]).ok()?;
    if !rest.is_empty() || envelope.position == 0 {
        return None;
    }
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    (crc32c::crc32c(body) == crc).then_some((envelope, HEADER_LEN + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;
    use uuid::Uuid;

    fn envelope(position: u64, payload: &[u8]) -> Envelope {
        Envelope {
            position,
            stream: format!("s/{}", position % 3),
            stream_version: position,
            event_id: Uuid::from_u128(0xabc0 + u128::from(position)),
            recorded_at_ms: 1_700_000_000_000 + position as i64,
            event_type: "resource.applied".into(),
            schema_version: 1,
            payload: payload.to_vec(),
        }
    }

    /// Frames in noise, as in a database file: records 1-3 and 5-6, with 4 damaged, an old copy
    /// of 2 further on, and bytes that are no record between them.
    #[test]
    fn finds_intact_records_among_noise_and_damage() {
        let mut file = vec![0u8; 100];
        file.extend((0..=255u8).cycle().take(3000));
        for p in 1..=6 {
            let mut f = frame::encode(&envelope(p, &[p as u8; 40])).unwrap();
            if p == 4 {
                let last = f.len() - 1;
                f[last] ^= 0x40;
            }
            file.extend_from_slice(&f);
            file.extend_from_slice(&[0xff; 13]);
        }
        file.extend_from_slice(&frame::encode(&envelope(2, &[2; 40])).unwrap());
        let found = scan(&file);
        assert_eq!(
            found.records.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3, 5, 6]
        );
        assert!(found.conflicts.is_empty());
        assert_eq!(found.dense_prefix().len(), 3);
        assert_eq!(found.after_gap().len(), 2);
        assert_eq!(found.gaps(), vec![(4, 4)]);
    }

    /// Noise is never taken for a record, and a scan of any bytes terminates without a panic:
    /// a seeded stream of random bytes, and frames with every single byte replaced.
    #[test]
    fn noise_and_damaged_frames_are_never_records() {
        let mut x: u64 = 0x1234_5678;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (x >> 56) as u8
            })
            .collect();
        assert!(scan(&noise).records.is_empty());
        let good = frame::encode(&envelope(3, b"payload")).unwrap();
        for at in 0..good.len() {
            for value in [0u8, 1, 0x7f, 0xff] {
                let mut bad = good.clone();
                if bad[at] == value {
                    continue;
                }
                bad[at] = value;
                let found = scan(&bad);
                assert!(
                    found
                        .records
                        .values()
                        .all(|e| *e == envelope(3, b"payload")),
                    "byte {at} = {value}: {:?}",
                    found.records
                );
                assert!(
                    found.records.is_empty(),
                    "byte {at} = {value} still verified"
                );
            }
        }
    }

    #[test]
    fn two_different_records_at_one_position_are_a_conflict() {
        let mut file = frame::encode(&envelope(1, b"first")).unwrap();
        file.extend(frame::encode(&envelope(1, b"other")).unwrap());
        let found = scan(&file);
        assert_eq!(found.conflicts, vec![1]);
        assert_eq!(found.records[&1].payload, b"first");
    }
}
