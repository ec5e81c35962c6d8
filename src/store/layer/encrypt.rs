#![deny(clippy::missing_trait_methods)]
//! The encryption layer: every write is sealed with XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`) under the current key, with a fresh random 192-bit nonce, and with the
//! envelope's header and the storage id (the hashed id when hash_ids is on) as associated data: a
//! blob copied to another id, or with a changed header, fails to open.
//!
//! Reads open a sealed envelope with the key whose id it names (the current one or an old one, so
//! a rotated key keeps working until the next write re-seals under the current key), and pass
//! anything unsealed up as it is (plaintext written before encryption was turned on; the
//! compression layer above decodes a compressed envelope).

use std::borrow::Cow;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};

use super::envelope::{self, AtRestError, Envelope, NONCE_LEN};
use super::keys::{hex, Secret};
use super::transform::{Transcode, Transformed};
use crate::id::SessionId;

/// The current key and the old ones still accepted for reading.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRing {
    pub current: Secret,
    pub old: Vec<Secret>,
}

pub type EncryptLayer = Transformed<Encrypt>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Encrypt {
    pub keys: KeyRing,
}

fn cipher(k: &Secret) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(k.bytes().into())
}

fn aad(header: &[u8], id: &SessionId) -> Vec<u8> {
    [header, id.as_str().as_bytes()].concat()
}

impl Transcode for Encrypt {
    fn encode<'a>(&self, id: &SessionId, data: &'a [u8]) -> Result<Cow<'a, [u8]>, AtRestError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| AtRestError::Encode("encrypted: the system has no randomness source"))?;
        let k = &self.keys.current;
        let mut out = envelope::sealed_header(k.id(), &nonce, data.len() + envelope::TAG_LEN);
        let sealed = cipher(k)
            .encrypt(&XNonce::from(nonce), Payload { msg: data, aad: &aad(&out, id) })
            .map_err(|_| AtRestError::Encode("encrypted"))?;
        out.extend_from_slice(&sealed);
        Ok(Cow::Owned(out))
    }

    fn decode(&self, id: &SessionId, stored: Vec<u8>) -> Result<Vec<u8>, AtRestError> {
        let Some(Envelope::Sealed { key_id, nonce, header, body }) = envelope::parse(&stored)? else {
            return Ok(stored);
        };
        let key_id_hex = hex(&key_id);
        let k = std::iter::once(&self.keys.current)
            .chain(&self.keys.old)
            .find(|k| k.id() == key_id)
            .ok_or(AtRestError::UnknownKey { key_id: key_id_hex.clone() })?;
        cipher(k)
            .decrypt(&XNonce::from(*nonce), Payload { msg: body, aad: &aad(header, id) })
            .map_err(|_| AtRestError::Forged { key_id: key_id_hex })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::id;

    fn ring(cur: u8, old: &[u8]) -> Encrypt {
        Encrypt { keys: KeyRing { current: Secret::new([cur; 32]), old: old.iter().map(|&b| Secret::new([b; 32])).collect() } }
    }

    #[test]
    fn seals_with_a_fresh_nonce_and_opens_under_the_same_id_only() {
        let e = ring(1, &[]);
        let (a, b) = (id("enc-a"), id("enc-b"));
        let data = b"user|s:5:\"alice\";secret|s:6:\"MARKER\";";
        let s1 = e.encode(&a, data).unwrap().into_owned();
        let s2 = e.encode(&a, data).unwrap().into_owned();
        assert_ne!(s1, s2, "a fresh nonce per write");
        assert!(!s1.windows(6).any(|w| w == b"MARKER") && !s1.windows(5).any(|w| w == b"alice"));
        assert_eq!(e.decode(&a, s1.clone()).unwrap(), data);
        assert!(matches!(e.decode(&b, s1.clone()), Err(AtRestError::Forged { .. })), "copied to another id");
        // Every single flipped bit, and every truncation, is refused.
        for i in 0..s1.len() {
            let mut f = s1.clone();
            f[i] ^= 0x10;
            assert!(e.decode(&a, f).is_err(), "bit flip at {i}");
        }
        for n in 0..s1.len() {
            let r = e.decode(&a, s1[..n].to_vec());
            assert!(n < 4 || r.is_err(), "truncated to {n}");
        }
        // Unsealed data is plaintext from before the switch: passed up as it is.
        assert_eq!(e.decode(&a, b"user|i:1;".to_vec()).unwrap(), b"user|i:1;");
    }

    #[test]
    fn rotation_reads_old_keys_and_writes_the_current_one() {
        let old = ring(1, &[]);
        let sid = id("enc-rot");
        let under_old = old.encode(&sid, b"x|i:1;").unwrap().into_owned();
        let rotated = ring(2, &[1]);
        assert_eq!(rotated.decode(&sid, under_old.clone()).unwrap(), b"x|i:1;");
        let rewritten = rotated.encode(&sid, b"x|i:1;").unwrap().into_owned();
        assert_eq!(&rewritten[6..10], &Secret::new([2; 32]).id());
        let e = ring(3, &[]).decode(&sid, under_old).unwrap_err();
        assert_eq!(e, AtRestError::UnknownKey { key_id: Secret::new([1; 32]).id_hex() });
        assert!(matches!(old.decode(&sid, rewritten), Err(AtRestError::UnknownKey { .. })));
    }
}
