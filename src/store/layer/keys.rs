//! The keys of the at-rest layers: where a key comes from (`session_proxy.encryption_key`,
//! `session_proxy.encryption_keys_old`, `session_proxy.hash_key`), how it is read, its public id,
//! and the hash_ids key derived from the encryption key.
//!
//! A key is given as a file path or as `env:NAME` (never the key itself in php.ini). Its content is
//! 32 bytes, raw, or as 64 hex digits (surrounding whitespace, such as a final newline, ignored).

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const KEY_LEN: usize = 32;

/// A 32-byte key. Its Debug shows the key id only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret([u8; KEY_LEN]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(id {})", self.id_hex())
    }
}

impl Secret {
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Secret(bytes)
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// The key's public id: the first 4 bytes of HMAC(key, "session_proxy key id"). Stored in each
    /// sealed envelope and shown by `php --ri`; reveals nothing of the key.
    pub fn id(&self) -> [u8; 4] {
        let m = self.mac(b"session_proxy key id");
        [m[0], m[1], m[2], m[3]]
    }

    pub fn id_hex(&self) -> String {
        hex(&self.id())
    }

    /// The hash_ids key derived from an encryption key (when `session_proxy.hash_key` is empty):
    /// HKDF-SHA256, no salt, info "session_proxy hash_ids v1".
    pub fn derive_hash_key(&self) -> Secret {
        let mut okm = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(None, &self.0).expand(b"session_proxy hash_ids v1", &mut okm).expect("32 bytes is a valid HKDF length");
        Secret(okm)
    }
}

pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

pub use crate::settings::KeySource as Source;

/// Why a key could not be had. `directive` is the one that named it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{directive} is empty; {needed_by} needs a key")]
    Missing { directive: &'static str, needed_by: &'static str },
    #[error("{directive}: cannot read key file {path}: {why}")]
    Unreadable { directive: &'static str, path: String, why: String },
    #[error("{directive}: environment variable {name} is not set")]
    NoEnv { directive: &'static str, name: String },
    #[error("{directive}: the key from {from} is {len} bytes; expected 32 raw bytes or 64 hex digits")]
    WrongSize { directive: &'static str, from: String, len: usize },
    #[error("{directive}: \"{}\" is neither an absolute file path nor env:NAME", value.escape_debug())]
    BadSource { directive: &'static str, value: String },
}

/// Parses one key source: an absolute path, or `env:NAME` with NAME of [A-Za-z0-9_].
pub fn source(directive: &'static str, v: &str) -> Result<Source, KeyError> {
    crate::settings::key_source(v).ok_or_else(|| KeyError::BadSource { directive, value: v.trim().to_string() })
}

/// A list of key sources, separated by commas (`session_proxy.encryption_keys_old`).
pub fn sources(directive: &'static str, v: &str) -> Result<Vec<Source>, KeyError> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| source(directive, s)).collect()
}

/// Reads the key a source names.
pub fn load(directive: &'static str, src: &Source) -> Result<Secret, KeyError> {
    let (bytes, from) = match src {
        Source::File(p) => {
            let b = std::fs::read(p).map_err(|e| KeyError::Unreadable { directive, path: p.display().to_string(), why: e.to_string() })?;
            (b, p.display().to_string())
        }
        Source::Env(name) => {
            let v = std::env::var_os(name).ok_or_else(|| KeyError::NoEnv { directive, name: name.clone() })?;
            (std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec(), format!("env:{name}"))
        }
    };
    decode(&bytes).ok_or(KeyError::WrongSize { directive, from, len: bytes.len() })
}

/// 32 raw bytes, or 64 hex digits with optional surrounding whitespace.
fn decode(b: &[u8]) -> Option<Secret> {
    if let Ok(raw) = <[u8; KEY_LEN]>::try_from(b) {
        return Some(Secret(raw));
    }
    let t = b.trim_ascii();
    if t.len() != 2 * KEY_LEN {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, pair) in t.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(Secret(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_forms() {
        assert_eq!(source("d", "env:SP_KEY"), Ok(Source::Env("SP_KEY".into())));
        assert_eq!(source("d", " /etc/k "), Ok(Source::File("/etc/k".into())));
        for bad in ["", "relative/k", "env:", "env:A-B", "0123456789abcdef0123456789abcdef"] {
            assert!(matches!(source("d", bad), Err(KeyError::BadSource { .. })), "{bad}");
        }
        assert_eq!(sources("d", "env:A, /k ,").unwrap(), [Source::Env("A".into()), Source::File("/k".into())]);
        let hex64 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
        assert_eq!(decode(hex64.as_bytes()).unwrap().bytes()[..3], [0, 0x11, 0x22]);
        assert_eq!(decode(&[5u8; 32]).unwrap().bytes(), &[5u8; 32]);
        assert!(decode(&[5u8; 31]).is_none() && decode(&hex64.as_bytes()[..63]).is_none());
        assert!(decode(&b"zz".repeat(32)).is_none());
    }

    #[test]
    fn loading_names_the_directive_and_never_the_key() {
        let dir = crate::store::tests::TempDir::new("keys");
        let p = dir.path().join("k");
        std::fs::write(&p, b"short").unwrap();
        let e = load("session_proxy.encryption_key", &Source::File(p.clone())).unwrap_err();
        assert!(matches!(e, KeyError::WrongSize { len: 5, .. }), "{e}");
        assert!(e.to_string().starts_with("session_proxy.encryption_key:") && !e.to_string().contains("short"), "{e}");
        let e = load("session_proxy.hash_key", &Source::File(dir.path().join("none"))).unwrap_err();
        assert!(matches!(e, KeyError::Unreadable { .. }) && e.to_string().contains("session_proxy.hash_key"), "{e}");
        let e = load("d", &Source::Env("SP_TEST_SURELY_UNSET_KEY".into())).unwrap_err();
        assert!(matches!(e, KeyError::NoEnv { .. }), "{e}");
        std::fs::write(&p, [1u8; 32]).unwrap();
        let k = load("d", &Source::File(p)).unwrap();
        assert_eq!(format!("{k:?}"), format!("Secret(id {})", k.id_hex()));
        assert_eq!(k.id_hex().len(), 8);
        assert_ne!(k.derive_hash_key(), k);
        assert_ne!(k.derive_hash_key().id(), Secret::new([2u8; 32]).derive_hash_key().id());
    }
}
