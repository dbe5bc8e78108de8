//! Strict decoding of declarative documents into JSON values, as kubectl and the API server's
//! strict decoding do it: a key that appears twice in one mapping is refused (a plain decode
//! keeps the last and silently drops the first), and so is a number that is not finite
//! (YAML's `.inf` and `.nan`: JSON cannot carry them, so a plain decode turns them
//! into `null`, which a typed field then reads as 0).
//!
//! Works with any serde deserializer (serde_json's, a YAML document's), so each decoder of
//! outside input keeps its own framing and error positions and only swaps
//! `Value::deserialize(d)` for [`value`]`(d)`. Pure; errors name the path of the offending
//! key (`spec.ports[0].port`), shortened when a key is long. (A YAML deserializer prefixes
//! its own path of the enclosing mapping and appends the line; serde_json appends the line.)

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::kinds::validate::report::{clipped, shown};

/// Decode one document strictly (see the module's documentation).
pub fn value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    Node { path: &Path::Root }.deserialize(deserializer)
}

/// Decode a JSON text strictly: one value, with nothing but whitespace after it.
pub fn json(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = value(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Where a value sits in its document, built on the stack as the decoder descends; turned into
/// text only for an error.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{key}"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

impl Path<'_> {
    fn text(&self) -> String {
        match self {
            Path::Root => "(document)".to_string(),
            path => clipped(path.to_string()),
        }
    }
}

struct Node<'a> {
    path: &'a Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| {
            E::custom(format!(
                "Invalid value: {v} at {}: a number must be finite (JSON cannot carry it)",
                self.path.text()
            ))
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(Node {
            path: &Path::Index(self.path, items.len()),
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let path = Path::Key(self.path, &key);
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {} at {}: already set in this mapping",
                    shown(&key),
                    path.text()
                )));
            }
            let value = map.next_value_seed(Node { path: &path })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A mapping key: a string (a YAML scalar key is read as its text, as before).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_decodes_like_serde_json_when_nothing_is_duplicated() {
        let text = r#"{"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c": {"d": []}}"#;
        assert_eq!(
            json(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert!(json("{} x").is_err(), "trailing characters");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_with_their_path() {
        let e = json(r#"{"metadata": {"name": "a", "name": "b"}}"#).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "duplicate key \"name\" at metadata.name: already set in this mapping"
            ),
            "{e}"
        );
        let e =
            json(r#"{"spec": {"ports": [{"port": 80}, {"port": 80, "port": 81}]}}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("duplicate key \"port\" at spec.ports[1].port"),
            "{e}"
        );
        let e = json(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("duplicate key \"a\" at a:"),
            "{e}"
        );
        // The same key in two mappings is no duplicate.
        json(r#"{"a": {"x": 1}, "b": {"x": 1}}"#).unwrap();
    }

    #[test]
    fn a_huge_duplicate_key_is_not_echoed() {
        let key = "k".repeat(900_000);
        let text = format!(r#"{{"data": {{"{key}": "1", "{key}": "2"}}}}"#);
        let e = json(&text).unwrap_err().to_string();
        assert!(e.len() < 1_000, "{}", e.len());
        assert!(e.contains("(900000 bytes)"), "{e}");
    }

    #[test]
    fn arrays_and_nesting_are_kept() {
        assert_eq!(
            json(r#"[{"a": [1, {"b": 2}]}]"#).unwrap(),
            json!([{"a": [1, {"b": 2}]}])
        );
    }

    fn yaml(text: &str) -> Result<Value, String> {
        value(serde_norway::Deserializer::from_str(text)).map_err(|e| e.to_string())
    }

    #[test]
    fn yaml_duplicates_and_non_finite_numbers_are_refused() {
        let e = yaml("spec:\n  ports:\n  - port: 80\n    port: 81\n").unwrap_err();
        assert!(
            e.contains("duplicate key \"port\" at spec.ports[0].port"),
            "{e}"
        );
        let e = yaml("metadata: {name: a}\nmetadata: {name: b}\n").unwrap_err();
        assert!(
            e.starts_with("duplicate key \"metadata\" at metadata"),
            "{e}"
        );
        for (number, shown) in [(".inf", "inf"), ("-.inf", "-inf"), (".nan", "NaN")] {
            let e = yaml(&format!("spec:\n  ports: [{{port: {number}}}]\n")).unwrap_err();
            assert!(
                e.contains(&format!(
                    "Invalid value: {shown} at spec.ports[0].port: a number must be finite"
                )),
                "{number}: {e}"
            );
        }
    }

    #[test]
    fn yaml_decodes_as_before_otherwise() {
        let text = "a: 1\nb: [x, 2.5, null, true]\n1: one\nc: {d: ~}\n";
        assert_eq!(
            yaml(text).unwrap(),
            json!({"a": 1, "b": ["x", 2.5, null, true], "1": "one", "c": {"d": null}})
        );
        assert_eq!(yaml("").unwrap(), Value::Null);
        // Anchors and aliases still expand.
        assert_eq!(
            yaml("a: &x {k: v}\nb: *x\n").unwrap(),
            json!({"a": {"k": "v"}, "b": {"k": "v"}})
        );
    }
}
