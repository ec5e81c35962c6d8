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

/// A 32-byte key, with its public id (computed once: every sealed write and read names it). Its
/// Debug shows the key id only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret {
    key: [u8; KEY_LEN],
    id: [u8; 4],
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(id {})", self.id_hex())
    }
}

impl Secret {
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        let m = mac(&key, b"session_proxy key id");
        Secret { key, id: [m[0], m[1], m[2], m[3]] }
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// HMAC-SHA256 of `data` under this key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        mac(&self.key, data)
    }

    /// The key's public id: the first 4 bytes of HMAC(key, "session_proxy key id"). Stored in each
    /// sealed envelope and shown by `php --ri`; reveals nothing of the key.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    pub fn id_hex(&self) -> String {
        hex(&self.id())
    }

    /// The hash_ids key derived from an encryption key (when `session_proxy.hash_key` is empty):
    /// HKDF-SHA256, no salt, info "session_proxy hash_ids v1".
    pub fn derive_hash_key(&self) -> Secret {
        let mut okm = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(None, &self.key).expand(b"session_proxy hash_ids v1", &mut okm).expect("32 bytes is a valid HKDF length");
        Secret::new(okm)
    }
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
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

/// What identifies one version of a key file: a file replaced or rewritten (a rotation) differs in
/// one of these.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp { dev: m.dev(), ino: m.ino(), size: m.size(), mtime_ns: ns(m.mtime(), m.mtime_nsec()), ctime_ns: ns(m.ctime(), m.ctime_nsec()) }
    }
}

/// Key files read by this process, by path: a request costs one stat of each file (which sees a
/// replaced or rewritten key file at once) instead of open, read and close. A file is read again
/// at least every FILE_KEY_FRESH all the same: file times are coarse (a rewrite within the same
/// clock tick, with the same size, keeps its stamp).
static FILE_KEYS: parking_lot::Mutex<Vec<(std::path::PathBuf, Stamp, std::time::Instant, Secret)>> = parking_lot::Mutex::new(Vec::new());
const FILE_KEY_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

fn read_file_key(directive: &'static str, p: &std::path::Path) -> Result<Secret, KeyError> {
    let unreadable = |e: std::io::Error| KeyError::Unreadable { directive, path: p.display().to_string(), why: e.to_string() };
    let stamp = Stamp::of(&std::fs::metadata(p).map_err(unreadable)?);
    if let Some((_, _, _, k)) = FILE_KEYS.lock().iter().find(|(q, s, t, _)| q == p && *s == stamp && t.elapsed() < FILE_KEY_FRESH) {
        return Ok(k.clone());
    }
    let mut f = std::fs::File::open(p).map_err(unreadable)?;
    // The stamp of what is read (the path may have been replaced since the stat above).
    let stamp = Stamp::of(&f.metadata().map_err(unreadable)?);
    let mut b = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut b).map_err(unreadable)?;
    let k = decode(&b).ok_or(KeyError::WrongSize { directive, from: p.display().to_string(), len: b.len() })?;
    let mut cache = FILE_KEYS.lock();
    cache.retain(|(q, ..)| q != p);
    cache.push((p.to_path_buf(), stamp, std::time::Instant::now(), k.clone()));
    Ok(k)
}

/// Reads the key a source names.
pub fn load(directive: &'static str, src: &Source) -> Result<Secret, KeyError> {
    match src {
        Source::File(p) => read_file_key(directive, p),
        Source::Env(name) => {
            let v = std::env::var_os(name).ok_or_else(|| KeyError::NoEnv { directive, name: name.clone() })?;
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str());
            decode(bytes).ok_or(KeyError::WrongSize { directive, from: format!("env:{name}"), len: bytes.len() })
        }
    }
}

/// 32 raw bytes, or 64 hex digits with optional surrounding whitespace.
fn decode(b: &[u8]) -> Option<Secret> {
    if let Ok(raw) = <[u8; KEY_LEN]>::try_from(b) {
        return Some(Secret::new(raw));
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
    Some(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file is read once and then only stat'ed; a rewritten, replaced or removed file is
    /// seen at the next request (a rotation needs no restart).
    #[test]
    fn key_files_are_cached_until_they_change() {
        let dir = crate::store::tests::TempDir::new("keys-cache");
        let p = dir.path().join("k");
        let src = Source::File(p.clone());
        std::fs::write(&p, [1u8; 32]).unwrap();
        assert_eq!(load("d", &src).unwrap(), Secret::new([1; 32]));
        // Rewritten in place (same inode, same size): seen, by its times or at most FILE_KEY_FRESH later.
        std::fs::write(&p, [2u8; 32]).unwrap();
        let t = std::time::Instant::now();
        while load("d", &src).unwrap() != Secret::new([2; 32]) {
            assert!(t.elapsed() < FILE_KEY_FRESH * 3, "a rewritten key file was not read again");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Replaced by a rename (another inode): seen at once.
        let q = dir.path().join("k.new");
        std::fs::write(&q, format!("{}\n", "33".repeat(32))).unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert_eq!(load("d", &src).unwrap(), Secret::new([0x33; 32]));
        // Removed: an error naming the file, not the cached key.
        std::fs::remove_file(&p).unwrap();
        assert!(matches!(load("d", &src), Err(KeyError::Unreadable { .. })));
    }

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
