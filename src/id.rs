//! Session ids: the only bytes from a client that reach a storage key or a file name.

use std::fmt;

/// PHP's own upper bound (`PS_MAX_SID_LENGTH`).
pub const MAX_ID_LEN: usize = 256;

/// A session id that passed validation: 1..=256 characters of PHP's id alphabet `[a-zA-Z0-9,-]`.
/// Nothing else can be built, so no engine ever sees `../`, NUL, quotes or spaces.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("session id is empty".into());
        }
        if raw.len() > MAX_ID_LEN {
            return Err(format!("session id is {} bytes long (at most {MAX_ID_LEN})", raw.len()));
        }
        if let Some(pos) = raw.iter().position(|&c| !(c.is_ascii_alphanumeric() || c == b',' || c == b'-')) {
            return Err(format!(
                "session id contains a character outside [a-zA-Z0-9,-] (byte 0x{:02x} at offset {pos})",
                raw[pos]
            ));
        }
        // Checked above: ASCII only.
        Ok(SessionId(String::from_utf8(raw.to_vec()).expect("ascii")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
            assert!(err.contains(want), "{raw:?}: {err}");
        }
    }

    #[test]
    fn short_masks_the_id() {
        let id = SessionId::parse(b"abcdefghijkl").unwrap();
        assert_eq!(id.short(), "abcdef…");
        assert!(!format!("{id:?}").contains("ghijkl"));
    }
}
