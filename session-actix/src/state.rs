//! actix-session's state in and out of a store's bytes.
//!
//! The stored value is JSON, `{"actix_session":1,"state":{...}}`. actix-session 0.11's
//! state maps names to values it has already serialised as JSON text; the state is
//! stored as a JSON object of those strings, readable by anything that reads JSON. The
//! version field tells this adapter's state from foreign bytes under the same key.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use store_api::Key;

/// actix-session's session state: names to JSON text.
pub(crate) type State = HashMap<String, String>;

/// The stored form's version.
const FORMAT: u32 = 1;

#[derive(Serialize)]
struct Stored<'a> {
    actix_session: u32,
    state: &'a State,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Loaded {
    actix_session: u32,
    state: State,
}

/// The bytes stored for `state`.
pub(crate) fn encode(state: &State) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&Stored {
        actix_session: FORMAT,
        state,
    })?)
}

/// The state stored under `key` as `bytes`.
pub(crate) fn decode(key: &Key, bytes: &[u8]) -> anyhow::Result<State> {
    let loaded: Loaded = serde_json::from_slice(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the value under key {key} is not an actix-session state ({e}); it was written \
             by something else or is damaged"
        )
    })?;
    if loaded.actix_session != FORMAT {
        anyhow::bail!(
            "the value under key {key} is an actix-session state of format {}, this adapter \
             reads format {FORMAT}",
            loaded.actix_session
        );
    }
    Ok(loaded.state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_json_value_kind_round_trips_nested() {
        let serde_json::Value::Object(values) = json!({
            "null": null, "bool": false, "int": i64::MIN, "big": u64::MAX, "float": -0.25,
            "string": "ünïcode \" \\ \u{0}", "": "empty key",
            "array": [1, "two", null, [3.5, {"four": true}]],
            "object": {"nested": {"deeper": [{"x": 1}, {"y": [true, null]}], "empty": {}}},
        }) else {
            panic!("an object")
        };
        // As actix-session hands them over: each value serialised to JSON text.
        let state: State = values
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let key = Key::new("k").unwrap();
        let back = decode(&key, &encode(&state).unwrap()).unwrap();
        assert_eq!(back, state);
        for (k, v) in &values {
            let parsed: serde_json::Value = serde_json::from_str(&back[k]).unwrap();
            assert_eq!(&parsed, v);
        }
    }

    #[test]
    fn foreign_bytes_are_an_error_naming_the_key() {
        let key = Key::new("actix-session:abc").unwrap();
        for bytes in [
            &b"\xff\xfe"[..],
            b"{}",
            br#"{"state":{}}"#,
            br#"{"actix_session":1,"state":"x"}"#,
            br#"{"actix_session":1,"state":{"a":1}}"#,
            br#"{"actix_session":1,"state":{},"more":1}"#,
            br#"{"actix_session":2,"state":{}}"#,
        ] {
            let e = decode(&key, bytes).unwrap_err().to_string();
            assert!(e.contains("actix-session:abc"), "{bytes:?}: {e}");
        }
    }
}
