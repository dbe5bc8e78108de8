//! JSON Lines export and import of a whole log: one event per line, with its envelope fields
//! and its payload as JSON at the stored schema version, so an import reproduces the stored
//! payload bytes exactly (and therefore the same replay digest).

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::envelope::{Envelope, ExpectedVersion, NewEvent, StreamAppend, Transaction};
use crate::error::StoreError;
use crate::schema::Event;
use crate::store::EventStore;

/// One exported line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub position: u64,
    pub stream: String,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub recorded_at_ms: i64,
    pub event_type: String,
    pub schema_version: u16,
    pub data: serde_json::Value,
}

impl Line {
    pub fn from_envelope(e: &Envelope) -> Result<Self, StoreError> {
        Ok(Line {
            position: e.position,
            stream: e.stream.clone(),
            stream_version: e.stream_version,
            event_id: e.event_id,
            recorded_at_ms: e.recorded_at_ms,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            data: Event::payload_to_json(&e.event_type, e.schema_version, &e.payload)?,
        })
    }

    pub fn into_envelope(self) -> Result<Envelope, StoreError> {
        let payload = Event::payload_from_json(&self.event_type, self.schema_version, self.data)?;
        Ok(Envelope {
            position: self.position,
            stream: self.stream,
            stream_version: self.stream_version,
            event_id: self.event_id,
            recorded_at_ms: self.recorded_at_ms,
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload,
        })
    }
}

/// Write every event of `store` as JSON Lines. Returns the number of events written.
pub fn export(store: &dyn EventStore, out: &mut dyn Write) -> Result<u64, StoreError> {
    let mut next = 1;
    let mut count = 0;
    loop {
        let batch = store.read_from(next, 4096)?;
        let Some(last) = batch.last() else { break };
        next = last.position + 1;
        for e in &batch {
            serde_json::to_writer(&mut *out, &Line::from_envelope(e)?).map_err(|err| {
                StoreError::Jsonl {
                    line: e.position as usize,
                    reason: err.to_string(),
                }
            })?;
            out.write_all(b"\n")?;
            count += 1;
        }
    }
    out.flush()?;
    Ok(count)
}

/// Parse a JSON Lines log into envelopes, checking that positions are dense from 1 and that
/// stream versions are consecutive. Blank lines are ignored.
pub fn parse(input: &mut dyn BufRead) -> Result<Vec<Envelope>, StoreError> {
    let mut envelopes: Vec<Envelope> = Vec::new();
    let mut versions: std::collections::BTreeMap<String, u64> = Default::default();
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| StoreError::Jsonl {
            line: number,
            reason,
        };
        let parsed: Line = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let expected_position = envelopes.len() as u64 + 1;
        if parsed.position != expected_position {
            return Err(bad(format!(
                "position is {}, expected {expected_position}",
                parsed.position
            )));
        }
        let version = versions.entry(parsed.stream.clone()).or_default();
        if parsed.stream_version != *version + 1 {
            return Err(bad(format!(
                "stream `{}` version is {}, expected {}",
                parsed.stream,
                parsed.stream_version,
                *version + 1
            )));
        }
        *version += 1;
        envelopes.push(parsed.into_envelope().map_err(|e| bad(e.to_string()))?);
    }
    Ok(envelopes)
}

/// Import envelopes into an empty store, preserving positions, ids and times.
pub fn import(store: &dyn EventStore, envelopes: Vec<Envelope>) -> Result<u64, StoreError> {
    if store.head() != 0 {
        return Err(StoreError::InvalidAppend(format!(
            "import needs an empty log, this one has {} events",
            store.head()
        )));
    }
    let count = envelopes.len() as u64;
    let mut txn = Transaction::default();
    for e in envelopes {
        let new = NewEvent {
            event_id: e.event_id,
            recorded_at_ms: e.recorded_at_ms,
            event_type: e.event_type,
            schema_version: e.schema_version,
            payload: e.payload,
        };
        match txn.appends.last_mut() {
            Some(last) if last.stream == e.stream => last.events.push(new),
            _ => txn.appends.push(StreamAppend {
                stream: e.stream,
                expected: ExpectedVersion::Exact(e.stream_version - 1),
                events: vec![new],
            }),
        }
        if txn.event_count() >= 4096 {
            store.commit(std::mem::take(&mut txn))?;
        }
    }
    if !txn.appends.is_empty() {
        store.commit(txn)?;
    }
    Ok(count)
}
