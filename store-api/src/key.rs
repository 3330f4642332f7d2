//! Validated session keys.

use std::borrow::Borrow;
use std::fmt;

use crate::Error;

/// The longest key every engine must accept, in bytes (memcached's limit, which the Perl
/// session stores inherited in practice).
pub const MAX_KEY_LEN: usize = 250;

/// Which rule an invalid key broke. Carried by [`Error::InvalidKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRule {
    /// The key was empty.
    Empty,
    /// The key was longer than the maximum.
    TooLong {
        /// Length of the rejected key in bytes.
        len: usize,
        /// The maximum length in bytes.
        max: usize,
    },
    /// The key held a NUL or another control byte (0x00-0x1F or 0x7F).
    ControlByte {
        /// Byte offset of the first offending byte.
        index: usize,
    },
    /// The key was not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for KeyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRule::Empty => f.write_str("a key must not be empty"),
            KeyRule::TooLong { len, max } => {
                write!(f, "a key must be at most {max} bytes, this one is {len}")
            }
            KeyRule::ControlByte { index } => {
                write!(
                    f,
                    "a key must not contain NUL or control bytes (one at byte {index})"
                )
            }
            KeyRule::NotUtf8 => f.write_str("a key must be valid UTF-8"),
        }
    }
}

/// A validated session key.
///
/// A key is non-empty UTF-8 of at most [`MAX_KEY_LEN`] bytes with no NUL or control
/// bytes. `prefix:id` keys such as `session:5f0c...` are the normal case. Engines may
/// accept longer keys but never shorter ones, so a key valid here is valid everywhere.
///
/// ```
/// use store_api::{Key, KeyRule, Error};
/// let key = Key::new("session:0123abcd").unwrap();
/// assert_eq!(key.as_str(), "session:0123abcd");
/// let err = Key::new("bad\0key").unwrap_err();
/// assert!(matches!(err, Error::InvalidKey { rule: KeyRule::ControlByte { index: 3 }, .. }));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Box<str>);

impl Key {
    /// Validates `key` and wraps it.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] naming the rule the key broke.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        match check(key.as_bytes()) {
            Ok(()) => Ok(Key(key.into_boxed_str())),
            Err(rule) => Err(Error::invalid_key(key.as_bytes(), rule)),
        }
    }

    /// Validates raw bytes as a key (they must be UTF-8).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] naming the rule the key broke.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        check(bytes).map_err(|rule| Error::invalid_key(bytes, rule))?;
        let s =
            std::str::from_utf8(bytes).map_err(|_| Error::invalid_key(bytes, KeyRule::NotUtf8))?;
        Ok(Key(s.into()))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes.
    #[allow(clippy::len_without_is_empty)] // a key is never empty
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Checks the byte-level rules shared by every key.
fn check(bytes: &[u8]) -> Result<(), KeyRule> {
    if bytes.is_empty() {
        return Err(KeyRule::Empty);
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(KeyRule::TooLong {
            len: bytes.len(),
            max: MAX_KEY_LEN,
        });
    }
    if let Some(index) = bytes.iter().position(|&b| b < 0x20 || b == 0x7f) {
        return Err(KeyRule::ControlByte { index });
    }
    Ok(())
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Key {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Error> {
        Key::new(value)
    }
}

impl TryFrom<String> for Key {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Key::new(value)
    }
}

impl std::str::FromStr for Key {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Key::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(k: &[u8]) -> KeyRule {
        match Key::from_bytes(k) {
            Err(Error::InvalidKey { rule, .. }) => rule,
            other => panic!("expected InvalidKey for {k:?}, got {other:?}"),
        }
    }

    #[test]
    fn key_rules_are_named() {
        assert_eq!(rule(b""), KeyRule::Empty);
        assert_eq!(rule(&[b'a'; 251]), KeyRule::TooLong { len: 251, max: 250 });
        assert_eq!(rule(b"ab\x01"), KeyRule::ControlByte { index: 2 });
        assert_eq!(rule(b"a\x7f"), KeyRule::ControlByte { index: 1 });
        assert_eq!(rule(b"\xff\xfe"), KeyRule::NotUtf8);
    }

    #[test]
    fn key_accepts_normal_and_boundary_keys() {
        assert!(Key::new("session:0123456789abcdef").is_ok());
        assert!(Key::new("a".repeat(250)).is_ok());
        assert!(Key::new("sitzung:grüße").is_ok());
        assert_eq!(Key::new("x").unwrap().len(), 1);
    }

    #[test]
    fn invalid_key_error_names_rule_in_message() {
        let err = Key::new("").unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }
}
