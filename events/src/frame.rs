//! On-disk framing of one record: `[u32 LE body length][u32 LE CRC32C of body][body]`, where
//! the body is `[envelope version byte][postcard(Envelope)]`.
//!
//! Every backend stores frames, so every backend detects a torn or corrupt record the same way.

use crate::envelope::{Envelope, ENVELOPE_VERSION};
use crate::error::StoreError;

/// Bytes of framing before the body.
pub const HEADER_LEN: usize = 8;
/// Refuse absurd lengths rather than allocate them (a corrupt length field).
pub const MAX_BODY_LEN: usize = 64 * 1024 * 1024;

/// Encode an envelope into a frame.
pub fn encode(envelope: &Envelope) -> Result<Vec<u8>, StoreError> {
    let mut body = Vec::with_capacity(envelope.payload.len() + envelope.stream.len() + 64);
    body.push(ENVELOPE_VERSION);
    let body = postcard::to_extend(envelope, body).map_err(|e| StoreError::Codec {
        event_type: envelope.event_type.clone(),
        schema_version: envelope.schema_version,
        reason: e.to_string(),
    })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decode a frame that is expected to hold the record at `position`.
///
/// Fails with [`StoreError::Corrupt`] when the frame is short, the checksum does not match,
/// the body does not decode, or the record claims another position.
pub fn decode(position: u64, frame: &[u8]) -> Result<Envelope, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let (envelope, used) = decode_prefix(frame).map_err(corrupt)?;
    if used != frame.len() {
        return Err(corrupt(format!(
            "{} trailing bytes after the record",
            frame.len() - used
        )));
    }
    if envelope.position != position {
        return Err(corrupt(format!(
            "record claims position {}",
            envelope.position
        )));
    }
    Ok(envelope)
}

/// Decode the first frame in `bytes`, returning the envelope and the number of bytes it used.
/// The error is a human-readable reason (the caller knows the position or offset).
pub fn decode_prefix(bytes: &[u8]) -> Result<(Envelope, usize), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than a frame header",
            bytes.len()
        ));
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len > MAX_BODY_LEN {
        return Err(format!(
            "length field {len} exceeds the maximum record size"
        ));
    }
    let body = bytes
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or_else(|| format!("record of {len} bytes is cut short"))?;
    if crc32c::crc32c(body) != crc {
        return Err("checksum mismatch".to_string());
    }
    match body.first() {
        Some(&ENVELOPE_VERSION) => {}
        Some(v) => return Err(format!("unknown envelope version {v}")),
        None => return Err("empty record body".to_string()),
    }
    let envelope: Envelope =
        postcard::from_bytes(&body[1..]).map_err(|e| format!("envelope does not decode: {e}"))?;
    Ok((envelope, HEADER_LEN + len))
}

/// Check the frame of the record at `position` without decoding the whole envelope: its length,
/// its checksum, its envelope version and the position it claims (the envelope's first field).
/// What opening a log runs over every record; returns the body's checksum.
pub fn verify(position: u64, frame: &[u8]) -> Result<u32, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    if frame.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "{} bytes, shorter than a frame header",
            frame.len()
        )));
    }
    let len = u32::from_le_bytes(frame[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    if frame.len() != HEADER_LEN + len {
        return Err(corrupt(format!(
            "length field {len} does not match the record's {} bytes",
            frame.len() - HEADER_LEN
        )));
    }
    let body = &frame[HEADER_LEN..];
    if crc32c::crc32c(body) != crc {
        return Err(corrupt("checksum mismatch".to_string()));
    }
    match body.first() {
        Some(&ENVELOPE_VERSION) => {}
        Some(v) => return Err(corrupt(format!("unknown envelope version {v}"))),
        None => return Err(corrupt("empty record body".to_string())),
    }
    let (claimed, _) = postcard::take_from_bytes::<u64>(&body[1..])
        .map_err(|e| corrupt(format!("envelope does not decode: {e}")))?;
    if claimed != position {
        return Err(corrupt(format!("record claims position {claimed}")));
    }
    Ok(crc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn sample(position: u64) -> Envelope {
        Envelope {
            position,
            stream: "s".into(),
            stream_version: 1,
            event_id: Uuid::from_u128(7),
            recorded_at_ms: 1_700_000_000_000,
            event_type: "resource.deleted".into(),
            schema_version: 1,
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn round_trips() {
        let e = sample(3);
        assert_eq!(decode(3, &encode(&e).unwrap()).unwrap(), e);
    }

    #[test]
    fn detects_every_single_bit_flip() {
        let frame = encode(&sample(1)).unwrap();
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode(1, &bad).is_err(),
                    "flip at byte {byte} bit {bit} not detected"
                );
            }
        }
    }

    #[test]
    fn detects_truncation_and_wrong_position() {
        let frame = encode(&sample(1)).unwrap();
        for cut in 0..frame.len() {
            assert!(decode(1, &frame[..cut]).is_err());
        }
        let err = decode(2, &frame).unwrap_err().to_string();
        assert!(err.contains("claims position 1"), "{err}");
    }

    #[test]
    fn verify_agrees_with_decode() {
        let frame = encode(&sample(9)).unwrap();
        assert_eq!(verify(9, &frame).unwrap(), crc32c::crc32c(&frame[8..]));
        assert!(verify(8, &frame)
            .unwrap_err()
            .to_string()
            .contains("claims position 9"));
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[byte] ^= 1 << bit;
                assert!(verify(9, &bad).is_err(), "flip at byte {byte} bit {bit}");
            }
        }
        for cut in 0..frame.len() {
            assert!(verify(9, &frame[..cut]).is_err());
        }
    }
}
