//! grammar (the one DSN grammar) on arbitrary text: nothing panics; what decodes has no control
//! character (not even `%0A`-escaped); a parsed query has lowercase, unique keys and no empty value;
//! integers agree with `str::parse` within their range; durations stay within their bounds; a 0/1
//! flag is also a PHP boolean with the same value.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

use session_proxy::grammar::{self, Bools, Encoding};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    for encoding in [Encoding::Percent, Encoding::Form] {
        match grammar::decode(s, encoding) {
            Ok(out) => {
                assert!(!out.chars().any(char::is_control), "{s:?} decoded to {out:?}");
                if !s.contains('%') && encoding == Encoding::Percent {
                    assert_eq!(out, s, "no escape, no change");
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    if let Ok(pairs) = grammar::parse_query(Some(s)) {
        for (i, (k, v)) in pairs.iter().enumerate() {
            assert_eq!(*k, k.to_ascii_lowercase());
            assert!(!v.is_empty(), "{s:?}: empty value for {k:?}");
            assert!(!pairs[..i].iter().any(|(seen, _)| seen == k), "{s:?}: {k:?} twice");
            assert!(!k.chars().chain(v.chars()).any(char::is_control), "{s:?}");
        }
    }
    let max = data.first().map_or(0, |b| u64::from(*b) * 1000);
    assert_eq!(grammar::int(s, 0, max), s.parse::<u64>().ok().filter(|n| *n <= max), "{s:?}");
    if let Ok(d) = grammar::option_secs("t", s) {
        assert!(d >= Duration::from_millis(1) && d <= Duration::from_secs(3600), "{s:?}: {d:?}");
    }
    if let Some(b) = grammar::bool(s, Bools::Digits) {
        assert_eq!(grammar::bool(s, Bools::Php), Some(b), "{s:?}");
    }
    // Masking is total: the masked text never holds a secret it reported.
    for layout in [grammar::Layout::Url, grammar::Layout::Query] {
        let (masked, secrets) = grammar::mask(s, layout);
        let hidden = grammar::hide(&masked, &secrets);
        assert!(hidden.len() <= masked.len() + 3 * (masked.len() + 1), "{s:?}");
    }
});
