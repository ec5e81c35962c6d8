//! settings: validate never panics and agrees with what from_raw applies; from_raw on any input
//! (including values validate refused, and any max_execution_time) stays within the documented bounds
//! and never makes a wait or a lock unbounded.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

use session_proxy::settings;

use settings::*;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, rest) = data.split_at(9);
    let which = head[0] as usize % 6;
    let max_exec = i64::from_le_bytes(head[1..9].try_into().unwrap());
    let text = String::from_utf8_lossy(rest);
    // Up to five values separated by NUL (one per directive).
    let mut parts = text.split('\0');
    let vals: Vec<String> = (0..5).map(|_| parts.next().unwrap_or("").to_string()).collect();
    let names = [LOCKING, LOCK_WAIT_TIMEOUT, LOCK_EXPIRE, LOCK_TIMEOUT_ACTION, MERGE_CONFLICT, "session_proxy.other"];
    let name = names[which];
    let v = &vals[0];
    // Directive values by name, as the PHP skin gives them (RawSettings::read).
    let raw_of = |vals: &[String]| {
        RawSettings::read(|n| vals[names.iter().position(|x| *x == n).expect("a directive")].clone(), max_exec)
    };

    match validate(name, v) {
        Ok(()) => {
            assert!(which < 5, "accepted an unknown directive");
            // What validate accepts, from_raw applies as given (not the default).
            let mut raw = ["1".to_string(), "30000".to_string(), "17".to_string(), "fail".to_string(), "last".to_string()];
            raw[which] = v.clone();
            let s = Settings::from_raw(&raw_of(&raw));
            let t = v.trim();
            match which {
                0 => assert_eq!(s.locking, parse_locking(t).unwrap()),
                1 => assert_eq!(s.lock_wait, Duration::from_millis(t.parse::<u64>().unwrap())),
                2 => {
                    let n: u64 = t.parse().unwrap();
                    assert_eq!(s.lock_expire.as_secs(), effective_lock_expire(n, max_exec));
                }
                3 => assert_eq!(s.on_timeout, parse_action(t).unwrap()),
                _ => assert_eq!(s.merge_conflict, parse_merge_conflict(t).unwrap()),
            }
        }
        Err(msg) => {
            assert!(msg.contains(name) && msg.contains("previous value stays"), "{msg}");
            assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
        }
    }

    let s = Settings::from_raw(&raw_of(&vals));
    assert!(s.lock_wait <= Duration::from_millis(MAX_LOCK_WAIT_MS));
    assert!(s.lock_expire >= Duration::from_secs(1), "lock_expire {:?}", s.lock_expire);
    assert!(s.lock_expire <= Duration::from_secs(MAX_LOCK_EXPIRE_S), "lock_expire {:?}", s.lock_expire);
});
