//! Session ids: the only bytes from a client that reach a storage key or a file name.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

/// PHP's own upper bound (`PS_MAX_SID_LENGTH`).
pub const MAX_ID_LEN: usize = 256;

/// A session whose id does not fit a store's name limit is stored under this tag and the id's SHA-256
/// in hex (71 bytes). The `.` is outside the id alphabet, so no id names the same item or file.
pub const HASHED_TAG: &str = "sha256.";

/// Why a client's session id was refused (the id itself is never quoted: it is a bearer secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("session id is empty")]
    Empty,
    #[error("session id is {len} bytes long (at most {MAX_ID_LEN})")]
    TooLong { len: usize },
    #[error("session id contains a character outside [a-zA-Z0-9,-] (byte 0x{byte:02x} at offset {pos})")]
    BadByte { byte: u8, pos: usize },
}

/// A session id that passed validation: 1..=256 characters of PHP's id alphabet `[a-zA-Z0-9,-]`.
/// Nothing else can be built, so no engine ever sees `../`, NUL, quotes or spaces.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(raw: &[u8]) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.len() > MAX_ID_LEN {
            return Err(IdError::TooLong { len: raw.len() });
        }
        if let Some(pos) = raw.iter().position(|&c| !(c.is_ascii_alphanumeric() || c == b',' || c == b'-')) {
            return Err(IdError::BadByte { byte: raw[pos], pos });
        }
        // Checked above: ASCII only.
        Ok(SessionId(String::from_utf8(raw.to_vec()).expect("ascii")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as it names the session in a store that leaves `room` bytes for it (a Memcached key's
    /// 250 bytes less the prefix, a file name's 255 less `sess_`): the id itself when it fits — the
    /// layout php-memcached and PHP's files handler use — else `sha256.<hex of SHA-256(id)>`, so ids
    /// of up to 256 characters work everywhere (no peer could store those anyway).
    pub fn name_within(&self, room: usize) -> Cow<'_, str> {
        if self.0.len() <= room {
            return Cow::Borrowed(&self.0);
        }
        let mut name = String::with_capacity(HASHED_TAG.len() + 64);
        name.push_str(HASHED_TAG);
        for b in Sha256::digest(self.0.as_bytes()) {
            name.push_str(&format!("{b:02x}"));
        }
        Cow::Owned(name)
    }

    /// The id of a record kept beside this session (`tag`, a '-', then 40 hex digits of SHA-256 of
    /// the id), stored like a session: an id of a shape PHP's generator does not make in practice (a
    /// fixed tag and a '-'). The optimistic writes' tombstone (`tomb`) and the migrate layer's mark of
    /// a session destroyed while the old store kept its copy (`gone`).
    pub fn marker(&self, tag: &str) -> SessionId {
        // By hand, as `name_within` does: the id module sits below the store's (no import circle).
        let mut name = String::with_capacity(tag.len() + 41);
        name.push_str(tag);
        name.push('-');
        for b in Sha256::digest(self.0.as_bytes()).iter().take(20) {
            name.push_str(&format!("{b:02x}"));
        }
        SessionId::parse(name.as_bytes()).expect("a marker's id is a valid session id")
    }

    /// A short, log-safe name for the session: the full id is a bearer secret and stays out of logs.
    pub fn short(&self) -> String {
        let head: String = self.0.chars().take(6).collect();
        if self.0.len() > 6 { format!("{head}…") } else { head }
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_php_alphabet() {
        for ok in ["a", "abcDEF019,-", &"x".repeat(256)] {
            assert_eq!(SessionId::parse(ok.as_bytes()).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn long_ids_are_named_by_their_hash() {
        let short = SessionId::parse(b"abc").unwrap();
        assert_eq!(short.name_within(3), "abc");
        // SHA-256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            short.name_within(2),
            "sha256.ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let a = SessionId::parse("a".repeat(256).as_bytes()).unwrap();
        let b = SessionId::parse(format!("{}b", "a".repeat(255)).as_bytes()).unwrap();
        assert_ne!(a.name_within(250), b.name_within(250));
        assert_eq!(a.name_within(250).len(), HASHED_TAG.len() + 64);
        assert_eq!(a.name_within(256), a.as_str());
    }

    #[test]
    fn rejects_hostile_ids() {
        let long = "a".repeat(257);
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (long.as_bytes(), "257 bytes"),
            (b"../etc/passwd", "0x2e"),
            (b"abc/def", "0x2f"),
            (b"abc\0def", "0x00"),
            (b"abc def", "0x20"),
            (b"abc'; DROP TABLE sessions;--", "0x27"),
            (b"\xff\xfe", "0xff"),
            (b"a.b", "0x2e"),
        ];
        for (raw, want) in cases {
            let err = SessionId::parse(raw).unwrap_err();
            assert!(err.to_string().contains(want), "{raw:?}: {err}");
        }
    }

    #[test]
    fn short_masks_the_id() {
        let id = SessionId::parse(b"abcdefghijkl").unwrap();
        assert_eq!(id.short(), "abcdef…");
        assert!(!format!("{id:?}").contains("ghijkl"));
    }
}
