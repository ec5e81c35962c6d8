//! Memcached engine: one or more servers chosen by libmemcached-compatible consistent hashing, the key
//! layout of php-memcached (`memc.sess.key.<id>`, lock item `memc.sess.key.lock.<id>`), optional
//! replicas, owner-safe locks.
//!
//! Locks: `add` (meta `ms ... MS=E`) of the lock item, whose value `sp1 <owner token> <deadline ms>`
//! names the owner and when the lock may be taken over; the item's own TTL (deadline + 2 s) cleans up
//! after a vanished holder. A waiter takes over an expired lock with a compare-and-swap on the CAS value
//! it read, so two waiters cannot both win. Release and write are guarded by the CAS value of *our*
//! lock item: a lock another request took over has another CAS, so we never delete it or write under
//! it (php-memcached's plain `delete` does, its issue #364). php-memcached's own lock items (value `1`)
//! exclude us as ours exclude it; one that never expires (or outlives our lock_expire) has its TTL
//! cut to lock_expire when we first see it, so memcached drops it then (`foreign_lock`).
//!
//! Expiry is the item TTL (session.gc_maxlifetime; above 30 days memcached takes it as an absolute
//! time, so it is sent as one). The TTL an item was written with goes in its client flags, so a read
//! can tell its age (written TTL − remaining TTL) and treat data older than max_lifetime as absent even
//! when gc_maxlifetime was lowered since; their top bit marks a session bound to a user (`BOUND`).
//! php-memcached writes flags 0 and ignores them on read.
//!
//! Versions (store contract v2): a session's version is the CAS its data item has on the server it
//! was read from, with that server's index (`version`); a write expecting it is a compare-and-swap
//! on that server (`C<cas>`), one expecting no session an add (`ME`), checked by memcached in the same
//! command as the write. The CAS is memcached's, so it survives reconnects and worker restarts.
//!
//! Written on memcached's meta protocol over std sockets rather than the memcache crate: one round trip
//! must carry an add-with-TTL plus a read, a compare-and-delete, the remaining TTL and flags of an item,
//! and commands must go to a server we choose (ketama placement, replicas), pipelined on each connection.

pub mod ketama;
pub mod options;
mod proto;
mod users;
mod scan;
mod bulk;
mod rebuild;
mod mark;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

pub use options::{MemcachedOptions, ServerAddr};
use proto::{Conn, Flags, Reply};

use super::{Acquire, Busy, Caution, Collect, ErrorKind, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError, Touched, Version, Written};
use crate::id::SessionId;
use crate::lock::Token;

/// Bytes memcached adds to key + value in an item (header, CAS, flags, terminators): measured 63 on
/// 1.6; a little margin. A set that is too large makes memcached *delete* the old item, so sizes are
/// checked before sending.
const ITEM_OVERHEAD: usize = 80;
const MAX_KEY: usize = 250;
/// The lowest item size limit memcached accepts (`-I`, its ITEM_SIZE_MAX_LOWER_LIMIT).
const ITEM_SIZE_MIN: usize = 1024;
/// memcached reads a TTL above 30 days as a unix time.
const REALTIME_MAXDELTA: u64 = 60 * 60 * 24 * 30;
const LOCK_TAG: &str = "sp1";

struct Server {
    addr: ServerAddr,
    label: String,
    conn: Option<Conn>,
    down_until: Option<Instant>,
    last_error: String,
    item_max: Option<usize>,
    /// Down after a failure that cost no timeout (connection refused, reset or closed: the server is
    /// not running, or restarted): the next request probes it instead of skipping it.
    probe_next_request: bool,
}

impl Server {
    fn live(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|t| t <= now)
    }
}

struct Held {
    token: Token,
    server: usize,
    cas: u64,
    at: Instant,
    expire: Duration,
}

pub struct MemcachedStore {
    o: MemcachedOptions,
    servers: Vec<Server>,
    ring: ketama::Continuum,
    /// The locks this handle took, by session id: the lock item's CAS and when it was taken. A cache,
    /// the one piece of state kept between calls, because the contract has no value to carry it in
    /// (`save` gets the owner's token only): it lets a write release the lock by its CAS without
    /// reading it first, and skip confirming a lock taken less than half its expiry ago (no other
    /// request may take it over before it expires). Correct when empty: the lock is then found by its
    /// value (one more round trip). Bounded (`HELD_MAX`): a request uses one entry, and releases it.
    held: HashMap<String, Held>,
    /// Servers marked down so far (a failed step is retried on the remaining ones with replicas).
    downs: u64,
    /// The session's `user.` record as the last read of it found it, with the index epoch it was
    /// added under (per-user index, users.rs): `bound` answers from it, and a write of a bound
    /// session checks its index by it. A read cache, replaced by every read.
    last_user: Option<(SessionId, Option<users::Record>)>,
    /// The session the last read found bound (its `user.` item there) but its item without the
    /// `BOUND` mark (written by a build before the mark, or by php-memcached): its touch marks it.
    unmarked: Option<SessionId>,
    /// Batches exchanged with the servers (`Store::round_trips`): an `exec` (its requests are written
    /// to every server involved before any answer is read, so it costs one wait) or a stats/metadump
    /// command.
    round_trips: u64,
    /// What a call got past (`Store::take_warnings`): copies a destroy could not delete.
    cautions: Vec<Caution>,
    /// See `exec_lock_and_read`.
    #[cfg(test)]
    pub(crate) between: Option<Box<dyn FnMut() + Send>>,
    /// Lock commands to let through before `between` runs (1: the take-over after a failed add).
    #[cfg(test)]
    pub(crate) between_after: u32,
    /// LRU crawler dumps asked (`metadump`), for tests of when a list crawls.
    #[cfg(test)]
    pub(crate) dumps: u64,
}

/// At most this many locks are remembered in `held` (a request takes one or two).
const HELD_MAX: usize = 64;

/// What `lock_and_read` read with the lock: the first data server's reply and, with the lock on
/// another server, the version item's.
struct LockedRead {
    /// The session's `user.` item, read with the data.
    user: Result<Reply>,
    data: Result<Reply>,
    version: Option<Result<Reply>>,
}

type Req<'a> = (usize, String, Option<&'a [u8]>);

/// What `store_and_release` did.
enum Stored {
    /// Written (the new version: the CAS of the first copy a read finds) or touched (None).
    Done(Option<Version>),
    LockLost,
    /// The expectation failed; nothing of this write is left; the session as stored now.
    Conflict(Option<Loaded>),
}

/// A session's version: the CAS of its data item on server `server` (the one it was read from or
/// first written to), and that server's index in the DSN's list.
fn version(server: usize, cas: u64) -> Version {
    Version::new(((server as u128) << 64) | u128::from(cas))
}

/// (server index, CAS) of a version.
fn unpack(v: Version) -> (usize, u64) {
    ((v.get() >> 64) as usize, v.get() as u64)
}

/// The kind of an I/O failure: a reply that does not parse is corrupt, the rest as `StoreError::io`
/// classifies it (a timeout, an unreachable or refusing server, other).
fn io_kind(e: &std::io::Error) -> ErrorKind {
    if e.kind() == std::io::ErrorKind::InvalidData {
        ErrorKind::Corrupt
    } else {
        StoreError::io("", e, "").kind()
    }
}

/// Whether a failure took a timeout to tell (no answer, or no route to the host) rather than being
/// refused or cut at once: only those make a server worth skipping for `retry` ms.
fn costs_a_timeout(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::TimedOut | K::WouldBlock | K::HostUnreachable | K::NetworkUnreachable)
}

/// One error for several servers' failures (every copy failed): the first one's kind, every server
/// named, every cause given.
fn joined(mut errors: Vec<StoreError>) -> StoreError {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let mut at: Vec<&str> = Vec::new();
    for e in &errors {
        if !at.contains(&e.at()) {
            at.push(e.at());
        }
    }
    let detail: Vec<&str> = errors.iter().map(StoreError::detail).collect();
    let kind = errors.first().map_or(ErrorKind::Backend, StoreError::kind);
    StoreError::new(kind, at.join(","), detail.join("; "))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The client flag of a session item bound to a user (per-user index, users.rs): its binding is the
/// `user.` item beside it, and a session item with this flag whose `user.` item is gone (evicted by
/// memcached's LRU while the session lived, or lost with a server) had its binding lost. It is then
/// read as absent and removed, as an expired one: a session that a "log out everywhere" could no
/// longer find is never served again. The other 31 bits are the TTL it was written with.
const BOUND: u32 = 1 << 31;

/// The exptime to send for a TTL, and the client flags recording it (with `BOUND` for a session
/// bound to a user).
fn exptime(ttl: Duration, bound: bool) -> (u64, u32) {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let exp = if secs > REALTIME_MAXDELTA { unix_ms() / 1000 + secs } else { secs };
    (exp, secs.min(u64::from(BOUND - 1)) as u32 | if bound { BOUND } else { 0 })
}

/// The TTL a session item was written with, from its client flags.
fn written_ttl(f: &Flags) -> Option<u32> {
    f.client_flags.map(|v| v & !BOUND)
}

/// Whether a session item carries the `BOUND` mark.
fn marked(f: &Flags) -> bool {
    f.client_flags.is_some_and(|v| v & BOUND != 0)
}

/// Whether an item read with `t` and `f` is older than `max_lifetime`.
fn too_old(f: &Flags, max_lifetime: Duration) -> bool {
    match (written_ttl(f), f.ttl) {
        (Some(written), Some(left)) if written > 0 && left >= 0 && !max_lifetime.is_zero() => {
            let age = written as i64 - left;
            age >= max_lifetime.as_secs().max(1) as i64
        }
        _ => false,
    }
}

fn lock_value(owner: &Token, expire: Duration) -> String {
    format!("{LOCK_TAG} {} {}", owner.as_str(), unix_ms() + expire.as_millis() as u64)
}

/// (token, deadline ms) of one of our lock values.
fn parse_lock(v: &[u8]) -> Option<(&str, u64)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut t = s.split(' ');
    (t.next()? == LOCK_TAG).then_some(())?;
    let token = t.next()?;
    let deadline = t.next()?.parse().ok()?;
    Some((token, deadline))
}

fn lock_ttl(expire: Duration) -> u64 {
    expire.as_secs() + 2
}

impl MemcachedStore {
    pub fn open(o: &MemcachedOptions) -> Result<Self> {
        let names: Vec<String> = o.servers.iter().map(ServerAddr::ketama_name).collect();
        let ring = ketama::Continuum::new(&names, &o.weights, o.weighted);
        let servers = o
            .servers
            .iter()
            .map(|a| Server {
                addr: a.clone(),
                label: a.label(),
                conn: None,
                down_until: None,
                last_error: String::new(),
                item_max: None,
                probe_next_request: false,
            })
            .collect();
        // Connections are made on first use: a server that is down must not fail requests whose
        // sessions live on the others.
        Ok(MemcachedStore {
            o: o.clone(),
            servers,
            ring,
            held: HashMap::new(),
            downs: 0,
            last_user: None,
            unmarked: None,
            round_trips: 0,
            cautions: Vec::new(),
            #[cfg(test)]
            between: None,
            #[cfg(test)]
            between_after: 0,
            #[cfg(test)]
            dumps: 0,
        })
    }

    /// Runs one step; with replicas, a step that failed because a server just went down is run once
    /// more, on the servers still live.
    fn retrying<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        let before = self.downs;
        match f(self) {
            Err(_) if self.o.replicas > 0 && self.downs > before => f(self),
            r => r,
        }
    }

    /// The id as it names the session's items: itself when its lock item's key (the longest) fits
    /// memcached's 250 bytes with the prefix, else its hash (`SessionId::name_within`).
    fn name<'a>(&self, id: &'a SessionId) -> std::borrow::Cow<'a, str> {
        id.name_within(MAX_KEY.saturating_sub(self.o.prefix.len() + "lock.".len()))
    }

    fn key(&self, id: &SessionId) -> Result<String> {
        let k = format!("{}{}", self.o.prefix, self.name(id));
        if k.len() + "lock.".len() > MAX_KEY {
            return Err(StoreError::new(
                ErrorKind::Backend,
                self.describe(),
                format!(
                    "the prefix of {} bytes is too long for memcached keys (prefix + \"lock.\" + session name: at most {MAX_KEY} bytes)",
                    self.o.prefix.len()
                ),
            ));
        }
        Ok(k)
    }

    fn lock_key(&self, id: &SessionId) -> String {
        format!("{}lock.{}", self.o.prefix, self.name(id))
    }

    /// The session's version item (ours only, php-memcached has none): kept on the lock's server, it
    /// holds the CAS each data server gave the last locked write, so a request that took the lock on
    /// one server can tell whether its read on another was served before or after that write.
    fn version_key(&self, id: &SessionId) -> String {
        format!("{}ver.{}", self.o.prefix, self.name(id))
    }

    /// Whether the lock lives on another server than the first data copy, so that the order of one
    /// connection does not prove a read pipelined with the lock's add current (see `locked`).
    fn split(ls: usize, targets: &[usize]) -> bool {
        targets.first() != Some(&ls)
    }

    /// The servers holding `hash_key` (libmemcached layout: the ketama server, then the next ones in
    /// list order for replicas), live ones only, or all of them when none is live.
    fn targets(&self, hash_key: &str) -> Vec<usize> {
        let all = self.all_copies(hash_key);
        let now = Instant::now();
        let live: Vec<usize> = all.iter().copied().filter(|i| self.servers[*i].live(now)).collect();
        if live.is_empty() {
            all
        } else {
            live
        }
    }

    fn data_targets(&self, id: &SessionId) -> Vec<usize> {
        self.targets(&self.name(id))
    }

    /// After a delete of `id`'s copies that reached the servers `deleted` (`reached`): a copy on any
    /// other server (down: skipped, or failing now) is left, and one that comes back with its items
    /// (partitioned, paused: not restarted) serves it again (README, known limit). Told as a warning.
    fn note_copies_left(&mut self, id: &SessionId, deleted: &[usize]) {
        let left: Vec<String> =
            self.all_copies(&self.name(id)).into_iter().filter(|s| !deleted.contains(s)).map(|s| self.label(s).to_string()).collect();
        let c = Caution::CopiesLeft { at: left.join(", ") };
        // Once per server set for a call ending many sessions (destroy_user_sessions).
        if !left.is_empty() && !self.cautions.contains(&c) {
            self.cautions.push(c);
        }
    }

    fn lock_server(&self, id: &SessionId) -> usize {
        if self.o.lock_with_session {
            return self.data_targets(id)[0];
        }
        self.targets(&format!("lock.{}", self.name(id)))[0]
    }

    /// Marks server `i` down: skipped for the rest of this request, and for `retry` ms when the
    /// failure cost a timeout; a server that refused or dropped the connection is probed again by the
    /// next request that needs it (`still_valid`), as that costs one local round trip at most.
    /// (`e` is the I/O error, `kind` what it means here, `cause` it in words.)
    fn fail(&mut self, i: usize, kind: ErrorKind, e: &std::io::Error, cause: String) -> StoreError {
        self.downs += 1;
        let s = &mut self.servers[i];
        s.conn = None;
        s.item_max = None;
        s.down_until = Some(Instant::now() + self.o.retry);
        s.probe_next_request = !costs_a_timeout(e);
        s.last_error = cause.clone();
        self.error(i, kind, &cause)
    }

    /// An error of server `s`: named in the words (`memcached server <label>: ...`) and in `at`.
    fn error(&self, s: usize, kind: ErrorKind, detail: &str) -> StoreError {
        let label = self.label(s);
        StoreError::new(kind, label, format!("memcached server {label}: {detail}"))
    }

    fn conn(&mut self, i: usize) -> Result<&mut Conn> {
        if self.servers[i].conn.is_none() {
            let now = Instant::now();
            if let Some(t) = self.servers[i].down_until.filter(|t| *t > now) {
                let s = &self.servers[i];
                // Not asked: unavailable for now, whatever the error that marked it down.
                return Err(StoreError::new(
                    ErrorKind::Unavailable,
                    s.label.clone(),
                    format!(
                        "memcached server {} is skipped for {} ms more after an error ({})",
                        s.label,
                        (t - now).as_millis(),
                        s.last_error
                    ),
                ));
            }
            match Conn::connect(&self.servers[i].addr, self.o.timeout, self.o.busy_poll) {
                Ok(c) => {
                    self.servers[i].conn = Some(c);
                    self.servers[i].down_until = None;
                }
                Err(e) => {
                    // A server we cannot connect to is unavailable, unless it took the timeout to tell.
                    let kind = if io_kind(&e) == ErrorKind::Timeout { ErrorKind::Timeout } else { ErrorKind::Unavailable };
                    return Err(self.fail(i, kind, &e, format!("cannot connect: {e}")));
                }
            }
        }
        Ok(self.servers[i].conn.as_mut().expect("connected above"))
    }

    /// Sends each request to its server (pipelined per server, one write each) and reads the replies
    /// in order. A server that fails is marked down and its requests get its error.
    fn exec(&mut self, reqs: &[Req]) -> Vec<Result<Reply>> {
        if reqs.is_empty() {
            return Vec::new();
        }
        self.round_trips += 1;
        let mut failed: HashMap<usize, StoreError> = HashMap::new();
        let mut order: Vec<usize> = Vec::new();
        for (s, _, _) in reqs {
            if !order.contains(s) {
                order.push(*s);
            }
        }
        for &s in &order {
            let flushed = self.conn(s).map(|c| {
                for (t, line, data) in reqs.iter().filter(|r| r.0 == s) {
                    debug_assert_eq!(*t, s);
                    c.queue(line, *data);
                }
                c.flush()
            });
            match flushed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let e = self.io_failed(s, "write failed", &e);
                    failed.insert(s, e);
                }
                // From connecting: names the server already.
                Err(e) => {
                    failed.insert(s, e);
                }
            }
        }
        let mut out = Vec::with_capacity(reqs.len());
        for (s, _, _) in reqs {
            if let Some(e) = failed.get(s) {
                out.push(Err(e.clone()));
                continue;
            }
            let r = self.servers[*s].conn.as_mut().map(|c| c.reply());
            match r {
                Some(Ok(reply)) => out.push(Ok(reply)),
                Some(Err(e)) => {
                    let e = self.io_failed(*s, "read failed", &e);
                    failed.insert(*s, e.clone());
                    out.push(Err(e));
                }
                None => out.push(Err(self.error(*s, ErrorKind::Unavailable, "not connected"))),
            }
        }
        out
    }

    /// An I/O error on an established connection to `s` (`what`: "read failed", ...): marks it down.
    fn io_failed(&mut self, s: usize, what: &str, e: &std::io::Error) -> StoreError {
        let cause = format!("{what}: {}", self.io_cause(e));
        self.fail(s, io_kind(e), e, cause)
    }

    fn io_cause(&self, e: &std::io::Error) -> String {
        if io_kind(e) == ErrorKind::Timeout {
            format!("no answer within {} ms (timeout)", self.o.timeout.as_millis())
        } else {
            e.to_string()
        }
    }

    fn one(&mut self, s: usize, line: String, data: Option<&[u8]>) -> Result<Reply> {
        self.exec(&[(s, line, data)]).pop().expect("one reply")
    }

    /// A reply that is not what the command can answer.
    fn unexpected(&self, s: usize, what: &str, r: &Reply) -> StoreError {
        match r {
            Reply::Error(e) => self.error(s, ErrorKind::Backend, &format!("{what}{e}")),
            other => self.error(s, ErrorKind::Corrupt, &format!("{what}unexpected reply {other:?}")),
        }
    }

    fn label(&self, s: usize) -> &str {
        &self.servers[s].label
    }

    /// The largest item `s` accepts (`stats settings` item_size_max), asked once per connection.
    fn item_max(&mut self, s: usize) -> Option<usize> {
        if self.servers[s].item_max.is_none() {
            let c = self.conn(s).ok()?;
            let lines = c.lines_until_end("stats settings", 1000);
            self.round_trips += 1;
            match lines {
                Ok(lines) => {
                    let v = lines
                        .iter()
                        .find_map(|l| l.strip_prefix("STAT item_size_max ").and_then(|v| v.trim().parse().ok()));
                    self.servers[s].item_max = v;
                }
                Err(e) => {
                    self.fail(s, io_kind(&e), &e, format!("stats settings failed: {e}"));
                }
            }
        }
        self.servers[s].item_max
    }

    /// Reads session `id` (item `key`) from the first of `targets` that has it (a miss on one replica
    /// is not the last word: a restarted server comes back empty), with its `user.` item read in the
    /// same batch (`saw_user`). `first` is the replies (user, data) already read from `targets[0]`.
    /// The version is the item's CAS on the server that answered (`version`); without `value` the
    /// data is left empty (an existence check). An item older than `max_lifetime`, or marked `BOUND`
    /// while its `user.` item is missing (the binding was lost), is absent and removed.
    fn read_from(
        &mut self,
        id: &SessionId,
        key: &str,
        targets: &[usize],
        first: Option<(Result<Reply>, Result<Reply>)>,
        max_lifetime: Duration,
        value: bool,
    ) -> Result<Option<Loaded>> {
        let mut errors = Vec::new();
        let mut missed = false;
        let mut first = first;
        for &s in targets {
            let (user, r) = match first.take() {
                Some(replies) => replies,
                None => {
                    let reqs = [(s, self.user_read(id), None), (s, format!("mg {key} {}t f c", if value { "v " } else { "" }), None)];
                    let mut replies = self.exec(&reqs);
                    let data = replies.pop().expect("two replies");
                    (replies.pop().expect("two replies"), data)
                }
            };
            let lost = matches!(&user, Ok(Reply::Miss));
            self.saw_user(id, user, &r, max_lifetime);
            match r {
                Ok(Reply::Value(_, ref f) | Reply::Done(ref f)) if too_old(f, max_lifetime) || (marked(f) && lost) => {
                    // Older than today's gc_maxlifetime allows, or its binding lost: absent, and
                    // removed (unless rewritten since; a lost binding's other copies too).
                    let cas = f.cas.unwrap_or(0);
                    let mut dels: Vec<Req> = vec![(s, format!("md {key} C{cas}"), None)];
                    if !too_old(f, max_lifetime) {
                        dels.extend(targets.iter().filter(|&&t| t != s).map(|&t| (t, format!("md {key}"), None)));
                    }
                    let _ = self.exec(&dels);
                    self.last_user = Some((id.clone(), None));
                    return Ok(None);
                }
                Ok(Reply::Value(data, f)) => return Ok(Some(Loaded { data, version: version(s, f.cas.unwrap_or(0)) })),
                Ok(Reply::Done(f)) => return Ok(Some(Loaded { data: Vec::new(), version: version(s, f.cas.unwrap_or(0)) })),
                Ok(Reply::Miss) => missed = true,
                Ok(other) => errors.push(self.unexpected(s, "", &other)),
                Err(e) => errors.push(e),
            }
        }
        if missed {
            Ok(None)
        } else {
            Err(joined(errors))
        }
    }

    fn check_size(&mut self, key: &str, len: usize, targets: &[usize]) -> Result<()> {
        for &s in targets {
            if len + key.len() + ITEM_OVERHEAD <= ITEM_SIZE_MIN {
                // Fits any memcached: no need to ask this server's limit (a round trip per connection).
                continue;
            }
            if let Some(max) = self.item_max(s) {
                if len + key.len() + ITEM_OVERHEAD > max {
                    let label = self.label(s).to_string();
                    let detail = format!(
                        "the session ({len} bytes) is too large for memcached server {label}: its item size limit is {max} bytes \
                         (memcached -I); nothing was sent"
                    );
                    return Err(StoreError::TooLarge { at: label, size: len, limit: max, detail });
                }
            }
        }
        Ok(())
    }

    /// Confirms we still hold `id`'s lock and keeps it ours for a while longer; None when it was taken
    /// over (or is gone). Skips the round trip when the lock was taken less than half its expiry ago:
    /// no other request may take it over before it expires.
    fn confirm(&mut self, id: &SessionId, owner: &Token) -> Result<Option<(usize, u64)>> {
        let lkey = self.lock_key(id);
        let (server, cas, expire) = match self.held.get(id.as_str()).filter(|h| &h.token == owner) {
            Some(h) if h.at.elapsed() < h.expire / 2 => return Ok(Some((h.server, h.cas))),
            Some(h) => (h.server, h.cas, h.expire),
            None => {
                // Not taken through this handle: find it by its value.
                let s = self.lock_server(id);
                match self.one(s, format!("mg {lkey} v c"), None)? {
                    Reply::Value(v, f) if parse_lock(&v).is_some_and(|(t, _)| t == owner.as_str()) => {
                        (s, f.cas.unwrap_or(0), Duration::from_secs(30))
                    }
                    _ => return Ok(None),
                }
            }
        };
        let value = lock_value(owner, expire);
        let line = format!("ms {lkey} {} T{} C{cas} c", value.len(), lock_ttl(expire));
        match self.one(server, line, Some(value.as_bytes()))? {
            Reply::Done(f) => {
                let cas = f.cas.unwrap_or(0);
                self.remember_lock(id, Held { token: owner.clone(), server, cas, at: Instant::now(), expire });
                Ok(Some((server, cas)))
            }
            Reply::Exists | Reply::NotFound | Reply::NotStored => {
                self.held.remove(id.as_str());
                Ok(None)
            }
            other => Err(self.unexpected(server, "cannot confirm the lock: ", &other)),
        }
    }

    /// Remembers a lock this handle holds (`held`), keeping the cache bounded.
    fn remember_lock(&mut self, id: &SessionId, h: Held) {
        if self.held.len() >= HELD_MAX {
            self.held.clear();
        }
        self.held.insert(id.as_str().to_string(), h);
    }

    /// Deletes our lock item if it still carries `cas`.
    fn release(&mut self, id: &SessionId, server: usize, cas: u64) -> Result<()> {
        self.held.remove(id.as_str());
        let lkey = self.lock_key(id);
        match self.one(server, format!("md {lkey} C{cas}"), None)? {
            r @ Reply::Error(_) => Err(self.unexpected(server, "", &r)),
            _ => Ok(()),
        }
    }

    /// Deletes our lock item if it still carries `cas`, without waiting for the answer (it is read
    /// before the connection's next one): called once the session is stored, when nothing the answer
    /// could say changes this request's outcome — a taken-over lock is left alone by the CAS either way.
    /// `before` (the version item's update) goes first on the same connection, so whoever takes the
    /// lock next sees it.
    fn release_unanswered(&mut self, id: &SessionId, server: usize, cas: u64, before: &[(String, Option<String>)]) -> Result<()> {
        self.held.remove(id.as_str());
        let lkey = self.lock_key(id);
        let sent = self.conn(server)?;
        for (line, data) in before {
            sent.queue(line, data.as_deref().map(str::as_bytes));
        }
        sent.queue(&format!("md {lkey} C{cas}"), None);
        match sent.send_unanswered(before.len() + 1) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.io_failed(server, "write failed", &e)),
        }
    }

    /// Writes (or touches) the session on its servers, then releases the lock — in one pipelined
    /// round trip when the lock and the only copy live on the same server (one connection keeps the
    /// order), else only after the data is stored everywhere, and then without waiting for the answer,
    /// preceded by the version item's update when the lock lives on another server (`proven_current`).
    ///
    /// A write that expects something (`expect`) is conditional on the one copy the expectation is
    /// about, in the same command: a compare-and-swap on the server the version was read from, or an
    /// add on the first copy for `Absent`. When that server is no longer among the live copies (it went
    /// down since the read), nothing can check the expectation and the write goes to the live copies
    /// unconditionally, as it did before versions. The other copies are written unconditionally in
    /// the same batch; a refused write takes away the copies it left there (each only if still the
    /// one it wrote), releases the lock and reads the session as stored now, in one more round trip.
    #[allow(clippy::too_many_arguments)]
    fn store_and_release(
        &mut self,
        id: &SessionId,
        op: &dyn Fn(&str) -> (String, bool),
        data: Option<&[u8]>,
        expect: Expect,
        owner: Option<&Token>,
        ttl: u64,
        exp: Expiry,
    ) -> Result<Stored> {
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        if let Some(d) = data {
            self.check_size(&key, d.len(), &targets)?;
        }
        let lock = match owner {
            Some(o) => match self.confirm(id, o)? {
                Some(l) => Some(l),
                None => return Ok(Stored::LockLost),
            },
            None => None,
        };
        let (line, is_write) = op(&key);
        // Under our lock the version read is also the owner check (the lock item may live on another
        // server than the data, so lock check and write are not one step): Held is checked as the
        // version read, as locked writes always were here.
        let expect = match expect {
            Expect::Held(read) => Expect::read_as(read),
            e => e,
        };
        let cond: Option<(usize, String)> = match expect {
            _ if !is_write => None,
            Expect::Any | Expect::Held(_) => None,
            Expect::Absent => Some((targets[0], "ME".to_string())),
            Expect::Version(v) => {
                let (s, cas) = unpack(v);
                targets.contains(&s).then(|| (s, format!("C{cas}")))
            }
        };
        let mut reqs: Vec<Req> = targets
            .iter()
            .map(|&s| match &cond {
                Some((cs, flag)) if *cs == s => (s, format!("{line} {flag}"), data),
                _ => (s, line.clone(), data),
            })
            .collect();
        let lkey = self.lock_key(id);
        let together = matches!(lock, Some((ls, _)) if targets == [ls]);
        if let (true, Some((ls, cas))) = (together, lock) {
            reqs.push((ls, format!("md {lkey} C{cas}"), None));
        }
        // A bound session checks that its user's index still holds it, in the same batch (users.rs).
        let probe = self.index_probe(id);
        if let Some((s, line, _)) = &probe {
            reqs.push((*s, line.clone(), None));
        }
        let mut replies = self.exec(&reqs);
        let probed = probe.map(|p| (p, replies.pop().expect("the probe's reply")));
        let mut stored = 0;
        // The copies this write made, with the CAS each got (to undo a refused write's other copies,
        // and for the version item), and the new version (the first copy's).
        let mut written: Vec<(usize, u64)> = Vec::new();
        let mut errors = Vec::new();
        let mut conflict = false;
        for (r, &s) in replies.into_iter().zip(&targets) {
            let conditional = cond.as_ref().is_some_and(|(cs, _)| *cs == s);
            match r {
                Ok(Reply::Done(f)) if !is_write => {
                    stored += 1;
                    // A touch's CAS (asked with `c`) goes into the version item as a write's does.
                    if let Some(cas) = f.cas {
                        written.push((s, cas));
                    }
                }
                Ok(Reply::Miss) if !is_write => stored += 1,
                Ok(Reply::Done(f)) => {
                    stored += 1;
                    written.push((s, f.cas.unwrap_or(0)));
                }
                Ok(Reply::Exists | Reply::NotStored | Reply::NotFound) if conditional => conflict = true,
                Ok(other) => errors.push(self.unexpected(s, "", &other)),
                Err(e) => errors.push(e),
            }
        }
        if together {
            self.held.remove(id.as_str());
        }
        if conflict {
            return self.refused(id, &key, &targets, &written, if together { None } else { lock }, exp).map(Stored::Conflict);
        }
        if stored == 0 {
            // The lock (if not released in the batch) stays for the session layer to release.
            return Err(joined(errors));
        }
        if let (false, Some((ls, cas))) = (together, lock) {
            let mut before = Vec::new();
            if Self::split(ls, &targets) {
                let vkey = self.version_key(id);
                // A touch records the CAS it found too: without it, a session last written without
                // the lock (a regenerated id's first write) and only touched since would have every
                // locked read of it made twice (`proven_current` finds no version to prove it by).
                if !written.is_empty() {
                    let entries: Vec<(String, u64)> = written.iter().map(|&(s, c)| (self.label(s).to_string(), c)).collect();
                    let v = version_value(&entries);
                    before.push((format!("ms {vkey} {} T{ttl}", v.len()), Some(v)));
                } else {
                    before.push((format!("mg {vkey} T{ttl}"), None));
                }
            }
            self.release_unanswered(id, ls, cas, &before)?;
        }
        if let Some((p, reply)) = probed {
            self.repair_if_lost(id, p, reply);
        }
        Ok(Stored::Done(written.first().map(|&(s, cas)| version(s, cas))))
    }

    /// After a write refused for its expectation: takes away the copies it made on the other servers
    /// (those only conditional on their own CAS: a newer write there stays), releases `lock`, and reads
    /// the session as stored now; one round trip.
    fn refused(
        &mut self,
        id: &SessionId,
        key: &str,
        targets: &[usize],
        written: &[(usize, u64)],
        lock: Option<(usize, u64)>,
        exp: Expiry,
    ) -> Result<Option<Loaded>> {
        let mut reqs: Vec<Req> = written.iter().map(|&(s, cas)| (s, format!("md {key} C{cas}"), None)).collect();
        if let Some((ls, cas)) = lock {
            self.held.remove(id.as_str());
            reqs.push((ls, format!("md {} C{cas}", self.lock_key(id)), None));
        }
        reqs.push((targets[0], self.user_read(id), None));
        reqs.push((targets[0], format!("mg {key} v t f c"), None));
        let mut replies = self.exec(&reqs);
        let data = replies.pop().expect("the read's replies");
        let user = replies.pop().expect("the read's replies");
        self.read_from(id, key, targets, Some((user, data)), exp.lifetime, true)
    }

    /// Lists keys with our prefix on every live server (`lru_crawler metadump`).
    fn dump_keys(&mut self, s: usize) -> Result<Vec<String>> {
        let prefix = self.o.prefix.clone();
        let lock_prefix = format!("{prefix}lock.");
        let version_prefix = format!("{prefix}ver.");
        let lines = self.metadump(s, "lru_crawler metadump all", 2_000_000)?;
        let mut keys = Vec::new();
        for l in lines {
            let Some(k) = l.strip_prefix("key=").and_then(|r| r.split(' ').next()) else { continue };
            let k = url_decode(k);
            if k.starts_with(&prefix) && !k.starts_with(&lock_prefix) && !k.starts_with(&version_prefix) {
                keys.push(k);
            }
        }
        Ok(keys)
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%').then(|| b.get(i + 1..i + 3)).flatten();
        if let Some(v) = hex.and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok()) {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A store closes (the request's error, the pool at the process's end: `pool::close_memcached` from
/// MSHUTDOWN) only once its unanswered releases were answered. Otherwise a process that ends right
/// after a request (a CLI script, an fpm worker at `pm.max_requests`) could be found gone while its
/// release — the version item's update, then the lock's delete — still waits in a memcached thread
/// that another connection's thread outruns: the waiter breaks the dead holder's lock, the next
/// holder reads the version from before that release, which matches its read of the data from
/// before the dead holder's write, and it works on stale data (measured: 50 racing CLI processes,
/// one increment in ~10 runs lost under load).
impl Drop for MemcachedStore {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(c) = s.conn.as_mut() {
                let _ = c.finish();
            }
        }
    }
}

impl Pooled for MemcachedStore {
    /// Drops pooled connections the server closed while they were idle (it restarted): the request
    /// then connects afresh instead of failing on the stale socket. Not a server failure: the server
    /// is not marked down.
    fn still_valid(&mut self) -> bool {
        // A new request reads its session's user record afresh.
        self.last_user = None;
        for s in &mut self.servers {
            // A new request: a server that refused or dropped us is asked again (a restarted one
            // serves this request), one that timed out stays skipped for `retry`.
            if s.probe_next_request {
                s.down_until = None;
                s.probe_next_request = false;
            }
            if s.conn.as_mut().is_some_and(|c| !c.idle_alive()) {
                s.conn = None;
                s.item_max = None;
            }
        }
        true
    }
}

impl Store for MemcachedStore {
    fn take_warnings(&mut self) -> Vec<Caution> {
        std::mem::take(&mut self.cautions)
    }

    fn describe(&self) -> String {
        let mut s = String::from("memcached://");
        for (i, srv) in self.servers.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{}", srv.label);
        }
        s
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        self.retrying(|s| s.load_once(id, exp.lifetime))
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, expire: Duration, exp: Expiry) -> Result<Acquire> {
        self.retrying(|s| s.lock_and_load_once(id, owner, expire, exp.lifetime))
    }

    fn wait_for_release(&mut self, _id: &SessionId, _busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        // A poll is one cheap round trip: 1, 2, then every 3 ms, so a released lock is noticed fast.
        let step = Duration::from_millis((1 + attempt as u64).min(3));
        std::thread::sleep(step.min(deadline.saturating_duration_since(Instant::now())));
        Ok(())
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        // A session bound to a user (as its last read found it) keeps its mark.
        let (ttl, flags) = exptime(exp.lifetime, self.bound_here(id));
        let len = data.len();
        let line = |key: &str| (format!("ms {key} {len} T{ttl} F{flags} c"), true);
        match self.retrying(|s| s.store_and_release(id, &line, Some(data), expect, owner, ttl, exp))? {
            Stored::Done(Some(v)) => Ok(Written::Done(v)),
            Stored::Done(None) => Err(StoreError::new(ErrorKind::Corrupt, self.describe(), "memcached stored the session without a CAS")),
            Stored::LockLost => Ok(Written::LockLost),
            Stored::Conflict(now) => Ok(Written::Conflict(now)),
        }
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        let (ttl, _) = exptime(exp.lifetime, false);
        let line = |key: &str| (format!("mg {key} T{ttl} c"), false);
        let unmarked = self.unmarked.as_ref() == Some(id);
        Ok(match self.retrying(|s| s.store_and_release(id, &line, None, Expect::Any, owner, ttl, exp))? {
            Stored::LockLost => Touched::LockLost,
            Stored::Done(_) | Stored::Conflict(_) => {
                // A touch keeps the item's flags: a bound session written without the mark (by a
                // build before it, or php-memcached) gets it now. A failure leaves it for next time.
                if unmarked {
                    let _ = self.mark(id, exp, true);
                }
                Touched::Done
            }
        })
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        self.retrying(|s| s.unlock_once(id, owner))
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        self.retrying(|s| s.destroy_once(id, owner))
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        let lkey = self.lock_key(id);
        let ls = self.lock_server(id);
        Ok(match self.one(ls, format!("mg {lkey} v"), None)? {
            // php-memcached's "1" is no lock value of ours: None.
            Reply::Value(v, _) => parse_lock(&v).map(|(t, _)| Token::from_stored(t)),
            _ => None,
        })
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        self.retrying(|s| {
            let key = s.key(id)?;
            let targets = s.data_targets(id);
            Ok(s.read_from(id, &key, &targets, None, exp.lifetime, false)?.is_some())
        })
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        Some(self)
    }

    fn users(&mut self) -> Option<&mut dyn super::users::Users> {
        Some(self)
    }

    fn scanner(&mut self) -> Option<&mut dyn super::Scan> {
        Some(self)
    }

    fn bulk(&mut self) -> Option<&mut dyn super::Bulk> {
        if self.batches() {
            Some(self)
        } else {
            None
        }
    }

    fn round_trips(&self) -> u64 {
        self.round_trips
    }
}

impl Collect for MemcachedStore {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        // memcached expires sessions itself (TTL = gc_maxlifetime). gc only removes sessions written
        // with a longer TTL than today's gc_maxlifetime, found with the LRU crawler's key dump.
        let mut removed = 0u64;
        let mut errors = Vec::new();
        let now = Instant::now();
        let live: Vec<usize> = (0..self.servers.len()).filter(|&s| self.servers[s].live(now)).collect();
        for s in live {
            let keys = match self.dump_keys(s) {
                Ok(k) => k,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for chunk in keys.chunks(100).take(100) {
                let reqs: Vec<Req> = chunk.iter().map(|k| (s, format!("mg {k} t f c"), None)).collect();
                let replies = self.exec(&reqs);
                let mut dels: Vec<Req> = Vec::new();
                for (k, r) in chunk.iter().zip(replies) {
                    if let Ok(Reply::Done(f)) = r {
                        if too_old(&f, exp.lifetime) {
                            #[cfg(test)]
                            crate::store::tests::gc_window(k);
                            dels.push((s, format!("md {k} C{}", f.cas.unwrap_or(0)), None));
                        }
                    }
                }
                removed += self.exec(&dels).iter().filter(|r| matches!(r, Ok(Reply::Done(_)))).count() as u64;
            }
        }
        if removed == 0 && !errors.is_empty() {
            return Err(joined(errors));
        }
        Ok(removed)
    }
}

impl MemcachedStore {
    fn load_once(&mut self, id: &SessionId, max_lifetime: Duration) -> Result<Option<Loaded>> {
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        // The session's user record comes with the read (same server, same round trip).
        let reqs: [Req; 2] = [(targets[0], self.user_read(id), None), (targets[0], format!("mg {key} v t f c"), None)];
        let mut replies = self.exec(&reqs);
        let data = replies.pop().expect("two replies");
        let user = replies.pop().expect("two replies");
        self.read_from(id, &key, &targets, Some((user, data)), max_lifetime, true)
    }

    fn lock_and_load_once(&mut self, id: &SessionId, owner: &Token, expire: Duration, max_lifetime: Duration) -> Result<Acquire> {
        let key = self.key(id)?;
        let lkey = self.lock_key(id);
        let ls = self.lock_server(id);
        let targets = self.data_targets(id);
        let value = lock_value(owner, expire);
        let add = format!("ms {lkey} {} T{} ME c", value.len(), lock_ttl(expire));
        let (lock_reply, read) = self.lock_and_read(id, ls, add, &value, &key, &targets);
        let cas = match lock_reply? {
            Reply::Done(f) => f.cas.unwrap_or(0),
            Reply::NotStored => {
                // Held: take it over if it expired.
                let cas = match self.one(ls, format!("mg {lkey} v t c"), None)? {
                    Reply::Value(v, f) => match parse_lock(&v) {
                        Some((_, deadline)) => {
                            let now = unix_ms();
                            if now <= deadline {
                                let expires_in = Some(Duration::from_millis(deadline - now));
                                return Ok(Acquire::Busy(Busy { expires_in, foreign: false }));
                            }
                            f.cas.unwrap_or(0)
                        }
                        None => return self.foreign_lock(ls, &lkey, &v, &f, expire).map(Acquire::Busy),
                    },
                    // Released meanwhile: the next attempt takes it.
                    _ => return Ok(Acquire::Busy(Busy::default())),
                };
                // The take-over is read like a fresh lock: the previous holder's write (if it made one
                // before its lock expired) may reach the data server after this read.
                let set = format!("ms {lkey} {} T{} C{cas} c", value.len(), lock_ttl(expire));
                let (lock_reply, read) = self.lock_and_read(id, ls, set, &value, &key, &targets);
                return match lock_reply? {
                    Reply::Done(f) => {
                        let cas = f.cas.unwrap_or(0);
                        self.locked(id, owner, ls, cas, expire, &key, &targets, read, max_lifetime)
                    }
                    Reply::Exists | Reply::NotFound | Reply::NotStored => Ok(Acquire::Busy(Busy::default())),
                    other => Err(self.unexpected(ls, "cannot take over the lock: ", &other)),
                };
            }
            other => return Err(self.unexpected(ls, "", &other)),
        };
        self.locked(id, owner, ls, cas, expire, &key, &targets, read, max_lifetime)
    }

    /// A lock item of another handler (php-memcached's, value `1`): never taken over, its TTL governs;
    /// but one that never expires, or outlives our lock_expire, must not block us for longer than
    /// lock_expire after we first saw it. So at first sight its TTL is cut to that — a compare-and-swap
    /// of the same value (a lock set again meanwhile is left alone) — and memcached removes it then.
    /// The first sight is thus kept in the item itself, not in this handle. memcached counts whole
    /// seconds: an item given `limit` s lives `limit - 1` to `limit` s, so never less than lock_expire.
    fn foreign_lock(&mut self, ls: usize, lkey: &str, v: &[u8], f: &Flags, expire: Duration) -> Result<Busy> {
        let limit = expire.as_secs() + u64::from(expire.subsec_nanos() > 0) + 1;
        let left = f.ttl.unwrap_or(-1);
        if left >= 0 && left as u64 <= limit {
            return Ok(Busy { expires_in: Some(Duration::from_secs(left as u64)), foreign: true });
        }
        let cut = format!("ms {lkey} {} T{limit} C{}", v.len(), f.cas.unwrap_or(0));
        match self.one(ls, cut, Some(v))? {
            r @ Reply::Error(_) => Err(self.unexpected(ls, "", &r)),
            _ => Ok(Busy { expires_in: Some(Duration::from_secs(limit)), foreign: true }),
        }
    }

    /// One round trip: the lock command (`add` or take-over) on the lock's server and the session's
    /// read on its first data server, pipelined; with the lock on another server, also the version
    /// item, read on the lock's connection right after the lock command. Returns the lock's reply and
    /// the read (the `user.` and data replies, and the version reply when split).
    fn lock_and_read(&mut self, id: &SessionId, ls: usize, lock_cmd: String, value: &str, key: &str, targets: &[usize]) -> (Result<Reply>, LockedRead) {
        let mut reqs: Vec<Req> = vec![(ls, lock_cmd, Some(value.as_bytes()))];
        let split = Self::split(ls, targets);
        if split {
            reqs.push((ls, format!("mg {} v", self.version_key(id)), None));
        }
        // The session's user record comes with the read (its first data server, same round trip).
        reqs.push((targets[0], self.user_read(id), None));
        reqs.push((targets[0], format!("mg {key} v t f c"), None));
        let mut replies = self.exec_lock_and_read(reqs);
        let data = replies.pop().expect("data reply");
        let user = replies.pop().expect("user record reply");
        let version = if split { Some(replies.pop().expect("version reply")) } else { None };
        (replies.pop().expect("lock reply"), LockedRead { user, data, version })
    }

    #[cfg(not(test))]
    fn exec_lock_and_read(&mut self, reqs: Vec<Req>) -> Vec<Result<Reply>> {
        self.exec(&reqs)
    }

    /// Tests can make the data server answer first and then run `between` (another request's whole
    /// write and release) before the lock's server sees the lock command: the interleaving two
    /// servers allow and one connection does not.
    #[cfg(test)]
    fn exec_lock_and_read(&mut self, mut reqs: Vec<Req>) -> Vec<Result<Reply>> {
        if self.between_after > 0 {
            self.between_after -= 1;
            return self.exec(&reqs);
        }
        match self.between.take() {
            Some(mut between) => {
                let data = reqs.pop().expect("data request");
                let read = self.exec(&[data]);
                between();
                let mut out = self.exec(&reqs);
                out.extend(read);
                out
            }
            None => self.exec(&reqs),
        }
    }

    fn unlock_once(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        if let Some(h) = self.held.get(id.as_str()).filter(|h| &h.token == owner) {
            let (s, cas) = (h.server, h.cas);
            return self.release(id, s, cas);
        }
        let lkey = self.lock_key(id);
        let s = self.lock_server(id);
        if let Reply::Value(v, f) = self.one(s, format!("mg {lkey} v c"), None)? {
            if parse_lock(&v).is_some_and(|(t, _)| t == owner.as_str()) {
                return self.release(id, s, f.cas.unwrap_or(0));
            }
        }
        Ok(())
    }

    fn destroy_once(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        self.last_user = None;
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        let mut reqs: Vec<Req> = targets.iter().map(|&s| (s, format!("md {key}"), None)).collect();
        // The per-user index's record of the session goes with it (users.rs).
        let ukey = self.user_key(id);
        let ls = self.lock_server(id);
        if Self::split(ls, &targets) {
            // Acknowledged before the lock is released below: the next holder finds no version, so a
            // read of ours served before the deletes is not taken for current (`proven_current`).
            reqs.push((ls, format!("md {}", self.version_key(id)), None));
        }
        reqs.extend(targets.iter().map(|&s| (s, format!("md {ukey}"), None)));
        let mut replies = self.exec(&reqs);
        replies.truncate(targets.len());
        let deleted = reached(&targets, &replies);
        let errors: Vec<StoreError> = replies
            .into_iter()
            .zip(&targets)
            .filter_map(|(r, &s)| match r {
                Ok(r @ Reply::Error(_)) => Some(self.unexpected(s, "", &r)),
                Ok(_) => None,
                Err(e) => Some(e),
            })
            .collect();
        if errors.len() == targets.len() {
            return Err(joined(errors));
        }
        if let Some(o) = owner {
            self.unlock_once(id, o)?;
        }
        self.note_copies_left(id, &deleted);
        Ok(())
    }

}

impl MemcachedStore {
    #[allow(clippy::too_many_arguments)]
    fn locked(
        &mut self,
        id: &SessionId,
        owner: &Token,
        ls: usize,
        cas: u64,
        expire: Duration,
        key: &str,
        targets: &[usize],
        read: LockedRead,
        max_lifetime: Duration,
    ) -> Result<Acquire> {
        self.remember_lock(id, Held { token: owner.clone(), server: ls, cas, at: Instant::now(), expire });
        let (first, order) = match read.version {
            // The read followed the lock command on one connection: it sees every write the previous
            // holder made before releasing.
            None => (Some(read.data), targets.to_vec()),
            Some(version) => self.proven_current(read.data, version, targets),
        };
        let first = first.map(|data| (read.user, data));
        match self.read_from(id, key, &order, first, max_lifetime, true) {
            Ok(d) => Ok(Acquire::Locked(d)),
            Err(e) => {
                // Cannot read under the lock: give it back rather than hold it until it expires.
                let _ = self.release(id, ls, cas);
                Err(e)
            }
        }
    }

    /// With the lock on another server than the data, the data read pipelined with the lock's add may
    /// have been served before the previous holder's write landed, even though the add was served
    /// after that holder's release. The holder records the CAS its write got on each data server in
    /// the version item *before* releasing, on the lock's connection; the version was read right
    /// after our add on that connection, so it is at least as new as the last locked write. The read
    /// is current when it shows that write (the same CAS, or no data and no version); otherwise it is
    /// dropped and made again now (one more round trip, only then), from the servers that write
    /// reached first. Returns the first reply to use (None: read afresh) and the servers to read.
    fn proven_current(
        &self,
        data: Result<Reply>,
        version: Result<Reply>,
        targets: &[usize],
    ) -> (Option<Result<Reply>>, Vec<usize>) {
        let label = self.label(targets[0]);
        let seen: Option<Option<u64>> = match &data {
            Ok(Reply::Value(_, f)) => f.cas.map(Some),
            Ok(Reply::Miss) => Some(None),
            _ => None,
        };
        let written: Option<Vec<(String, u64)>> = match &version {
            Ok(Reply::Value(v, _)) => parse_version(v),
            Ok(Reply::Miss) => Some(Vec::new()),
            _ => None,
        };
        let recorded = written.as_ref().map(|w| w.iter().find(|(l, _)| l == label).map(|e| e.1));
        if seen.is_some() && seen == recorded {
            return (Some(data), targets.to_vec());
        }
        let mut order = targets.to_vec();
        if let Some(w) = written {
            // Servers the last write reached first (a replica that missed it may hold older data).
            order.sort_by_key(|&s| !w.iter().any(|(l, _)| l == self.label(s)));
        }
        (None, order)
    }
}

/// The servers among `targets` whose reply (`replies`: one per target, in order) to a delete was no
/// error: their copy is gone.
fn reached(targets: &[usize], replies: &[Result<Reply>]) -> Vec<usize> {
    replies.iter().zip(targets).filter(|(r, _)| matches!(r, Ok(rep) if !matches!(rep, Reply::Error(_)))).map(|(_, &s)| s).collect()
}

/// The version item's value: `sp1 <server>=<cas> ...`, one entry per data server the write reached.
fn version_value(entries: &[(String, u64)]) -> String {
    let mut v = String::from(LOCK_TAG);
    for (label, cas) in entries {
        let _ = write!(v, " {label}={cas}");
    }
    v
}

fn parse_version(v: &[u8]) -> Option<Vec<(String, u64)>> {
    let s = std::str::from_utf8(v).ok()?;
    let mut t = s.split(' ');
    (t.next()? == LOCK_TAG).then_some(())?;
    t.map(|e| e.rsplit_once('=').and_then(|(l, c)| Some((l.to_string(), c.parse().ok()?)))).collect()
}

#[cfg(test)]
mod tests;
