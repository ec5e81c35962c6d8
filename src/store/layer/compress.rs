#![deny(clippy::missing_trait_methods)]
//! The compression layer: sessions of at least `threshold` bytes are stored compressed (zstd level 3
//! or lz4) in an envelope recording the codec and the data's length; smaller ones, and those that do
//! not shrink, stay as they are. Every read decodes whatever envelope it finds, so data written with
//! another codec, or before compression was on, reads fine and the setting can change at any time.
//!
//! It also stands in the stack with no codec in every request's stack (`Layers::envelopes`, even
//! with every at-rest directive off): it is the one reader of compressed envelopes, it refuses a sealed envelope that reached it (encryption was
//! turned off while encrypted sessions are stored) instead of handing it to PHP, and it wraps data
//! that itself starts with the envelope magic in a raw envelope, so such data never reads as one.
//! Anything else passes both ways as it is, borrowed: no copy on the default path.

use std::borrow::Cow;

use super::envelope::{self, AtRestError, Codec, Envelope, MAX_DATA_LEN};
use super::keys::hex;
use super::transform::{Transcode, Transformed};
use crate::id::SessionId;

/// zstd's default level: most of the ratio of the higher levels at a fraction of their cost.
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compress {
    /// None: store as given (the layer only reads).
    pub codec: Option<Codec>,
    /// Sessions shorter than this stay raw.
    pub threshold: usize,
}

pub type CompressLayer = Transformed<Compress>;

impl Compress {
    fn shrink(codec: Codec, data: &[u8]) -> Option<Vec<u8>> {
        let body = match codec {
            Codec::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL).ok()?,
            Codec::Lz4 => lz4_flex::block::compress(data),
        };
        let mut out = envelope::compressed_header(codec, data.len(), body.len());
        out.extend_from_slice(&body);
        (out.len() < data.len()).then_some(out)
    }
}

fn kept(data: &[u8]) -> Cow<'_, [u8]> {
    if data.starts_with(envelope::MAGIC) {
        Cow::Owned(envelope::raw(data))
    } else {
        Cow::Borrowed(data)
    }
}

/// Decodes stored bytes that carry no encryption: plaintext as it is, a raw or compressed envelope
/// to its data.
pub fn decode(stored: Vec<u8>) -> Result<Vec<u8>, AtRestError> {
    let (codec, len, body) = match envelope::parse(&stored)? {
        None => return Ok(stored),
        Some(Envelope::Raw(b)) => return Ok(b.to_vec()),
        Some(Envelope::Sealed { key_id, .. }) => return Err(AtRestError::Encrypted { key_id: hex(&key_id) }),
        Some(Envelope::Compressed { codec, len, body }) => (codec, len, body),
    };
    let damaged = |why: String| AtRestError::Decompress { codec: codec.name(), why };
    let data = match codec {
        Codec::Zstd => zstd::bulk::decompress(body, len).map_err(|e| damaged(e.to_string()))?,
        Codec::Lz4 => lz4_flex::block::decompress(body, len).map_err(|e| damaged(e.to_string()))?,
    };
    if data.len() != len {
        return Err(damaged(format!("{} bytes instead of {len}", data.len())));
    }
    Ok(data)
}

impl Transcode for Compress {
    fn encode<'a>(&self, _id: &SessionId, data: &'a [u8]) -> Result<Cow<'a, [u8]>, AtRestError> {
        match self.codec {
            Some(c) if data.len() >= self.threshold && data.len() <= MAX_DATA_LEN => Ok(Compress::shrink(c, data).map_or_else(|| kept(data), Cow::Owned)),
            _ => Ok(kept(data)),
        }
    }

    fn decode(&self, _id: &SessionId, stored: Vec<u8>) -> Result<Vec<u8>, AtRestError> {
        decode(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::id;

    fn json_like(n: usize) -> Vec<u8> {
        let mut s = String::from("a:1:{s:4:\"rows\";s:0:\"[");
        let mut i = 0;
        while s.len() < n {
            s.push_str(&format!("{{\"id\":{i},\"name\":\"user {i}\",\"email\":\"user{i}@example.com\",\"roles\":[\"reader\"]}},"));
            i += 1;
        }
        s.into_bytes()
    }

    #[test]
    fn each_codec_round_trips_and_small_data_stays_raw() {
        let sid = id("c1");
        let big = json_like(64 << 10);
        for codec in [Codec::Zstd, Codec::Lz4] {
            let c = Compress { codec: Some(codec), threshold: 100 };
            let stored = c.encode(&sid, &big).unwrap().into_owned();
            assert!(stored.starts_with(envelope::MAGIC) && stored.len() * 3 <= big.len(), "{codec:?}: {}", stored.len());
            // Any reader decodes it, whatever its own codec.
            assert_eq!(Compress { codec: None, threshold: 0 }.decode(&sid, stored).unwrap(), big);
            assert_eq!(c.encode(&sid, b"user|i:1;").unwrap().into_owned(), b"user|i:1;");
            assert_eq!(c.encode(&sid, &[]).unwrap().into_owned(), b"");
        }
        // Incompressible data is kept as it is.
        let mut noise = vec![0u8; 4096];
        getrandom::fill(&mut noise).unwrap();
        noise[0] = b'a';
        assert_eq!(Compress { codec: Some(Codec::Zstd), threshold: 1 }.encode(&sid, &noise).unwrap().into_owned(), noise);
    }

    #[test]
    fn data_like_an_envelope_is_wrapped_and_damage_is_an_error() {
        let sid = id("c2");
        let odd = b"\xffSP|\x01\x03 not an envelope".to_vec();
        let c = Compress { codec: None, threshold: 0 };
        let stored = c.encode(&sid, &odd).unwrap().into_owned();
        assert_ne!(stored, odd);
        assert_eq!(c.decode(&sid, stored).unwrap(), odd);
        let mut z = Compress { codec: Some(Codec::Zstd), threshold: 0 }.encode(&sid, &json_like(8192)).unwrap().into_owned();
        let n = z.len();
        z[n / 2] ^= 0x55;
        z.truncate(n - 3);
        assert!(matches!(c.decode(&sid, z), Err(AtRestError::Decompress { codec: "zstd", .. })));
        let mut l = Compress { codec: Some(Codec::Lz4), threshold: 0 }.encode(&sid, &json_like(8192)).unwrap().into_owned();
        l[6] ^= 1; // the length
        assert!(matches!(c.decode(&sid, l), Err(AtRestError::Decompress { codec: "lz4", .. })));
        let sealed = [&envelope::sealed_header([1, 2, 3, 4], &[0; 24], 16)[..], &[0u8; 16]].concat();
        assert_eq!(c.decode(&sid, sealed), Err(AtRestError::Encrypted { key_id: "01020304".into() }));
    }
}
