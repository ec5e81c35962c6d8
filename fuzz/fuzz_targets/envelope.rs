//! The at-rest envelope parser is total: any bytes give plaintext (no magic), an envelope whose
//! parts lie inside the input, or a typed error; and reading any bytes through the compression and
//! encryption decoders never panics and never accepts a sealed blob it did not seal.
#![no_main]

use libfuzzer_sys::fuzz_target;

use session_proxy::id::SessionId;
use session_proxy::store::layer::encrypt::{Encrypt, KeyRing};
use session_proxy::store::layer::envelope::{self, Envelope, MAGIC};
use session_proxy::store::layer::keys::Secret;
use session_proxy::store::layer::transform::Transcode;
use session_proxy::store::layer::compress;

fuzz_target!(|data: &[u8]| {
    match envelope::parse(data) {
        Ok(None) => assert!(!data.starts_with(MAGIC)),
        Ok(Some(Envelope::Raw(b))) => assert_eq!(b, &data[envelope::PREFIX_LEN..]),
        Ok(Some(Envelope::Compressed { len, body, .. })) => {
            assert!(len <= envelope::MAX_DATA_LEN);
            assert_eq!(body, &data[envelope::PREFIX_LEN + 4..]);
        }
        Ok(Some(Envelope::Sealed { header, body, .. })) => {
            assert_eq!(header.len(), envelope::SEALED_HEADER_LEN);
            assert!(body.len() >= envelope::TAG_LEN);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let _ = compress::decode(data.to_vec());
    let sid = SessionId::parse(b"fuzz").unwrap();
    let e = Encrypt { keys: KeyRing { current: Secret::new([3; 32]), old: vec![] } };
    if let Ok(Some(Envelope::Sealed { .. })) = envelope::parse(data) {
        assert!(e.decode(&sid, data.to_vec()).is_err(), "forged a seal");
    }
    // What it seals, it opens.
    let sealed = e.encode(&sid, data).unwrap().into_owned();
    assert_eq!(e.decode(&sid, sealed).unwrap(), data);
});
