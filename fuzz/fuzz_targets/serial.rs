//! serial: taking PHP's session formats apart never panics; whatever parses re-encodes to the same
//! bytes; a merge of anything with itself or with unchanged data never loses or invents a change.
#![no_main]

use libfuzzer_sys::fuzz_target;

use session_proxy::serial::{encode, entries, merge, Format, OnConflict};

fuzz_target!(|data: &[u8]| {
    let (sel, data) = data.split_first().map_or((0, data), |(s, d)| (*s, d));
    let format = [Format::Php, Format::PhpSerialize, Format::PhpBinary][usize::from(sel % 3)];
    if let Ok(list) = entries(format, data) {
        let pairs: Vec<(&[u8], &[u8])> = list.iter().map(|e| (e.key, e.value)).collect();
        // php_serialize re-encodes its count canonically; the other formats are concatenations.
        if format != Format::PhpSerialize || data.starts_with(format!("a:{}:", pairs.len()).as_bytes()) {
            assert_eq!(encode(format, &pairs), data);
        }
    }
    // Split the input into base / mine / theirs.
    let third = data.len() / 3;
    let (base, rest) = data.split_at(third);
    let (mine, theirs) = rest.split_at(third);
    for on in [OnConflict::Last, OnConflict::First] {
        // Nothing changed by this request: the stored data stands, whatever it is.
        let m = merge(Some(format), base, base, theirs, on);
        if !m.whole {
            assert_eq!(m.conflicts, 0);
        } else {
            assert_eq!(m.data, theirs);
        }
        // Nobody else wrote: this request's data is stored.
        let m = merge(Some(format), base, mine, base, on);
        assert_eq!(m.conflicts, 0);
        if m.whole {
            assert_eq!(m.data, mine);
        }
    }
});
