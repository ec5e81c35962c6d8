//! The one at-rest envelope: what the compression and encryption layers store instead of the
//! session's bytes, and the total parser that reads it back.
//!
//! ```text
//! magic "\xffSP|" (4) | version 1 (1) | kind (1) | kind's header | body
//!   kind 0 raw      body = the data as given (data that itself starts with the magic)
//!   kind 1 zstd     u32 LE length of the data | zstd frame
//!   kind 2 lz4      u32 LE length of the data | lz4 block
//!   kind 3 sealed   key id (4) | XChaCha20-Poly1305 nonce (24) | ciphertext and tag (>= 16)
//! ```
//!
//! The magic starts no session PHP writes: `php` starts with a key and `|`, and after `\xffSP|` a
//! serialized value would follow, never the byte 0x01; `php_serialize` starts with `a:`;
//! `php_binary` with a key length of at most 127; igbinary with `\0\0\0\x02`; msgpack with a map or
//! an array (0x80-0x9f, 0xdc-0xdf). So data without the magic is plaintext written before a layer
//! was turned on, and read as it is.

/// The first bytes of every envelope.
pub const MAGIC: &[u8; 4] = b"\xffSP|";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// magic, version, kind.
pub const PREFIX_LEN: usize = 6;
pub const KEY_ID_LEN: usize = 4;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// The header of a sealed envelope: prefix, key id, nonce.
pub const SEALED_HEADER_LEN: usize = PREFIX_LEN + KEY_ID_LEN + NONCE_LEN;
/// The largest data a compressed envelope may claim to hold (so a corrupt length cannot make a read
/// allocate without bound). Sessions larger than this are stored uncompressed.
pub const MAX_DATA_LEN: usize = crate::settings::MAX_DATA_LEN;

const KIND_RAW: u8 = 0;
const KIND_ZSTD: u8 = 1;
const KIND_LZ4: u8 = 2;
const KIND_SEALED: u8 = 3;

pub use crate::settings::Codec;

/// A parsed envelope, borrowing from the stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// Data stored as it is.
    Raw(&'a [u8]),
    /// Compressed data, `len` bytes once decompressed.
    Compressed { codec: Codec, len: usize, body: &'a [u8] },
    /// Encrypted data: `header` (prefix, key id, nonce) is authenticated with the ciphertext.
    Sealed { key_id: [u8; KEY_ID_LEN], nonce: &'a [u8; NONCE_LEN], header: &'a [u8], body: &'a [u8] },
}

/// Why stored bytes that start with the magic are no envelope this build reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the stored session's envelope header is damaged")]
    Magic,
    #[error("the stored session is truncated ({have} bytes, its header needs {need})")]
    Truncated { need: usize, have: usize },
    #[error("the stored session is in envelope format version {0}, which this build does not read (it reads version {VERSION})")]
    Version(u8),
    #[error("the stored session has an envelope of unknown kind {0}")]
    Kind(u8),
    #[error("the stored session claims {0} bytes once decompressed (at most {MAX_DATA_LEN})")]
    TooLarge(u64),
}

/// Reads stored bytes: None when they carry no envelope (plaintext), else the envelope or why it is
/// unreadable. Total: any input gives one of the three, without panicking.
pub fn parse(b: &[u8]) -> Result<Option<Envelope<'_>>, EnvelopeError> {
    if !b.starts_with(MAGIC) {
        // An envelope with one byte of its magic damaged: a version and a kind of ours after three
        // of the four magic bytes. No PHP serialization starts so (a php-handler key of 3 bytes and
        // `|` is followed by a serialized value, never a byte below 0x04).
        let near = b.len() >= PREFIX_LEN && b[4] == VERSION && b[5] <= KIND_SEALED && b[..4].iter().zip(MAGIC).filter(|(x, y)| x == y).count() == 3;
        return if near { Err(EnvelopeError::Magic) } else { Ok(None) };
    }
    let need = |n: usize| if b.len() < n { Err(EnvelopeError::Truncated { need: n, have: b.len() }) } else { Ok(()) };
    need(PREFIX_LEN)?;
    if b[4] != VERSION {
        return Err(EnvelopeError::Version(b[4]));
    }
    let rest = &b[PREFIX_LEN..];
    match b[5] {
        KIND_RAW => Ok(Some(Envelope::Raw(rest))),
        k @ (KIND_ZSTD | KIND_LZ4) => {
            need(PREFIX_LEN + 4)?;
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if len as u64 > MAX_DATA_LEN as u64 {
                return Err(EnvelopeError::TooLarge(len.into()));
            }
            let codec = if k == KIND_ZSTD { Codec::Zstd } else { Codec::Lz4 };
            Ok(Some(Envelope::Compressed { codec, len: len as usize, body: &rest[4..] }))
        }
        KIND_SEALED => {
            need(SEALED_HEADER_LEN + TAG_LEN)?;
            let (header, body) = b.split_at(SEALED_HEADER_LEN);
            let key_id = rest[..KEY_ID_LEN].try_into().expect("length checked");
            let nonce = rest[KEY_ID_LEN..KEY_ID_LEN + NONCE_LEN].try_into().expect("length checked");
            Ok(Some(Envelope::Sealed { key_id, nonce, header, body }))
        }
        k => Err(EnvelopeError::Kind(k)),
    }
}

fn prefix(kind: u8, extra: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(PREFIX_LEN + extra);
    v.extend_from_slice(MAGIC);
    v.push(VERSION);
    v.push(kind);
    v
}

/// An envelope holding `data` as it is.
pub fn raw(data: &[u8]) -> Vec<u8> {
    let mut v = prefix(KIND_RAW, data.len());
    v.extend_from_slice(data);
    v
}

/// The header of a compressed envelope of `len` bytes of data; the compressed body follows it.
pub fn compressed_header(codec: Codec, len: usize, body_capacity: usize) -> Vec<u8> {
    let kind = match codec {
        Codec::Zstd => KIND_ZSTD,
        Codec::Lz4 => KIND_LZ4,
    };
    let mut v = prefix(kind, 4 + body_capacity);
    v.extend_from_slice(&u32::try_from(len).expect("at most MAX_DATA_LEN").to_le_bytes());
    v
}

/// The header of a sealed envelope (also its associated data); the ciphertext follows it.
pub fn sealed_header(key_id: [u8; KEY_ID_LEN], nonce: &[u8; NONCE_LEN], body_capacity: usize) -> Vec<u8> {
    let mut v = prefix(KIND_SEALED, KEY_ID_LEN + NONCE_LEN + body_capacity);
    v.extend_from_slice(&key_id);
    v.extend_from_slice(nonce);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_of_every_php_serializer_has_no_envelope() {
        let samples: [&[u8]; 7] = [
            b"",
            b"user|s:5:\"alice\";",
            b"a:1:{s:4:\"user\";s:5:\"alice\";}",
            b"\x04users:5:\"alice\";",
            b"\x00\x00\x00\x02\x14\x01",
            b"\x81\xa4user\xa5alice",
            // A php-handler key that starts like the magic: its value cannot start with 0x01.
            b"\xffSP|s:1:\"x\";",
        ];
        for s in samples {
            assert!(matches!(parse(s), Ok(None) | Err(EnvelopeError::Version(_))), "{s:?}");
        }
        for s in &samples[..6] {
            assert_eq!(parse(s), Ok(None), "{s:?}");
        }
    }

    #[test]
    fn each_kind_round_trips_through_its_builder() {
        let r = raw(b"\xffSP|odd");
        assert_eq!(parse(&r), Ok(Some(Envelope::Raw(b"\xffSP|odd"))));
        let mut c = compressed_header(Codec::Lz4, 1000, 3);
        c.extend_from_slice(b"abc");
        assert_eq!(parse(&c), Ok(Some(Envelope::Compressed { codec: Codec::Lz4, len: 1000, body: b"abc" })));
        let nonce = [7u8; NONCE_LEN];
        let mut s = sealed_header([1, 2, 3, 4], &nonce, TAG_LEN);
        let header = s.clone();
        s.extend_from_slice(&[9u8; TAG_LEN]);
        assert_eq!(parse(&s), Ok(Some(Envelope::Sealed { key_id: [1, 2, 3, 4], nonce: &nonce, header: &header, body: &[9u8; TAG_LEN] })));
    }

    #[test]
    fn damage_is_a_typed_error() {
        let mut s = sealed_header([1, 2, 3, 4], &[0; NONCE_LEN], TAG_LEN);
        s.extend_from_slice(&[0; TAG_LEN]);
        for cut in 4..s.len() {
            assert!(matches!(parse(&s[..cut]), Err(EnvelopeError::Truncated { .. })), "{cut}");
        }
        assert_eq!(parse(b"\xffSP|\x02\x00"), Err(EnvelopeError::Version(2)));
        for i in 0..32 {
            let mut d = s.clone();
            d[i / 8] ^= 1 << (i % 8);
            assert_eq!(parse(&d), Err(EnvelopeError::Magic), "bit {i} of the magic");
        }
        assert_eq!(parse(b"xSP|s:1:\"a\";"), Ok(None));
        assert_eq!(parse(b"\xffSP|\x01\x09"), Err(EnvelopeError::Kind(9)));
        assert_eq!(parse(b"\xffSP|\x01\x01\xff\xff\xff\xff"), Err(EnvelopeError::TooLarge(u32::MAX.into())));
        assert_eq!(parse(b"\xffSP|\x01\x01\x00\x00"), Err(EnvelopeError::Truncated { need: 10, have: 8 }));
    }
}

/// Why the at-rest layers could not turn stored bytes back into the session (or a session into
/// stored bytes). Reported as `StoreError::Unreadable` with these words as the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtRestError {
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
    #[error("the stored session's {codec} data is damaged: {why}")]
    Decompress { codec: &'static str, why: String },
    #[error("the stored session is encrypted (key id {key_id}) and session_proxy.encryption_key is not set")]
    Encrypted { key_id: String },
    #[error("the stored session was encrypted with key id {key_id}, which is neither session_proxy.encryption_key nor one of session_proxy.encryption_keys_old")]
    UnknownKey { key_id: String },
    #[error("the stored session fails authentication with key id {key_id}: it was altered, truncated or copied from another session id")]
    Forged { key_id: String },
    #[error("the session could not be {0}")]
    Encode(&'static str),
}
