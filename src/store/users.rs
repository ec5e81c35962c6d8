//! The optional per-user session index of an engine (issue 13): which sessions a user is logged in
//! with, so that they can be listed and ended ("log out everywhere"). An engine that keeps one
//! answers `Store::users()`; the rules of when a binding changes are the session layer's
//! (`crate::users`, `session::Request`), the engine only stores and answers.
//!
//! Every method takes the id as the engine sees it (`&SessionId`, the storage key: a hashed-id layer
//! hands down its hashed id), and a user as opaque bytes (`User`). The index lives beside the sessions,
//! never inside their bytes, so phpredis, php-memcached and PHP's files handler still read them.
//!
//! Consistency rule, on every engine: the index may hold entries of sessions that are gone (expired,
//! collected, destroyed by another handler, or on another Cluster slot that moved on); `list`
//! answers live sessions only and prunes what it found gone. A live session bound to a user is
//! always in that user's index: binding writes the index entry before (or in the same step as) the
//! session's own record of its user.

use std::time::Duration;

use super::{Expiry, Result};
use crate::id::SessionId;

/// The longest user name accepted, in bytes (an e-mail address is at most 254; a 1 MiB name is a
/// mistake or an attack, refused with a clear error rather than stored).
pub const MAX_USER_LEN: usize = 1024;

/// Why a user name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("the user name is empty")]
    Empty,
    #[error("the user name is {len} bytes long (at most {MAX_USER_LEN})")]
    TooLong { len: usize },
}

/// A user name: 1..=MAX_USER_LEN bytes, any bytes (binary, `../`, `*`, key-shaped: engines never put
/// it into a key or a file name as such, only its SHA-256).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct User(Vec<u8>);

impl User {
    pub fn new(raw: &[u8]) -> std::result::Result<Self, UserError> {
        match raw.len() {
            0 => Err(UserError::Empty),
            n if n > MAX_USER_LEN => Err(UserError::TooLong { len: n }),
            _ => Ok(User(raw.to_vec())),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// SHA-256 of the name in hex: what names the user's index in a key or a file name.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        hex(&Sha256::digest(&self.0))
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The bytes of lower-case or upper-case hex; None if it is not hex.
pub fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok()).collect()
}

/// Where a session was used from (only with `session_proxy.track_client = On`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Client {
    pub ip: String,
    pub agent: String,
}

/// The most bytes of a client's IP address and of its user agent recorded (`Client::bounded`): a
/// real user agent is a few hundred bytes; a hostile one (1 MiB, binary) is cut, not stored whole.
pub const MAX_CLIENT_IP: usize = 64;
pub const MAX_CLIENT_AGENT: usize = 512;

impl Client {
    /// A client from the raw bytes of REMOTE_ADDR and HTTP_USER_AGENT, each cut to its bound
    /// (`MAX_CLIENT_IP`, `MAX_CLIENT_AGENT` bytes) and made text (bytes that are not UTF-8, and a
    /// character the cut split, become U+FFFD).
    pub fn bounded(ip: &[u8], agent: &[u8]) -> Client {
        let text = |b: &[u8], max: usize| String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned();
        Client { ip: text(ip, MAX_CLIENT_IP), agent: text(agent, MAX_CLIENT_AGENT) }
    }
}

/// A session's user record as the network engines store it beside the session:
/// `u:<hex user>[\n<hex ip>\n<hex agent>]` (Redis' `_USER` key, Memcached's `user.` item).
pub fn encode_record(user: &User, client: Option<&Client>) -> Vec<u8> {
    let mut v = format!("u:{}", hex(user.as_bytes()));
    if let Some(c) = client {
        v.push_str(&format!("\n{}\n{}", hex(c.ip.as_bytes()), hex(c.agent.as_bytes())));
    }
    v.into_bytes()
}

/// `encode_record` read back; None for anything else.
pub fn decode_record(v: &[u8]) -> Option<(User, Option<Client>)> {
    let mut parts = v.strip_prefix(b"u:")?.split(|&b| b == b'\n');
    let user = User::new(&unhex(parts.next()?)?).ok()?;
    let text = |p: Option<&[u8]>| p.and_then(unhex).map(|b| String::from_utf8_lossy(&b).into_owned());
    let client = match (text(parts.next()), text(parts.next())) {
        (Some(ip), Some(agent)) => Some(Client { ip, agent }),
        _ => None,
    };
    Some((user, client))
}

/// The tag of a record's last line naming its session's id (`with_id`): not hex, so a reader that
/// predates it takes that line for no client (or ignores it after one).
const ID_TAG: &[u8] = b"i=";

/// A record (`encode_record`) that also names its session's full id, on a line of its own at the
/// end: for an engine whose key for the record hashes a long id (Memcached's `user.` items beyond
/// ~230 bytes), so that a crawl of the keys can still tell the session.
pub fn with_id(mut record: Vec<u8>, id: &SessionId) -> Vec<u8> {
    record.push(b'\n');
    record.extend_from_slice(ID_TAG);
    record.extend_from_slice(id.as_str().as_bytes());
    record
}

/// The id a record names (`with_id`), if it names one.
pub fn record_id(v: &[u8]) -> Option<SessionId> {
    let last = v.rsplit(|&b| b == b'\n').next()?;
    SessionId::parse(last.strip_prefix(ID_TAG)?).ok()
}

/// The tag of a record's line giving when the binding was made (`with_bound_at`): not hex, so a
/// reader that predates it takes that line for no client (or ignores it after one).
const AT_TAG: &[u8] = b"t=";

/// A record (`encode_record`) that also says when the binding was made (unix time, s), on a line of
/// its own after the client: for an engine that may have to rebuild its index from the records
/// (Memcached's crawl), so that a rebuilt entry keeps its "created" time. Before `with_id`.
pub fn with_bound_at(mut record: Vec<u8>, at: f64) -> Vec<u8> {
    record.push(b'\n');
    record.extend_from_slice(AT_TAG);
    record.extend_from_slice(format!("{at:.3}").as_bytes());
    record
}

/// When a record's binding was made (`with_bound_at`), if it says.
pub fn record_bound_at(v: &[u8]) -> Option<f64> {
    v.split(|&b| b == b'\n').skip(1).find_map(|l| std::str::from_utf8(l.strip_prefix(AT_TAG)?).ok()?.parse().ok()).filter(|t: &f64| t.is_finite())
}

/// One live session of a user, as the index knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub id: SessionId,
    /// Unix times (s): first bound or written, and last written or touched.
    pub created: f64,
    pub last_active: f64,
    pub client: Option<Client>,
}

/// The answer of `count_active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Sessions(u64),
    /// The engine would have to read every session to answer (files, Redis, Memcached).
    NeedsScan,
}

pub trait Users {
    /// The user `id` is bound to (None: unbound, or no such session).
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>>;

    /// Binds `id` to `user` (None: unbinds it), recording `client` when given. Called after the
    /// session's write; one more step at most (pipelined where the engine can).
    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, exp: Expiry) -> Result<()>;

    /// `user`'s live sessions (stale index entries are pruned on the way).
    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>>;

    /// Ends `id` whatever holds it: deletes the session, its index entry and its lock, so that a
    /// request inside it (locked or not) cannot bring it back with its late write. False: it was gone.
    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool>;

    /// How many sessions were active (written or touched) in the last `within`.
    fn count_active(&mut self, within: Duration) -> Result<Count>;

    /// This installation's secret for session handles (32 random bytes, created on first use and
    /// kept in the engine's storage, so every worker and host of one store agrees on it).
    fn secret(&mut self) -> Result<[u8; 32]>;
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn a_hostile_client_is_cut_to_its_bounds_and_made_text() {
        let huge = vec![b'A'; 1 << 20];
        let c = Client::bounded(&huge, &huge);
        assert_eq!((c.ip.len(), c.agent.len()), (MAX_CLIENT_IP, MAX_CLIENT_AGENT));
        let binary: Vec<u8> = (0u8..=255).cycle().take(4000).collect();
        let c = Client::bounded(b"192.0.2.1", &binary);
        assert_eq!(c.ip, "192.0.2.1");
        assert!(c.agent.chars().count() <= MAX_CLIENT_AGENT && c.agent.contains(char::REPLACEMENT_CHARACTER), "{}", c.agent.len());
        // It goes through the record and back as it was cut.
        let u = User::new(b"alice").unwrap();
        assert_eq!(decode_record(&encode_record(&u, Some(&c))), Some((u.clone(), Some(c.clone()))));
        // A record naming its id reads the same to `decode_record` (older builds too), with or
        // without a client.
        let id = SessionId::parse("a".repeat(256).as_bytes()).unwrap();
        for client in [None, Some(&c)] {
            let r = with_id(encode_record(&u, client), &id);
            assert_eq!(decode_record(&r), Some((u.clone(), client.cloned())));
            assert_eq!(record_id(&r), Some(id.clone()));
            assert_eq!(record_id(&encode_record(&u, client)), None);
        }
        // A record saying when it was bound reads the same too (this build's decoder is the one
        // before the time line), with or without a client and an id line after it.
        for client in [None, Some(&c)] {
            let timed = with_bound_at(encode_record(&u, client), 1796000000.125);
            assert_eq!(record_bound_at(&timed), Some(1796000000.125));
            assert_eq!(decode_record(&timed), Some((u.clone(), client.cloned())));
            let r = with_id(timed, &id);
            assert_eq!((decode_record(&r), record_id(&r), record_bound_at(&r)), (Some((u.clone(), client.cloned())), Some(id.clone()), Some(1796000000.125)));
            assert_eq!(record_bound_at(&encode_record(&u, client)), None);
        }
        let plain = Client::bounded(b"::1", "Mozilla/5.0 (X11; Linux) é".as_bytes());
        assert_eq!(plain.agent, "Mozilla/5.0 (X11; Linux) é");
    }
}
