//! Codecs turn typed values into bytes and back.
//!
//! The default is [`Bincode`], pinned to bincode **1.3**: the version its authors
//! declared complete. bincode 2.x is unmaintained and 3.0.0 is a `compile_error!`
//! tombstone (RUSTSEC-2025-0141). Anything else can be plugged in through [`Codec`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BoxError;

/// Encodes and decodes serde types. Decoding untrusted bytes must return an error, never
/// panic, and must not allocate without bound.
pub trait Codec: Send + Sync + std::fmt::Debug {
    /// Encodes `value`.
    ///
    /// # Errors
    /// The codec's error if the value cannot be represented.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError>;

    /// Decodes `bytes` as a `T`.
    ///
    /// # Errors
    /// The codec's error if the bytes are not a valid `T`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError>;
}

/// bincode 1.3 with its default (fixed-int, little-endian) encoding, trailing bytes
/// rejected, and allocations limited to the input's length so hostile bytes cannot make
/// it reserve gigabytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

impl Codec for Bincode {
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        use bincode::Options;
        options().serialize(value).map_err(|e| -> BoxError { e })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        use bincode::Options;
        let limit = u64::try_from(bytes.len())
            .unwrap_or(u64::MAX)
            .saturating_add(64);
        options()
            .with_limit(limit)
            .deserialize(bytes)
            .map_err(|e| -> BoxError { e })
    }
}

fn options() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bincode_round_trips() {
        let v = (String::from("grüße"), vec![1u32, 2, 3], Some(7u8));
        let bytes = Bincode.encode(&v).unwrap();
        let back: (String, Vec<u32>, Option<u8>) = Bincode.decode(&bytes).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn bincode_rejects_garbage_without_panicking() {
        // A length prefix claiming 2^63 elements must fail, not allocate.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(Bincode.decode::<Vec<u64>>(&bytes).is_err());
        assert!(
            Bincode
                .decode::<String>(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff])
                .is_err()
        );
        assert!(
            Bincode.decode::<u32>(&[1, 2, 3, 4, 5]).is_err(),
            "trailing bytes"
        );
    }
}
