//! The at-rest layers in the skin: the stack a request opens (keys read from the directives), and
//! the rows `php --ri session_proxy` shows (which layers are on and the key ids, never a key).

use super::ffi;
use crate::dsn::Engine;
use crate::settings::{RawSettings, Settings};
use crate::store::layer::{Layers, Stack};

/// The engine with the layers the settings ask for; Err: the warning (a key that cannot be had).
pub fn stack(engine: Engine, s: &Settings) -> Result<Stack, String> {
    Layers::at_rest(&s.at_rest).map(|l| Stack::with(engine, l)).map_err(|e| super::words::key_refused(&e))
}

/// `php --ri` rows for the at-rest layers, from the INI as it is now.
pub fn info_rows() -> Vec<(&'static str, String)> {
    let s = Settings::from_raw(&RawSettings::read(ffi::ini_string, 0));
    let l = match Layers::at_rest(&s.at_rest) {
        Ok(l) => l,
        Err(e) => return vec![("Sessions at rest", format!("refused: {e}"))],
    };
    let encryption = match &l.encryption {
        None => "off".to_string(),
        Some(r) => {
            let old: Vec<String> = r.old.iter().map(|k| k.id_hex()).collect();
            let old = if old.is_empty() { String::new() } else { format!("; old key ids {}", old.join(", ")) };
            format!("XChaCha20-Poly1305, key id {}{old}", r.current.id_hex())
        }
    };
    let hashing = match &l.hash_ids {
        None => "off".to_string(),
        Some(k) => {
            let from = if s.at_rest.hash_key.is_empty() { "derived from the encryption key" } else { "session_proxy.hash_key" };
            format!("HMAC-SHA256, key id {} ({from})", k.id_hex())
        }
    };
    let compression = match l.compression.codec {
        None => "off".to_string(),
        Some(c) => format!("{}, sessions of {} bytes or more", c.name(), l.compression.threshold),
    };
    vec![("Encryption at rest", encryption), ("Hashed ids", hashing), ("Compression", compression)]
}
