//! A tower-sessions [`Record`] in and out of a store's bytes.
//!
//! The stored value is JSON, `{"tower_sessions":1,"data":{...}}`: the session's data is
//! a map of `serde_json::Value`s, which only a self-describing format carries (bincode
//! cannot decode a `Value`). The id is the key and the expiry is the entry's own, so
//! neither is stored twice. The version field tells a record of this adapter from
//! foreign bytes under the same key; anything else is a decode error naming the key.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use store_api::{Entry, Expiry, Key, Timestamp};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::Error;

/// The stored form's version.
const FORMAT: u32 = 1;

#[derive(Serialize)]
struct Stored<'a> {
    tower_sessions: u32,
    data: &'a HashMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Loaded {
    tower_sessions: u32,
    data: HashMap<String, Value>,
}

/// The bytes stored for `record`.
pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&Stored {
        tower_sessions: FORMAT,
        data: &record.data,
    })
    .map_err(|e| Error::Encode(format!("session {}: {e}", record.id)))
}

/// The record of session `id` stored under `key` as `entry`.
pub(crate) fn decode(id: Id, key: &Key, entry: &Entry) -> Result<Record, Error> {
    let loaded: Loaded = serde_json::from_slice(&entry.value).map_err(|e| {
        Error::Decode(format!(
            "the value under key {key} is not a tower-sessions record ({e}); it was \
             written by something else or is damaged"
        ))
    })?;
    if loaded.tower_sessions != FORMAT {
        return Err(Error::Decode(format!(
            "the value under key {key} is a tower-sessions record of format {}, this \
             adapter reads format {FORMAT}",
            loaded.tower_sessions
        )));
    }
    Ok(Record {
        id,
        data: loaded.data,
        expiry_date: expiry_date(entry.expires_at),
    })
}

/// The store's expiry for a record that expires at `at` (millisecond resolution; a time
/// before the epoch is the epoch, which is already past).
pub(crate) fn expiry(at: OffsetDateTime) -> Expiry {
    let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
    Expiry::At(Timestamp::from_millis(
        u64::try_from(ms.max(0)).unwrap_or(u64::MAX),
    ))
}

/// The record's expiry date for an entry expiring at `at`; an entry that never expires
/// (written by another client of the store) gets the latest date `time` can represent.
fn expiry_date(at: Option<Timestamp>) -> OffsetDateTime {
    let Some(at) = at else {
        return OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT);
    };
    let nanos = i128::from(at.as_millis()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::new_utc(
        time::Date::MAX,
        time::Time::MIDNIGHT,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use store_api::Version;

    fn entry(value: Vec<u8>, expires_at: Option<Timestamp>) -> Entry {
        Entry {
            value,
            expires_at,
            version: Version::new(1).unwrap(),
        }
    }

    #[test]
    fn every_json_value_kind_round_trips_nested() {
        let mut data = HashMap::new();
        data.insert("null".to_owned(), Value::Null);
        data.insert("bool".to_owned(), json!(true));
        data.insert("int".to_owned(), json!(-42));
        data.insert("big".to_owned(), json!(u64::MAX));
        data.insert("float".to_owned(), json!(1.5e300));
        data.insert("string".to_owned(), json!("grüße \"quoted\" \u{0}"));
        data.insert(
            "array".to_owned(),
            json!([1, "two", null, [3.5, {"four": false}]]),
        );
        data.insert(
            "object".to_owned(),
            json!({"nested": {"deeper": [{"x": 1}, {"y": [true, null]}], "empty": {}}, "e": []}),
        );
        data.insert(String::new(), json!("an empty key"));
        let at = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        let record = Record {
            id: Id(7),
            data,
            expiry_date: at,
        };
        let bytes = encode(&record).unwrap();
        let Expiry::At(t) = expiry(at) else {
            panic!("an absolute expiry")
        };
        let key = Key::new("k").unwrap();
        let back = decode(Id(7), &key, &entry(bytes, Some(t))).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn foreign_bytes_are_an_error_naming_the_key() {
        let key = Key::new("tower-sessions:abc").unwrap();
        for bytes in [
            b"\x00\x01binary".to_vec(),
            b"{}".to_vec(),
            br#"{"data":{}}"#.to_vec(),
            br#"{"tower_sessions":1,"data":[]}"#.to_vec(),
            br#"{"tower_sessions":1,"data":{},"extra":0}"#.to_vec(),
            br#"{"tower_sessions":1,"data":{"a":1"#.to_vec(),
        ] {
            let e = decode(Id(1), &key, &entry(bytes.clone(), None)).unwrap_err();
            assert!(
                matches!(&e, Error::Decode(m) if m.contains("tower-sessions:abc")),
                "{bytes:?}: {e}"
            );
        }
        let e = decode(
            Id(1),
            &key,
            &entry(br#"{"tower_sessions":2,"data":{}}"#.to_vec(), None),
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Decode(m) if m.contains("format 2")),
            "{e}"
        );
    }

    #[test]
    fn expiry_keeps_milliseconds_and_clamps_the_past() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(
            expiry(at),
            Expiry::At(Timestamp::from_millis(1_700_000_000_123))
        );
        assert_eq!(
            expiry_date(Some(Timestamp::from_millis(1_700_000_000_123))),
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).unwrap()
        );
        let before_epoch = OffsetDateTime::from_unix_timestamp(-5).unwrap();
        assert_eq!(expiry(before_epoch), Expiry::At(Timestamp::ZERO));
        assert_eq!(expiry_date(None).date(), time::Date::MAX);
        assert_eq!(
            expiry_date(Some(Timestamp::from_millis(u64::MAX))).date(),
            time::Date::MAX
        );
    }
}
