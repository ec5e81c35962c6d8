//! dsn::parse on arbitrary text: never panics; an accepted DSN names an absolute path without "..",
//! NUL or control characters, with options in their documented ranges; a refusal's message is one
//! line (no control characters) and lists the accepted forms.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;

use session_proxy::dsn;

fn check_path(p: &Path, input: &str) {
    assert!(p.is_absolute(), "{input:?} gave a relative path {p:?}");
    assert!(!p.components().any(|c| matches!(c, Component::ParentDir)), "{input:?} gave {p:?} with ..");
    let s = p.to_str().expect("paths come from UTF-8");
    assert!(!s.chars().any(|c| c.is_ascii_control()), "{input:?} gave {p:?} with a control character");
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let tmp = Path::new("/tmp");
    match dsn::parse(&input, tmp) {
        Ok(dsn::Engine::Sqlite(o)) => {
            check_path(&o.path, &input);
            assert!(o.path.file_name().is_some(), "{input:?}: sqlite path {:?} has no file name", o.path);
            assert!(!o.path.as_os_str().as_encoded_bytes().ends_with(b"/."), "{input:?}: sqlite path {:?} is a directory", o.path);
            assert!(o.busy_timeout.as_millis() <= 600_000);
        }
        Ok(dsn::Engine::Files(o)) => {
            check_path(&o.dir, &input);
            assert!(o.depth <= 8);
            assert!(o.mode <= 0o777 && o.mode & 0o600 == 0o600, "{input:?}: mode {:o}", o.mode);
        }
        // The network engines' options are checked by their own table-driven tests; here the
        // property is that their parsers never panic on any input and that a refusal reads well.
        Ok(dsn::Engine::Redis(_)) | Ok(dsn::Engine::Memcached(_)) | Ok(dsn::Engine::Pgsql(_)) | Ok(dsn::Engine::Mysql(_)) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.chars().any(|c| c.is_control()), "{input:?}: message has a control character: {msg:?}");
            assert!(msg.contains("accepted forms"), "{msg}");
        }
    }
    // Masking is total and never grows a DSN by more than the "***" it puts in.
    let masked = dsn::mask_secrets(&input);
    assert!(masked.len() <= input.len() + 3 * (input.matches(['@', '&', '?']).count() + 1));
});
