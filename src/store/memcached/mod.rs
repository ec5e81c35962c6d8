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
//! exclude us as ours exclude it; one whose holder never releases it is taken over after our
//! lock_expire of seeing it unchanged.
//!
//! Expiry is the item TTL (session.gc_maxlifetime; above 30 days memcached takes it as an absolute
//! time, so it is sent as one). The TTL an item was written with goes in its client flags, so a read
//! can tell its age (written TTL − remaining TTL) and treat data older than max_lifetime as absent even
//! when gc_maxlifetime was lowered since. php-memcached writes flags 0 and ignores them on read.
//!
//! Written on memcached's meta protocol over std sockets rather than the memcache crate: one round trip
//! must carry an add-with-TTL plus a read, a compare-and-delete, the remaining TTL and flags of an item,
//! and commands must go to a server we choose (ketama placement, replicas), pipelined on each connection.

pub mod ketama;
pub mod options;
mod proto;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};

pub use options::{MemcachedOptions, ServerAddr};
use proto::{Conn, Flags, Reply};

use super::legacy::{Acquire, Saved, Store};
use crate::id::SessionId;
use crate::lock::Token;

/// Bytes memcached adds to key + value in an item (header, CAS, flags, terminators): measured 63 on
/// 1.6; a little margin. A set that is too large makes memcached *delete* the old item, so sizes are
/// checked before sending.
const ITEM_OVERHEAD: usize = 80;
const MAX_KEY: usize = 250;
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
    held: HashMap<String, Held>,
    /// Foreign lock items (php-memcached's) by key: the CAS first seen and when.
    foreign: HashMap<String, (u64, Instant)>,
    /// Servers marked down so far (a failed step is retried on the remaining ones with replicas).
    downs: u64,
    /// By data key: the server a session was last read from and the CAS it had there (None: absent).
    /// A locked write is guarded by it (see `store_and_release`).
    read_cas: HashMap<String, (usize, Option<u64>)>,
    /// See `exec_lock_and_read`.
    #[cfg(test)]
    pub(crate) between: Option<Box<dyn FnMut() + Send>>,
    /// Lock commands to let through before `between` runs (1: the take-over after a failed add).
    #[cfg(test)]
    pub(crate) between_after: u32,
    /// Batches sent by `exec` (round trips), for tests.
    #[cfg(test)]
    pub(crate) round_trips: u32,
}

/// What `lock_and_read` read with the lock: the first data server's reply and, with the lock on
/// another server, the version item's.
struct LockedRead {
    data: Result<Reply, String>,
    version: Option<Result<Reply, String>>,
}

type Req<'a> = (usize, String, Option<&'a [u8]>);

/// Whether a failure took a timeout to tell (no answer, or no route to the host) rather than being
/// refused or cut at once: only those make a server worth skipping for `retry` ms.
fn costs_a_timeout(cause: &str) -> bool {
    ["timed out", "timeout", "Resource temporarily unavailable", "unreachable", "No route to host"]
        .iter()
        .any(|t| cause.contains(t))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The exptime to send for a TTL, and the client flags recording it.
fn exptime(ttl: Duration) -> (u64, u32) {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let exp = if secs > REALTIME_MAXDELTA { unix_ms() / 1000 + secs } else { secs };
    (exp, secs.min(u32::MAX as u64) as u32)
}

/// Whether an item read with `t` and `f` is older than `max_lifetime`.
fn too_old(f: &Flags, max_lifetime: Duration) -> bool {
    match (f.client_flags, f.ttl) {
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
    pub fn open(o: &MemcachedOptions) -> anyhow::Result<Self> {
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
            o: o.clone(), servers, ring, held: HashMap::new(), foreign: HashMap::new(), downs: 0,
            read_cas: HashMap::new(),
            #[cfg(test)]
            between: None,
            #[cfg(test)]
            between_after: 0,
            #[cfg(test)]
            round_trips: 0,
        })
    }

    /// Runs one step; with replicas, a step that failed because a server just went down is run once
    /// more, on the servers still live.
    fn retrying<T>(&mut self, mut f: impl FnMut(&mut Self) -> anyhow::Result<T>) -> anyhow::Result<T> {
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

    fn key(&self, id: &SessionId) -> anyhow::Result<String> {
        let k = format!("{}{}", self.o.prefix, self.name(id));
        if k.len() + "lock.".len() > MAX_KEY {
            bail!(
                "the prefix of {} bytes is too long for memcached keys (prefix + \"lock.\" + session name: at most {MAX_KEY} bytes)",
                self.o.prefix.len()
            );
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
        let n = self.servers.len();
        let first = self.ring.pick(hash_key.as_bytes());
        let all: Vec<usize> = (0..=self.o.replicas as usize).map(|i| (first + i) % n).collect();
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

    fn lock_server(&self, id: &SessionId) -> usize {
        if self.o.lock_with_session {
            return self.data_targets(id)[0];
        }
        self.targets(&format!("lock.{}", self.name(id)))[0]
    }

    /// Marks server `i` down: skipped for the rest of this request, and for `retry` ms when the
    /// failure cost a timeout; a server that refused or dropped the connection is probed again by the
    /// next request that needs it (`still_valid`), as that costs one local round trip at most.
    fn fail(&mut self, i: usize, cause: String) -> String {
        self.downs += 1;
        let s = &mut self.servers[i];
        s.conn = None;
        s.item_max = None;
        s.down_until = Some(Instant::now() + self.o.retry);
        s.probe_next_request = !costs_a_timeout(&cause);
        s.last_error = cause;
        format!("memcached server {}: {}", s.label, s.last_error)
    }

    fn conn(&mut self, i: usize) -> Result<&mut Conn, String> {
        if self.servers[i].conn.is_none() {
            let now = Instant::now();
            if let Some(t) = self.servers[i].down_until.filter(|t| *t > now) {
                let s = &self.servers[i];
                return Err(format!(
                    "memcached server {} is skipped for {} ms more after an error ({})",
                    s.label,
                    (t - now).as_millis(),
                    s.last_error
                ));
            }
            match Conn::connect(&self.servers[i].addr, self.o.timeout, self.o.busy_poll) {
                Ok(c) => {
                    self.servers[i].conn = Some(c);
                    self.servers[i].down_until = None;
                }
                Err(e) => return Err(self.fail(i, format!("cannot connect: {e}"))),
            }
        }
        Ok(self.servers[i].conn.as_mut().expect("connected above"))
    }

    /// Sends each request to its server (pipelined per server, one write each) and reads the replies
    /// in order. A server that fails is marked down and its requests get its error.
    fn exec(&mut self, reqs: &[Req]) -> Vec<Result<Reply, String>> {
        #[cfg(test)]
        {
            self.round_trips += 1;
        }
        let mut failed: HashMap<usize, String> = HashMap::new();
        let mut order: Vec<usize> = Vec::new();
        for (s, _, _) in reqs {
            if !order.contains(s) {
                order.push(*s);
            }
        }
        for &s in &order {
            let r = self.conn(s).and_then(|c| {
                for (t, line, data) in reqs.iter().filter(|r| r.0 == s) {
                    debug_assert_eq!(*t, s);
                    c.queue(line, *data);
                }
                c.flush().map_err(|e| e.to_string())
            });
            if let Err(e) = r {
                let msg = self.write_failed(s, e);
                failed.insert(s, msg);
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
                    let msg = self.fail(*s, format!("read failed: {}", self.io_cause(&e.to_string())));
                    failed.insert(*s, msg.clone());
                    out.push(Err(msg));
                }
                None => out.push(Err(format!("memcached server {}: not connected", self.servers[*s].label))),
            }
        }
        out
    }

    /// The error of a failed write to `s`: one from connecting (`conn`) already names the server and
    /// is passed on; an I/O error marks the server down.
    fn write_failed(&mut self, s: usize, e: String) -> String {
        if e.starts_with("memcached server") {
            e
        } else {
            let cause = format!("write failed: {}", self.io_cause(&e));
            self.fail(s, cause)
        }
    }

    fn io_cause(&self, e: &str) -> String {
        if e.contains("Resource temporarily unavailable") || e.contains("timed out") {
            format!("no answer within {} ms (timeout)", self.o.timeout.as_millis())
        } else {
            e.to_string()
        }
    }

    fn one(&mut self, s: usize, line: String, data: Option<&[u8]>) -> anyhow::Result<Reply> {
        self.exec(&[(s, line, data)]).pop().expect("one reply").map_err(|e| anyhow!(e))
    }

    fn label(&self, s: usize) -> &str {
        &self.servers[s].label
    }

    /// The largest item `s` accepts (`stats settings` item_size_max), asked once per connection.
    fn item_max(&mut self, s: usize) -> Option<usize> {
        if self.servers[s].item_max.is_none() {
            let c = self.conn(s).ok()?;
            let lines = c.lines_until_end("stats settings", 1000);
            match lines {
                Ok(lines) => {
                    let v = lines
                        .iter()
                        .find_map(|l| l.strip_prefix("STAT item_size_max ").and_then(|v| v.trim().parse().ok()));
                    self.servers[s].item_max = v;
                }
                Err(e) => {
                    self.fail(s, format!("stats settings failed: {e}"));
                }
            }
        }
        self.servers[s].item_max
    }

    /// Reads `key` from the first of `targets` that has it (a miss on one replica is not the last word:
    /// a restarted server comes back empty). `first` is the reply already read from `targets[0]`.
    fn read_from(
        &mut self,
        key: &str,
        targets: &[usize],
        first: Option<Result<Reply, String>>,
        max_lifetime: Duration,
        value: bool,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let mut errors = Vec::new();
        let mut missed = false;
        let mut first = first;
        for &s in targets {
            let r = match first.take() {
                Some(r) => r,
                None => self.exec(&[(s, format!("mg {key} {}t f c", if value { "v " } else { "" }), None)]).remove(0),
            };
            match r {
                Ok(Reply::Value(_, ref f) | Reply::Done(ref f)) if too_old(f, max_lifetime) => {
                    // Older than today's gc_maxlifetime allows: absent, and removed (unless rewritten since).
                    let cas = f.cas.unwrap_or(0);
                    let _ = self.exec(&[(s, format!("md {key} C{cas}"), None)]);
                    if value {
                        self.remember_read(key, s, None);
                    }
                    return Ok(None);
                }
                Ok(Reply::Value(d, f)) => {
                    self.remember_read(key, s, f.cas);
                    return Ok(Some(d));
                }
                Ok(Reply::Done(_)) => return Ok(Some(Vec::new())),
                Ok(Reply::Miss) => {
                    if value && !missed {
                        self.remember_read(key, s, None);
                    }
                    missed = true
                }
                Ok(other) => errors.push(format!("memcached server {}: unexpected reply {other:?}", self.label(s))),
                Err(e) => errors.push(e),
            }
        }
        if missed {
            Ok(None)
        } else {
            Err(anyhow!(errors.join("; ")))
        }
    }

    fn remember_read(&mut self, key: &str, s: usize, cas: Option<u64>) {
        // A pooled store lives as long as its worker: keep these maps small (one request uses one or
        // two entries; reads without a later write leave theirs behind).
        if self.read_cas.len() >= 64 {
            self.read_cas.clear();
        }
        if self.foreign.len() >= 64 {
            self.foreign.clear();
        }
        self.read_cas.insert(key.to_string(), (s, cas));
    }

    fn check_size(&mut self, key: &str, len: usize, targets: &[usize]) -> anyhow::Result<()> {
        for &s in targets {
            if let Some(max) = self.item_max(s) {
                if len + key.len() + ITEM_OVERHEAD > max {
                    bail!(
                        "the session ({len} bytes) is too large for memcached server {}: its item size limit is {max} bytes \
                         (memcached -I); nothing was sent",
                        self.label(s)
                    );
                }
            }
        }
        Ok(())
    }

    /// Confirms we still hold `id`'s lock and keeps it ours for a while longer; None when it was taken
    /// over (or is gone). Skips the round trip when the lock was taken less than half its expiry ago:
    /// no other request may take it over before it expires.
    fn confirm(&mut self, id: &SessionId, owner: &Token) -> anyhow::Result<Option<(usize, u64)>> {
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
                self.held.insert(
                    id.as_str().to_string(),
                    Held { token: owner.clone(), server, cas, at: Instant::now(), expire },
                );
                Ok(Some((server, cas)))
            }
            Reply::Exists | Reply::NotFound | Reply::NotStored => {
                self.held.remove(id.as_str());
                Ok(None)
            }
            other => bail!("memcached server {}: cannot confirm the lock: {other:?}", self.label(server)),
        }
    }

    /// Deletes our lock item if it still carries `cas`.
    fn release(&mut self, id: &SessionId, server: usize, cas: u64) -> anyhow::Result<()> {
        self.held.remove(id.as_str());
        let lkey = self.lock_key(id);
        match self.one(server, format!("md {lkey} C{cas}"), None)? {
            Reply::Error(e) => bail!("memcached server {}: {e}", self.label(server)),
            _ => Ok(()),
        }
    }

    /// Deletes our lock item if it still carries `cas`, without waiting for the answer (it is read
    /// before the connection's next one): called once the session is stored, when nothing the answer
    /// could say changes this request's outcome — a taken-over lock is left alone by the CAS either way.
    /// `before` (the version item's update) goes first on the same connection, so whoever takes the
    /// lock next sees it.
    fn release_unanswered(&mut self, id: &SessionId, server: usize, cas: u64, before: &[(String, Option<String>)]) -> anyhow::Result<()> {
        self.held.remove(id.as_str());
        let lkey = self.lock_key(id);
        let sent = self.conn(server).and_then(|c| {
            for (line, data) in before {
                c.queue(line, data.as_deref().map(str::as_bytes));
            }
            c.queue(&format!("md {lkey} C{cas}"), None);
            c.send_unanswered(before.len() + 1).map_err(|e| e.to_string())
        });
        match sent {
            Ok(()) => Ok(()),
            Err(e) => bail!("{}", self.write_failed(server, e)),
        }
    }

    /// Writes (or touches) the session on its servers, then releases the lock — in one pipelined
    /// round trip when the lock and the only copy live on the same server (one connection keeps the
    /// order), else only after the data is stored everywhere, and then without waiting for the answer,
    /// preceded by the version item's update when the lock lives on another server (`proven_current`).
    fn store_and_release(
        &mut self,
        id: &SessionId,
        op: &dyn Fn(&str) -> (String, bool),
        data: Option<&[u8]>,
        owner: Option<&Token>,
        exp: u64,
    ) -> anyhow::Result<Saved> {
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        if let Some(d) = data {
            self.check_size(&key, d.len(), &targets)?;
        }
        let lock = match owner {
            Some(o) => match self.confirm(id, o)? {
                Some(l) => Some(l),
                None => return Ok(Saved::LockLost),
            },
            None => None,
        };
        let (line, is_write) = op(&key);
        // A locked write is conditional on the session being as this request read it: the CAS it had
        // (or its absence: add). The read is proven current (`proven_current`), so this refuses a
        // write only when another writer changed the session under our lock (one without locking, or
        // after our lock expired and was taken over).
        let read = self.read_cas.remove(&key).filter(|_| lock.is_some() && is_write);
        let mut reqs: Vec<Req> = targets
            .iter()
            .map(|&s| match read {
                Some((rs, Some(cas))) if rs == s => (s, format!("{line} C{cas}"), data),
                Some((rs, None)) if rs == s => (s, format!("{line} ME"), data),
                _ => (s, line.clone(), data),
            })
            .collect();
        let lkey = self.lock_key(id);
        let together = matches!(lock, Some((ls, _)) if targets == [ls]);
        if let (true, Some((ls, cas))) = (together, lock) {
            reqs.push((ls, format!("md {lkey} C{cas}"), None));
        }
        let replies = self.exec(&reqs);
        let mut stored = 0;
        // The servers this write reached (to undo a refused write's other copies), and the CAS each
        // gave it (for the version item).
        let mut reached = Vec::new();
        let mut errors = Vec::new();
        let mut conflict = Vec::new();
        let mut written = Vec::new();
        for (r, &s) in replies.iter().zip(&targets) {
            match r {
                Ok(Reply::Done(_)) | Ok(Reply::Miss) if !is_write => stored += 1,
                Ok(Reply::Done(f)) => {
                    stored += 1;
                    reached.push(s);
                    if let Some(cas) = f.cas {
                        written.push((self.label(s).to_string(), cas));
                    }
                }
                Ok(Reply::Exists | Reply::NotStored | Reply::NotFound) if is_write => conflict.push(format!(
                    "the session changed on memcached server {} after this request read it (another request \
                     wrote it under this request's lock: one without locking, or after this lock expired); \
                     this request's changes were not saved",
                    self.label(s)
                )),
                Ok(Reply::Error(e)) => errors.push(format!("memcached server {}: {e}", self.label(s))),
                Ok(other) => errors.push(format!("memcached server {}: unexpected reply {other:?}", self.label(s))),
                Err(e) => errors.push(e.clone()),
            }
        }
        if together {
            self.held.remove(id.as_str());
        }
        if let Some(c) = conflict.pop() {
            // Only the replica the session was read from is written conditionally; the copies this
            // refused write left on the others would bring back a session destroyed meanwhile (or
            // outlive the newer write): take them away again.
            let undo: Vec<Req> = reached.iter().map(|&s| (s, format!("md {key}"), None)).collect();
            let _ = self.exec(&undo);
            bail!("{c}");
        }
        if stored == 0 {
            // The lock (if not released in the batch) stays for the session layer to release.
            bail!("{}", errors.join("; "));
        }
        if let (false, Some((ls, cas))) = (together, lock) {
            let mut before = Vec::new();
            if Self::split(ls, &targets) {
                let vkey = self.version_key(id);
                if is_write {
                    let v = version_value(&written);
                    before.push((format!("ms {vkey} {} T{exp}", v.len()), Some(v)));
                } else {
                    before.push((format!("mg {vkey} T{exp}"), None));
                }
            }
            self.release_unanswered(id, ls, cas, &before)?;
        }
        Ok(Saved::Done)
    }

    /// Lists keys with our prefix on every live server (`lru_crawler metadump`).
    fn dump_keys(&mut self, s: usize) -> anyhow::Result<Vec<String>> {
        let prefix = self.o.prefix.clone();
        let lock_prefix = format!("{prefix}lock.");
        let version_prefix = format!("{prefix}ver.");
        let c = self.conn(s).map_err(|e| anyhow!(e))?;
        let lines = c.lines_until_end("lru_crawler metadump all", 2_000_000);
        let lines = match lines {
            Ok(l) => l,
            Err(e) => {
                let msg = self.fail(s, e.to_string());
                bail!(msg)
            }
        };
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

impl Store for MemcachedStore {
    /// Drops pooled connections the server closed while they were idle (it restarted): the request
    /// then connects afresh instead of failing on the stale socket. Not a server failure: the server
    /// is not marked down.
    fn still_valid(&mut self) -> bool {
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

    fn load(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        self.retrying(|s| s.load_once(id, max_lifetime))
    }

    fn lock_and_load(
        &mut self,
        id: &SessionId,
        owner: &Token,
        expire: Duration,
        max_lifetime: Duration,
    ) -> anyhow::Result<Acquire> {
        self.retrying(|s| s.lock_and_load_once(id, owner, expire, max_lifetime))
    }

    fn wait_for_release(&mut self, _id: &SessionId, deadline: Instant, attempt: u32) -> anyhow::Result<()> {
        // A poll is one cheap round trip: 1, 2, then every 3 ms, so a released lock is noticed fast.
        let step = Duration::from_millis((1 + attempt as u64).min(3));
        std::thread::sleep(step.min(deadline.saturating_duration_since(Instant::now())));
        Ok(())
    }

    fn save(&mut self, id: &SessionId, data: &[u8], ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        let (exp, flags) = exptime(ttl);
        let len = data.len();
        self.retrying(|s| {
            s.store_and_release(id, &|key: &str| (format!("ms {key} {len} T{exp} F{flags} c"), true), Some(data), owner, exp)
        })
    }

    fn touch(&mut self, id: &SessionId, ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        let (exp, _) = exptime(ttl);
        self.retrying(|s| s.store_and_release(id, &|key: &str| (format!("mg {key} T{exp}"), false), None, owner, exp))
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> anyhow::Result<()> {
        self.retrying(|s| s.unlock_once(id, owner))
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> anyhow::Result<()> {
        self.retrying(|s| s.destroy_once(id, owner))
    }

    fn lock_holder(&mut self, id: &SessionId) -> anyhow::Result<Option<Token>> {
        let lkey = self.lock_key(id);
        let ls = self.lock_server(id);
        Ok(match self.one(ls, format!("mg {lkey} v"), None)? {
            // php-memcached's "1" is no lock value of ours: None.
            Reply::Value(v, _) => parse_lock(&v).map(|(t, _)| Token::from_stored(t)),
            _ => None,
        })
    }

    fn exists(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<bool> {
        self.retrying(|s| {
            let key = s.key(id)?;
            let targets = s.data_targets(id);
            Ok(s.read_from(&key, &targets, None, max_lifetime, false)?.is_some())
        })
    }
    fn gc(&mut self, max_lifetime: Duration) -> anyhow::Result<u64> {
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
                    errors.push(e.to_string());
                    continue;
                }
            };
            for chunk in keys.chunks(100).take(100) {
                let reqs: Vec<Req> = chunk.iter().map(|k| (s, format!("mg {k} t f c"), None)).collect();
                let replies = self.exec(&reqs);
                let mut dels: Vec<Req> = Vec::new();
                for (k, r) in chunk.iter().zip(replies) {
                    if let Ok(Reply::Done(f)) = r {
                        if too_old(&f, max_lifetime) {
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
            bail!("{}", errors.join("; "));
        }
        Ok(removed)
    }
}

impl MemcachedStore {
    fn load_once(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        self.read_from(&key, &targets, None, max_lifetime, true)
    }

    fn lock_and_load_once(
        &mut self,
        id: &SessionId,
        owner: &Token,
        expire: Duration,
        max_lifetime: Duration,
    ) -> anyhow::Result<Acquire> {
        let key = self.key(id)?;
        let lkey = self.lock_key(id);
        let ls = self.lock_server(id);
        let targets = self.data_targets(id);
        let value = lock_value(owner, expire);
        let add = format!("ms {lkey} {} T{} ME c", value.len(), lock_ttl(expire));
        let (lock_reply, read) = self.lock_and_read(id, ls, add, &value, &key, &targets);
        let cas = match lock_reply {
            Ok(Reply::Done(f)) => f.cas.unwrap_or(0),
            Ok(Reply::NotStored) => {
                // Held: take it over if it expired.
                let (cas, takeable) = match self.one(ls, format!("mg {lkey} v c"), None)? {
                    Reply::Value(v, f) => {
                        let cas = f.cas.unwrap_or(0);
                        let takeable = match parse_lock(&v) {
                            Some((_, deadline)) => unix_ms() > deadline,
                            None => {
                                // Not ours (php-memcached's "1"): its TTL governs, but one that
                                // never expires must not block forever.
                                let seen = self.foreign.entry(lkey.clone()).or_insert((cas, Instant::now()));
                                if seen.0 != cas {
                                    *seen = (cas, Instant::now());
                                }
                                seen.1.elapsed() >= expire
                            }
                        };
                        (cas, takeable)
                    }
                    _ => return Ok(Acquire::Busy),
                };
                if !takeable {
                    return Ok(Acquire::Busy);
                }
                // The take-over is read like a fresh lock: the previous holder's write (if it made one
                // before its lock expired) may reach the data server after this read.
                let set = format!("ms {lkey} {} T{} C{cas} c", value.len(), lock_ttl(expire));
                let (lock_reply, read) = self.lock_and_read(id, ls, set, &value, &key, &targets);
                match lock_reply {
                    Ok(Reply::Done(f)) => {
                        self.foreign.remove(&lkey);
                        let cas = f.cas.unwrap_or(0);
                        return self.locked(id, owner, ls, cas, expire, &key, &targets, read, max_lifetime);
                    }
                    Ok(Reply::Exists | Reply::NotFound | Reply::NotStored) => return Ok(Acquire::Busy),
                    Ok(other) => bail!("memcached server {}: cannot take over the lock: {other:?}", self.label(ls)),
                    Err(e) => bail!(e),
                }
            }
            Ok(Reply::Error(e)) => bail!("memcached server {}: {e}", self.label(ls)),
            Ok(other) => bail!("memcached server {}: unexpected reply {other:?}", self.label(ls)),
            Err(e) => bail!(e),
        };
        self.locked(id, owner, ls, cas, expire, &key, &targets, read, max_lifetime)
    }

    /// One round trip: the lock command (`add` or take-over) on the lock's server and the session's
    /// read on its first data server, pipelined; with the lock on another server, also the version
    /// item, read on the lock's connection right after the lock command. Returns the lock's reply and
    /// the read (the data reply, and the version reply when split).
    fn lock_and_read(
        &mut self,
        id: &SessionId,
        ls: usize,
        lock_cmd: String,
        value: &str,
        key: &str,
        targets: &[usize],
    ) -> (Result<Reply, String>, LockedRead) {
        let mut reqs: Vec<Req> = vec![(ls, lock_cmd, Some(value.as_bytes()))];
        let split = Self::split(ls, targets);
        if split {
            reqs.push((ls, format!("mg {} v", self.version_key(id)), None));
        }
        reqs.push((targets[0], format!("mg {key} v t f c"), None));
        let mut replies = self.exec_lock_and_read(reqs);
        let data = replies.pop().expect("data reply");
        let version = if split { Some(replies.pop().expect("version reply")) } else { None };
        (replies.pop().expect("lock reply"), LockedRead { data, version })
    }

    #[cfg(not(test))]
    fn exec_lock_and_read(&mut self, reqs: Vec<Req>) -> Vec<Result<Reply, String>> {
        self.exec(&reqs)
    }

    /// Tests can make the data server answer first and then run `between` (another request's whole
    /// write and release) before the lock's server sees the lock command: the interleaving two
    /// servers allow and one connection does not.
    #[cfg(test)]
    fn exec_lock_and_read(&mut self, mut reqs: Vec<Req>) -> Vec<Result<Reply, String>> {
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

    fn unlock_once(&mut self, id: &SessionId, owner: &Token) -> anyhow::Result<()> {
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

    fn destroy_once(&mut self, id: &SessionId, owner: Option<&Token>) -> anyhow::Result<()> {
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        let mut reqs: Vec<Req> = targets.iter().map(|&s| (s, format!("md {key}"), None)).collect();
        let ls = self.lock_server(id);
        if Self::split(ls, &targets) {
            // Acknowledged before the lock is released below: the next holder finds no version, so a
            // read of ours served before the deletes is not taken for current (`proven_current`).
            reqs.push((ls, format!("md {}", self.version_key(id)), None));
        }
        let mut replies = self.exec(&reqs);
        replies.truncate(targets.len());
        let errors: Vec<String> = replies
            .into_iter()
            .zip(&targets)
            .filter_map(|(r, &s)| match r {
                Ok(Reply::Error(e)) => Some(format!("memcached server {}: {e}", self.label(s))),
                Ok(_) => None,
                Err(e) => Some(e),
            })
            .collect();
        if errors.len() == targets.len() {
            bail!("{}", errors.join("; "));
        }
        if let Some(o) = owner {
            self.unlock_once(id, o)?;
        }
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
    ) -> anyhow::Result<Acquire> {
        self.held.insert(id.as_str().to_string(), Held { token: owner.clone(), server: ls, cas, at: Instant::now(), expire });
        let (first, order) = match read.version {
            // The read followed the lock command on one connection: it sees every write the previous
            // holder made before releasing.
            None => (Some(read.data), targets.to_vec()),
            Some(version) => self.proven_current(read.data, version, targets),
        };
        match self.read_from(key, &order, first, max_lifetime, true) {
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
        data: Result<Reply, String>,
        version: Result<Reply, String>,
        targets: &[usize],
    ) -> (Option<Result<Reply, String>>, Vec<usize>) {
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
