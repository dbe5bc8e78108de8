//! Golden-bytes fixtures: the stored form of every event type and schema version this build can
//! read, checked in under `tests/golden/`.
//!
//! - `<type>.v<version>.bin` is the postcard payload, `<type>.v<version>.json` the same payload
//!   as JSON (what a JSON Lines export writes).
//! - Every (type, version) in [`STORED_TYPES`] must have both; a fixture without an entry means
//!   this build dropped the ability to read history that exists.
//! - The current version of each type must encode [`Event::samples`] to exactly the `.bin`
//!   bytes: a change to a stored struct that is not a new schema version fails here.
//! - Old versions must still decode (and upcast) through [`Event::decode`].
//!
//! `MESHPLANE_BLESS=1 cargo test -p events --test golden` writes the fixtures of the current
//! versions from the samples; fixtures of older versions are history and are never rewritten.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use events::schema::STORED_TYPES;
use events::Event;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

fn fixture(event_type: &str, version: u16, ext: &str) -> PathBuf {
    golden_dir().join(format!("{event_type}.v{version}.{ext}"))
}

fn blessing() -> bool {
    std::env::var("MESHPLANE_BLESS").is_ok_and(|v| v == "1")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "golden fixture {} is missing or unreadable ({e}); for a new current version run \
             `MESHPLANE_BLESS=1 cargo test -p events --test golden`",
            path.display()
        )
    })
}

fn json_text(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serializes");
    text.push('\n');
    text
}

/// The current-version samples, one per event type.
fn samples() -> Vec<(Event, Vec<u8>)> {
    Event::samples()
        .into_iter()
        .map(|event| {
            let bytes = event.encode().expect("sample encodes");
            (event, bytes)
        })
        .collect()
}

/// Write the current version's fixtures from the samples. Only the current version of each
/// type is written, so an older version's fixture is never touched.
fn bless() {
    std::fs::create_dir_all(golden_dir()).unwrap();
    for (event, bytes) in samples() {
        let (event_type, version) = (event.event_type(), event.schema_version());
        let json = Event::payload_to_json(event_type, version, &bytes).unwrap();
        let bin_path = fixture(event_type, version, "bin");
        if std::fs::read(&bin_path).is_ok_and(|old| old != bytes) {
            eprintln!(
                "blessing CHANGED {}: a stored struct changed without a new schema version?",
                bin_path.display()
            );
        }
        std::fs::write(&bin_path, &bytes).unwrap();
        std::fs::write(fixture(event_type, version, "json"), json_text(&json)).unwrap();
    }
}

#[test]
fn golden_fixtures() {
    if blessing() {
        bless();
    }
    let stored: BTreeSet<(&str, u16)> = STORED_TYPES.iter().copied().collect();
    assert_eq!(
        stored.len(),
        STORED_TYPES.len(),
        "STORED_TYPES lists a pair twice"
    );

    for &(event_type, version) in STORED_TYPES {
        let bin = read(&fixture(event_type, version, "bin"));
        let json: serde_json::Value =
            serde_json::from_slice(&read(&fixture(event_type, version, "json"))).unwrap_or_else(
                |e| panic!("{event_type} v{version}: the .json fixture does not parse: {e}"),
            );
        let decoded = Event::payload_to_json(event_type, version, &bin).unwrap_or_else(|e| {
            panic!("{event_type} v{version}: the .bin fixture does not decode: {e}")
        });
        assert_eq!(
            decoded, json,
            "{event_type} v{version}: the .bin fixture decodes to the .json fixture"
        );
        let reencoded = Event::payload_from_json(event_type, version, json).unwrap();
        assert_eq!(
            reencoded, bin,
            "{event_type} v{version}: the .json fixture encodes to the .bin bytes"
        );
        let event = Event::decode(event_type, version, &bin)
            .unwrap_or_else(|e| panic!("{event_type} v{version}: Event::decode fails: {e}"));
        assert_eq!(
            event.event_type(),
            event_type,
            "{event_type} v{version} decodes to another type"
        );
    }

    // Every type with a stored version has a sample at its newest version, and the sample's
    // bytes are the fixture's.
    let sampled: BTreeSet<&str> = samples().iter().map(|(e, _)| e.event_type()).collect();
    for (event_type, _) in &stored {
        assert!(
            sampled.contains(event_type),
            "`{event_type}` has no entry in Event::samples()"
        );
    }
    for (event, bytes) in samples() {
        let (event_type, version) = (event.event_type(), event.schema_version());
        assert!(
            stored.contains(&(event_type, version)),
            "{event_type} v{version} is written by this build but not listed in STORED_TYPES"
        );
        let newest = stored
            .iter()
            .filter(|(t, _)| *t == event_type)
            .map(|(_, v)| *v)
            .max();
        assert_eq!(
            newest,
            Some(version),
            "`{event_type}`: the current version is the newest stored one"
        );
        assert_eq!(
            bytes,
            read(&fixture(event_type, version, "bin")),
            "{event_type} v{version}: encoding the sample no longer gives the golden bytes; a change \
             to a stored struct needs a new schema version with an upcast"
        );
        assert_eq!(
            Event::decode(event_type, version, &bytes).unwrap(),
            event,
            "{event_type}: sample round trip"
        );
    }

    // A fixture whose (type, version) this build no longer lists is history it can't read.
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name
            .strip_suffix(".bin")
            .or_else(|| name.strip_suffix(".json"))
        else {
            panic!("unexpected file {name} among the golden fixtures");
        };
        let (event_type, version) = stem
            .rsplit_once(".v")
            .and_then(|(t, v)| Some((t, v.parse::<u16>().ok()?)))
            .unwrap_or_else(|| panic!("golden fixture {name} is not named <type>.v<version>"));
        assert!(
            stored.contains(&(event_type, version)),
            "golden fixture {name} is for {event_type} v{version}, which STORED_TYPES no longer lists"
        );
    }
}
