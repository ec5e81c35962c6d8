//! id::SessionId::parse accepts exactly [a-zA-Z0-9,-]{1,256}, keeps the bytes unchanged, and its
//! log-safe name never shows more than the first 6 characters.
#![no_main]

use libfuzzer_sys::fuzz_target;

use session_proxy::id;

fuzz_target!(|data: &[u8]| {
    let valid = (1..=256).contains(&data.len()) && data.iter().all(|&c| c.is_ascii_alphanumeric() || c == b',' || c == b'-');
    match id::SessionId::parse(data) {
        Ok(sid) => {
            assert!(valid, "accepted {data:?}");
            assert_eq!(sid.as_str().as_bytes(), data);
            let short = sid.short();
            let head: String = short.chars().take_while(|&c| c != '…').collect();
            assert!(head.len() <= 6 && sid.as_str().starts_with(&head), "{short:?}");
            assert_eq!(short.ends_with('…'), data.len() > 6);
            assert_eq!(format!("{sid:?}"), format!("SessionId({short})"), "Debug shows only the short name");
        }
        Err(msg) => {
            assert!(!valid, "refused {data:?}: {msg}");
            assert!(!msg.to_string().chars().any(|c| c.is_control()), "{msg:?}");
        }
    }
});
