//! The rules of the per-user session index (issue 13), in plain Rust: which user a session is bound
//! to after a write, when that binding changed (only then does the engine's index get written), and
//! the opaque handles that name a session in a user's list without being its id.
//!
//! Binding rules:
//! - `SessionProxy\set_user($u)` binds the request's session to `$u` with its next write (or
//!   timestamp update); it wins over `session_proxy.user_key`.
//! - Otherwise, with `session_proxy.user_key = uid`, the binding is the value of the top-level
//!   `$_SESSION['uid']` (a string, or an int as its decimal digits), read from the written data with
//!   the tokenizer of the optimistic merge (`serial::value_of`). Removing the key (or setting it to
//!   anything else: null, false, an array) unbinds the session.
//! - Otherwise the binding stays what the engine had when the session was read.
//! - A regenerated session (`session_regenerate_id`) keeps the binding of the session it replaces;
//!   a destroyed, expired or collected one leaves its user's list.
//! - The binding is written only when it changed; a request that leaves it as it was costs nothing.

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::id::SessionId;
use crate::serial::{self, Format};
use crate::store::users::{hex, unhex, User};

/// The user a session's data names under `user_key` (None: no such key, or not a string or int, or
/// data we cannot take apart).
pub fn user_in_data(format: Option<Format>, data: &[u8], user_key: &str) -> Option<User> {
    let format = format?;
    let key = match format {
        Format::PhpSerialize => format!("s:{}:\"{user_key}\";", user_key.len()).into_bytes(),
        Format::Php | Format::PhpBinary => user_key.as_bytes().to_vec(),
    };
    let value = serial::value_of(format, data, &key).ok()??;
    User::new(&scalar(value)?).ok()
}

/// A serialized string (`s:5:"alice";`) as its bytes, an int (`i:42;`) as its digits.
fn scalar(v: &[u8]) -> Option<Vec<u8>> {
    if let Some(rest) = v.strip_prefix(b"i:") {
        let digits = rest.strip_suffix(b";")?;
        return std::str::from_utf8(digits).ok()?.parse::<i64>().ok().map(|n| n.to_string().into_bytes());
    }
    let rest = v.strip_prefix(b"s:")?;
    let colon = rest.iter().position(|&c| c == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let body = rest[colon + 1..].strip_prefix(b"\"")?;
    (body.len() == len + 2 && body.ends_with(b"\";")).then(|| body[..len].to_vec())
}

/// The binding after a write: `explicit` (set_user this request) wins, then `user_key`'s value in the
/// written data (when the directive is set), then what the session had (`before`).
pub fn binding_after(before: Option<&User>, explicit: Option<&User>, from_key: Option<Option<User>>) -> Option<User> {
    match (explicit, from_key) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(k)) => k,
        (None, None) => before.cloned(),
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

/// The tag that proves a handle names `id`: HMAC-SHA256 under the installation's secret, 128 bits.
fn tag(secret: &[u8; 32], id: &SessionId) -> [u8; 16] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"session_proxy handle\0");
    mac.update(id.as_str().as_bytes());
    let out = mac.finalize().into_bytes();
    out[..16].try_into().expect("32-byte MAC")
}

/// The handle of `user`'s session `id`: `<hex of the user>.<hex of the tag>`. It names the session in
/// its user's list and can end it (`destroy_session_handle`), but cannot be turned back into the id
/// (a cookie): that needs the secret and a search of the list.
pub fn handle(secret: &[u8; 32], user: &User, id: &SessionId) -> String {
    format!("{}.{}", hex(user.as_bytes()), hex(&tag(secret, id)))
}

/// A handle taken apart: whose list to search, and the tag to find in it. None: not a handle.
pub fn parse_handle(h: &[u8]) -> Option<(User, [u8; 16])> {
    let dot = h.iter().position(|&c| c == b'.')?;
    let user = User::new(&unhex(&h[..dot])?).ok()?;
    let tag: [u8; 16] = unhex(&h[dot + 1..])?.try_into().ok()?;
    Some((user, tag))
}

/// Whether `id` is the session a handle's tag names (compared in constant time).
pub fn tag_names(secret: &[u8; 32], id: &SessionId, want: &[u8; 16]) -> bool {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"session_proxy handle\0");
    mac.update(id.as_str().as_bytes());
    mac.verify_truncated_left(want).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> User {
        User::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn user_key_reads_strings_and_ints_of_the_top_level_key() {
        let php = Some(Format::Php);
        assert_eq!(user_in_data(php, b"a|i:1;uid|s:5:\"alice\";b|N;", "uid"), Some(u("alice")));
        assert_eq!(user_in_data(php, b"uid|i:42;", "uid"), Some(u("42")));
        assert_eq!(user_in_data(php, b"uid|i:-7;", "uid"), Some(u("-7")));
        // A quote or a pipe inside the name does not confuse the tokenizer.
        assert_eq!(user_in_data(php, b"uid|s:5:\"a\";|b\";x|i:1;", "uid"), Some(u("a\";|b")));
        // Not bound: absent, null, false, an array, an empty string, a nested key of that name.
        for data in [&b"x|i:1;"[..], b"uid|N;", b"uid|b:0;", b"uid|a:1:{i:0;i:1;}", b"uid|s:0:\"\";", b"x|a:1:{s:3:\"uid\";s:1:\"a\";}"] {
            assert_eq!(user_in_data(php, data, "uid"), None, "{}", String::from_utf8_lossy(data));
        }
        // Data we cannot take apart, or a format we do not know: unbound, never a guess.
        assert_eq!(user_in_data(php, b"uid|s:5:\"ali", "uid"), None);
        assert_eq!(user_in_data(None, b"uid|s:5:\"alice\";", "uid"), None);
        // The other two serializers.
        assert_eq!(user_in_data(Some(Format::PhpSerialize), b"a:1:{s:3:\"uid\";s:3:\"bob\";}", "uid"), Some(u("bob")));
        assert_eq!(user_in_data(Some(Format::PhpBinary), b"\x03uids:3:\"bob\";", "uid"), Some(u("bob")));
    }

    #[test]
    fn explicit_binding_wins_then_user_key_then_what_was_there() {
        let (a, b) = (u("alice"), u("bob"));
        assert_eq!(binding_after(Some(&a), None, None), Some(a.clone()), "nothing said: unchanged");
        assert_eq!(binding_after(None, None, None), None);
        assert_eq!(binding_after(Some(&a), Some(&b), None), Some(b.clone()));
        assert_eq!(binding_after(Some(&a), Some(&b), Some(Some(a.clone()))), Some(b.clone()), "set_user beats user_key");
        assert_eq!(binding_after(None, None, Some(Some(b.clone()))), Some(b.clone()));
        assert_eq!(binding_after(Some(&a), None, Some(None)), None, "user_key removed: unbound");
    }

    #[test]
    fn handles_name_a_session_without_revealing_its_id() {
        let (s1, s2) = ([7u8; 32], [8u8; 32]);
        let id = SessionId::parse(b"abcdefabcdef0123456789").unwrap();
        let other = SessionId::parse(b"abcdefabcdef0123456788").unwrap();
        let alice = u("alice");
        let h = handle(&s1, &alice, &id);
        assert!(!h.contains(id.as_str()), "{h}");
        assert_eq!(h, handle(&s1, &alice, &id), "stable");
        assert_ne!(h, handle(&s2, &alice, &id), "keyed by the installation's secret");
        let (user, t) = parse_handle(h.as_bytes()).unwrap();
        assert_eq!(user, alice);
        assert!(tag_names(&s1, &id, &t));
        assert!(!tag_names(&s1, &other, &t));
        assert!(!tag_names(&s2, &id, &t));
        for bad in [&b""[..], b"616c696365", b"zz.00", b".0011", b"616c696365.00", b"616c696365.0g"] {
            assert!(parse_handle(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        // Binary and long names round-trip through a handle.
        let bin = User::new(&[0, 255, b'.', b'/', 10]).unwrap();
        assert_eq!(parse_handle(handle(&s1, &bin, &id).as_bytes()).unwrap().0, bin);
    }

    #[test]
    fn user_names_are_bounded() {
        assert_eq!(User::new(b""), Err(crate::store::users::UserError::Empty));
        assert!(User::new(&[b'x'; 1024]).is_ok());
        assert_eq!(User::new(&[b'x'; 1 << 20]), Err(crate::store::users::UserError::TooLong { len: 1 << 20 }));
        assert_eq!(u("a").digest().len(), 64);
    }
}
