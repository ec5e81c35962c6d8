//! The storage contract every engine implements (version 2), and the factory that opens one.
//!
//! An engine knows bytes, keys, expiry and its own way of locking one session; it knows nothing of PHP
//! and nothing of the request life cycle (that is `session::Request`). Locking is part of the contract
//! because doing it well is engine-specific: `lock_and_load` and `save` are each one atomic step, so a
//! network engine can do each in one round trip.
//!
//! Every read answers the data with an opaque [`Version`] that the engine supplies, and every write
//! states what it expects to find ([`Expect`]): anything, no session, or the version it read. A write
//! whose expectation fails is refused with what is stored now ([`Written::Conflict`]). Nothing above
//! the engine compares bytes to find a change: a layer may store different bytes for the same data
//! (an encrypting one does, every time).
//!
//! Cross-cutting behaviour (metrics, later compression, encryption, hashed ids) wraps this contract
//! as a layer (`layer/`), which must forward every method.

use std::time::{Duration, Instant};

use crate::id::SessionId;
use crate::lock::Token;

mod engine;
pub mod error;
pub use engine::Engine;
pub mod files;
pub mod layer;
pub mod memcached;
pub mod redis;
pub mod sqlite;
pub mod sqlopts;
pub mod pgsql;
pub mod mysql;
pub mod sqlshared;
pub mod users;

pub use error::{ErrorKind, StoreError};

pub type Result<T> = std::result::Result<T, StoreError>;

/// An engine's version of a stored session: it changes whenever the data may have changed (and may
/// change without that, e.g. on a timestamp refresh; a spurious change only costs a refused or
/// re-merged write, never a lost one). Opaque above the engine; equal versions mean "unchanged since".
/// It is stored with the session, so it survives reconnects and worker restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(u128);

impl Version {
    pub const fn new(v: u128) -> Self {
        Version(v)
    }
    pub const fn get(self) -> u128 {
        self.0
    }
}

/// A session as read: its data and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub data: Vec<u8>,
    pub version: Version,
}

/// What a write expects to find in the store; checked in the same atomic step as the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (last writer wins).
    Any,
    /// No live session: the write creates it, and loses to a concurrent create.
    Absent,
    /// The session as this version: the write loses to any write made since.
    Version(Version),
    /// Written under the caller's lock, which read the session at this version (None: absent). The
    /// lock decides, not the version: a write by a request with locking off since then is
    /// overwritten (last writer wins, as session_proxy.locking=Off promises). An engine whose owner
    /// check is not one atomic step with the write (Memcached, with the lock item on another server
    /// than the data) may use the version as that check, and then answers `Conflict`.
    Held(Option<Version>),
}

impl Expect {
    /// The expectation that a write matches what `read` found.
    pub fn read_as(read: Option<Version>) -> Expect {
        read.map_or(Expect::Absent, Expect::Version)
    }
}

/// How long a session lives without being written or touched. The one expiry model of the contract:
/// an engine enforces it as it can (a TTL set at write, or an age judged at read and at gc). Given
/// once per request (`session::Request::open`), from `session.gc_maxlifetime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expiry {
    pub lifetime: Duration,
}

impl Expiry {
    pub const fn new(lifetime: Duration) -> Self {
        Expiry { lifetime }
    }
}

/// The result of one attempt to take a session's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The lock is ours; the session read under it (None: no such session, or expired).
    Locked(Option<Loaded>),
    /// Another owner holds a live lock; what the engine learnt about it, for `wait_for_release`.
    Busy(Busy),
}

/// What an engine saw of a lock it could not take, handed back to it when waiting (so that no
/// engine keeps it in the handle between calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Busy {
    /// How long the lock has left before it expires, when the engine knows.
    pub expires_in: Option<Duration>,
    /// Held by another handler (phpredis, php-memcached, PHP's files handler), which will not tell us
    /// when it releases.
    pub foreign: bool,
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Applied, at this new version; the lock (if any) is released.
    Done(Version),
    /// Our lock expired and another request took it: nothing was written.
    LockLost,
    /// The expectation failed: nothing was written. Carries the session as stored now (None: absent).
    Conflict(Option<Loaded>),
}

/// What became of a timestamp refresh (lazy write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touched {
    Done,
    /// Our lock expired and another request took it: nothing changed (the newer holder's data stands).
    LockLost,
}

/// Why a write was refused, as counted by the metrics layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    LockLost,
    Conflict,
    TooLarge,
    Storage,
}

/// Request-level facts that only the session layer sees, handed down the stack (engines ignore them;
/// a metrics layer counts them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A request opened the store.
    Started,
    /// A lock was taken after waiting this long (zero: at once).
    LockAcquired { waited: Duration },
    /// The wait for a lock ran out (session_proxy.lock_wait_timeout).
    LockTimedOut { waited: Duration },
    /// A write (or destroy) was refused.
    Refused(Refusal),
    /// An optimistic write was merged onto another request's newer write; `conflicts` keys were
    /// changed by both (settled by session_proxy.merge_conflict).
    Merged { conflicts: usize },
    /// The next `load` is an optimistic read (session_proxy.locking=optimistic): the write that
    /// follows expects the version it returns. An engine may prepare that write (Redis WATCHes the
    /// session's keys, so that the write is a transaction and no script).
    OptimisticRead,
}

/// The pool's side of a store: whether an idle handle may serve another request.
pub trait Pooled {
    /// False once the store saw an error that makes reusing it doubtful; the pool then drops it.
    fn reusable(&self) -> bool {
        true
    }

    /// Asked by the pool before an idle store is reused: false when the storage it is bound to is
    /// gone or was replaced (a deleted or swapped database file), so the pool reconnects instead.
    fn still_valid(&mut self) -> bool {
        true
    }
}

/// The optional capability of deleting idle sessions (engines whose storage expires them by itself,
/// such as Redis, have none).
pub trait Collect {
    /// Deletes sessions idle for longer than `exp`, in bounded batches; returns how many.
    fn gc(&mut self, exp: Expiry) -> Result<u64>;
}

/// How long a listed session has left, as its engine keeps expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// A TTL engine (Redis, Memcached): the time to live left.
    Ttl(Duration),
    /// An engine that judges age at read (SQLite, files): idle for this long.
    Idle(Duration),
    /// Stored without an expiry.
    Unbounded,
}

/// One stored session as an enumeration lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: SessionId,
    pub left: Left,
}

/// One page of an enumeration: the sessions, and where the next page starts (None: this was the last).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub sessions: Vec<Listed>,
    pub next: Option<String>,
}

/// The optional capability of listing the stored sessions page by page (the `session-proxy` tool's
/// copy, ls), in bounded memory whatever the store's size.
pub trait Scan {
    /// About `count` sessions from `cursor` on ("" starts; a page's `next` continues). A cursor is
    /// plain text, so that a copy can write it down and resume; stores whose enumeration is a
    /// stream (Memcached's LRU crawler) cannot resume and start over from "" (see the engine).
    /// Names that are no session id (a hashed long id, another application's keys) are left out.
    fn scan(&mut self, cursor: &str, count: usize) -> Result<Page>;

    /// Marks the session as last written `idle` ago, for engines that judge age at read (a copy keeps
    /// each session's remaining lifetime with it); TTL engines set the TTL at write and do nothing.
    fn set_idle(&mut self, id: &SessionId, idle: Duration) -> Result<()>;

    /// About how many sessions a full scan lists, when the engine can tell cheaply (the tool's
    /// progress shows an ETA with it), else None. Not exact: SQLite counts expired rows not yet
    /// collected, files the `sess_` entries, Redis every key of the database (`DBSIZE`: other
    /// prefixes, lock and version keys too) and Memcached every item (`curr_items`): for the TTL
    /// engines an upper bound.
    fn estimate(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// The optional capability of reading and creating many sessions per round trip (the tool's copy,
/// whose rate a network engine otherwise bounds at one round trip per session). Engines offer it
/// where a pipeline is one write and one wait (Redis standalone or Sentinel, Memcached without
/// replicas); a layer that changes data or ids offers none (it would be bypassed).
pub trait Bulk {
    /// Reads each of `ids` without locking, as `Store::load` does (None: no live session), in one
    /// round trip per server. A failure of the round trip fails the whole batch.
    fn load_many(&mut self, ids: &[SessionId], exp: Expiry) -> Result<Vec<Option<Loaded>>>;

    /// Creates each session where none is live, as `Store::save` with `Expect::Absent` and no owner
    /// does: `Ok(true)` created, `Ok(false)` one was there and is kept (never overwritten). One round
    /// trip per server for the batch; each item gets its own answer (a session too large fails alone).
    fn create_many(&mut self, items: &[(&SessionId, &[u8], Expiry)]) -> Vec<Result<bool>>;
}

pub trait Store: Pooled + Send {
    /// Where this store lives, for messages (`sqlite:///path`, `files:///dir`); never contains secrets.
    fn describe(&self) -> String;

    /// Reads a live session without locking.
    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>>;

    /// One attempt to take `id`'s lock for `owner` and read the session under it, as one atomic step.
    /// A lock whose holder vanished must be free after `lock_expire` at the latest.
    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire>;

    /// Waits until `id`'s lock may have been released, returning no later than `deadline`. `busy` is
    /// what the failed attempt reported; `attempt` counts the waits so far. The default backs off from
    /// 1 ms to 16 ms; engines that can be told of a release (a notification, a kernel lock) override it.
    fn wait_for_release(&mut self, _id: &SessionId, _busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        back_off(deadline, attempt);
        Ok(())
    }

    /// The token of the request holding `id`'s lock, when the lock records one; asked while waiting,
    /// so that a holder that died on this host frees the lock at once (`Token::holder_is_dead`).
    /// None: free, held without a token of ours (another handler's lock), or the engine's locks die
    /// with their process anyway (files: flock).
    fn lock_holder(&mut self, _id: &SessionId) -> Result<Option<Token>> {
        Ok(None)
    }

    /// Writes `data` if the store holds what `expect` says. With `owner`, the write happens only while
    /// `owner` still holds the lock, and the lock is released in the same step (also when the write
    /// is refused for a conflict).
    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written>;

    /// Refreshes the expiry of unchanged data (lazy_write). Same lock rules as `save`.
    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched>;

    /// Releases `owner`'s lock without writing; a lock held by someone else is left alone. That makes it
    /// a compare-and-delete: with the token `lock_holder` reported, it breaks exactly that holder's lock
    /// (and not one another request took since), which is how a dead holder's lock is freed.
    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()>;

    /// Deletes the session and the lock `owner` holds on it.
    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()>;

    /// Whether a live session exists (strict mode, id collision checks).
    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool>;

    /// The store's garbage collector, if it needs one.
    fn collector(&mut self) -> Option<&mut dyn Collect> {
        None
    }

    /// The store's per-user session index, if it keeps one (`users::Users`; issue 13).
    fn users(&mut self) -> Option<&mut dyn users::Users> {
        None
    }

    /// The id the engine keeps `id` under, which the per-user index takes and lists (`users()`): `id`
    /// itself, but under a hashed-id layer its hash, so that the index never holds a raw id.
    fn storage_id(&self, id: &SessionId) -> SessionId {
        id.clone()
    }

    /// The store's enumeration, if it has one (see `Scan`).
    fn scanner(&mut self) -> Option<&mut dyn Scan> {
        None
    }

    /// The store's batched reads and creates, if it has them (see `Bulk`).
    fn bulk(&mut self) -> Option<&mut dyn Bulk> {
        None
    }

    /// Network round trips this handle made since it was opened (0 for local engines): the metrics
    /// layer counts the difference across each call.
    fn round_trips(&self) -> u64 {
        0
    }

    /// A request-level fact from the session layer (see `Event`). Engines ignore it.
    fn event(&mut self, _e: &Event) {}

    /// What a call got past without failing (the migrate layer's old store being down, a Redis that
    /// may evict bindings), taken once; the session layer reports each as a warning.
    fn take_warnings(&mut self) -> Vec<Caution> {
        Vec::new()
    }
}

/// Something a store call got past without failing, reported as a warning (`Store::take_warnings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caution {
    /// The migrate layer's old store failed; the call went on with the new one alone.
    OldStoreSkipped(StoreError),
    /// The Redis server `at` evicts keys under memory pressure (`maxmemory` > 0 and a
    /// `maxmemory-policy` other than noeviction): a session's binding to its user (its `_USER` key)
    /// can be evicted while the session lives, which would hide it from its user's list and from
    /// "log out everywhere". Told when a session is bound and when a user's sessions are listed.
    MayEvictBindings { at: String, policy: String, maxmemory: u64 },
    /// A destroy deleted a session's copies but those on the Memcached servers `at` (down, or failing
    /// now): one that comes back with its items serves the session again.
    CopiesLeft { at: String },
}

/// Opens the store for an engine with its layers. Errors name the path or host and the cause.
pub fn open(stack: &layer::Stack) -> Result<Box<dyn Store>> {
    let store = connect(&stack.engine).inspect_err(|e| stack.layers.open_failed(&stack.engine, e))?;
    Ok(stack.layers.wrap(&stack.engine, store))
}

/// Opens an engine's store without layers.
pub fn connect(engine: &Engine) -> Result<Box<dyn Store>> {
    match engine {
        Engine::Sqlite(o) => Ok(Box::new(sqlite::SqliteStore::open(o)?)),
        Engine::Files(o) => Ok(Box::new(files::FilesStore::open(o)?)),
        Engine::Memcached(o) => Ok(Box::new(memcached::MemcachedStore::open(o)?)),
        Engine::Redis(o) => Ok(Box::new(redis::RedisStore::open(o)?)),
        Engine::Pgsql(o) => Ok(Box::new(pgsql::PgsqlStore::open(o)?)),
        Engine::Mysql(o) => Ok(Box::new(mysql::MysqlStore::open(o)?)),
    }
}

/// The default wait for a lock's release: sleeps 1 ms doubling to 16 ms, never past `deadline`.
pub(crate) fn back_off(deadline: Instant, attempt: u32) {
    let step = Duration::from_millis(1u64 << attempt.min(4));
    std::thread::sleep(step.min(deadline.saturating_duration_since(Instant::now())));
}

/// Seconds since the Unix epoch, as stored by the engines.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
pub(crate) mod users_tests;
#[cfg(test)]
mod scan_tests;
#[cfg(test)]
mod bulk_tests;
