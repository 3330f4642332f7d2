//! Target `codec`: the typed layer decoding arbitrary bytes gives an error, never a
//! panic, and whatever decodes re-encodes to the same value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use store_api::{Bincode, Codec, Error, Key, SessionStoreExt, Typed};
use store_memory::MemoryStore;

/// A session shaped like the ones web frameworks store.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Session {
    user: String,
    visits: u32,
    roles: Vec<String>,
    flash: Option<String>,
    data: BTreeMap<String, Vec<u8>>,
    last_seen: (u64, i16),
    active: bool,
    score: Option<f64>,
}

/// Decodes `bytes` as a `T`; if that works, encodes and decodes again and checks the
/// value is stable.
fn round_trip<T>(bytes: &[u8])
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = Bincode.decode::<T>(bytes) {
        let again = Bincode.encode(&v).expect("a decoded value encodes");
        let back: T = Bincode.decode(&again).expect("an encoded value decodes");
        // NaN != NaN: compare encodings instead of values.
        assert_eq!(Bincode.encode(&back).unwrap(), again, "unstable round trip");
    }
}

/// The target body.
pub fn codec(data: &[u8]) {
    round_trip::<Session>(data);
    round_trip::<Vec<String>>(data);
    round_trip::<BTreeMap<String, u64>>(data);
    round_trip::<Option<(char, Vec<u16>)>>(data);

    // Through a store: a value that does not decode is an error naming the key.
    let store = MemoryStore::new();
    let key = Key::new("session:fuzz").expect("valid key");
    store
        .set(&key, data)
        .expect("memory store accepts the value");
    match Typed::new(&store).get::<Session>(&key) {
        Ok(Some(_)) => {}
        Ok(None) => panic!("a stored value read back as absent"),
        Err(Error::Decode { key: k, .. }) => assert_eq!(k, key),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_corpus_holds_real_encodings() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/codec/");
        let bytes = std::fs::read(format!("{dir}session")).unwrap();
        let s: Session = Bincode.decode(&bytes).expect("the seed is a valid Session");
        assert_eq!((s.user.as_str(), s.visits, s.score), ("ada", 3, Some(0.5)));
        let v: Vec<String> = Bincode
            .decode(&std::fs::read(format!("{dir}vec_string")).unwrap())
            .expect("the seed is a valid Vec<String>");
        assert_eq!(v, ["grüße", "", ":"]);
    }
}
