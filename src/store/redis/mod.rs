//! The Redis engine: standalone servers over TCP or a unix socket, in phpredis' key layout.
//!
//! Keys (phpredis-compatible): data `<prefix><id>`, lock `<prefix><id>_LOCK` (value: our owner token),
//! wake-up list `<prefix><id>_WAKE`, version `<prefix><id>_VER`. Expiry is Redis' own TTL
//! (`session.gc_maxlifetime`), so there is no gc.
//!
//! Versions (the `Store` contract's CAS). A session's version is the pair (nonce, expiry): the nonce
//! is a random 64-bit number that each of our writes stores in the `_VER` key (same TTL as the data),
//! and the expiry is the data key's absolute expiry time in ms (`PEXPIRETIME`, Redis >= 7.0). Every
//! read takes both with the data (see `read_cmds` for why that needs no transaction), and every
//! write checks both in the script that writes.
//! Why not a hash of the value computed by the script (`redis.sha1hex`), which phpredis' writes would
//! move too: the check would pull the stored value into Lua and hash it on every locked write —
//! measured (EVAL of GET + sha1hex, on the loaded 2-core test machine) ~1 ms more per 64 KiB and
//! ~280 ms per 16 MiB, blocking the server, where the write itself is an O(1) RENAME — and the client
//! would hash every value it reads and writes. The pair costs one small key per session (~100-150
//! bytes with its expiry entry) and O(1) per write whatever the size, and still
//! catches phpredis: its writes (SETEX) and touches (EXPIRE) reset the data key's expiry, which moves
//! the version even though phpredis never touches `_VER` (only a phpredis write landing in the same
//! millisecond as ours, with the same lifetime, would go unseen). A random nonce rather than an INCR'd
//! counter: a counter restarts when the key is destroyed or expires, and a stale version from before
//! could then match a new session's (ABA). Our own touch moves the version too (allowed: a spurious
//! change only costs a refused write). Cluster: the `_VER` key takes the data key as its hash tag,
//! like the lock, so all four keys live in one slot while the data key stays phpredis' name.
//!
//! Round trips per request (see `tests::round_trips`):
//! - locking on, standalone/Sentinel: `GETEX` of the per-user index's `_USER` key (users.rs) +
//!   `LOCK` script + `PEXPIRETIME`, `GET` version, `GET` data pipelined in one write (see `read_cmds`); `SET` of a scratch key + `PEXPIRE` of `_USER` + `COMMIT` script (owner and version check, RENAME over the
//!   session, release) in one write — the data never passes through Lua; `TOUCH` refreshes and
//!   releases in one script;
//! - locking on, Cluster: `ACQUIRE` (lock + read) and `SAVE` (owner and version check + write +
//!   release), one script each;
//! - locking off: one read (the same three commands, or the `READ` script on a cluster), one write
//!   (`MULTI SET SET PEXPIRETIME EXEC`: nothing to check; `SAVE` on a cluster); a touch is
//!   `MULTI PEXPIRE PEXPIRE EXEC`. Writes with an expectation go through `COMMIT` as locked ones.
//! - every write and touch also keeps the per-user index's `_USER` key alive (`PEXPIRE`, pipelined
//!   before it; inside `SAVE`/`TOUCH` on a cluster), so a session written without a read that
//!   refreshed it (a Cluster's unlocked read) never outlives its binding (users.rs); except a write
//!   or touch under a lock whose read found no `_USER` key (only the holder binds, and a binding
//!   sets the key's life itself).
//!
//! A waiter blocks on the wake-up list (`BLPOP`), which every release of ours pushes to, bounded by
//! the lock's remaining life and the caller's deadline; a lock held by phpredis (which does not
//! push) is polled every 20 ms as phpredis itself does. What the failed attempt saw of the lock
//! travels in `Busy`, not in the handle.

pub mod dsn;
mod users;
mod scan;
mod watch;
mod wire;
mod resp;
mod bulk;

use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo, RedisConnectionInfo, Value};

use super::{Acquire, Busy, ErrorKind, Event, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError, Touched, Version, Written};
use crate::id::SessionId;
use crate::lock::Token;
pub use dsn::RedisOptions;
use dsn::{Addr, Mode, Node, Verify};

/// Lua that takes the lock KEYS[2] for token ARGV[1] for ARGV[2] ms (or extends it when it is already
/// ours), returning {0, pttl, foreign} when another owner holds it (foreign: a phpredis lock, whose
/// value is "host|pid"). The one definition of taking a lock, shared by ACQUIRE and LOCK.
macro_rules! take_lock {
    () => {
        r#"if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local holder = redis.call('GET', KEYS[2])
  if holder ~= ARGV[1] then
    local foreign = 0
    if holder and string.find(holder, '|', 1, true) then foreign = 1 end
    return {0, redis.call('PTTL', KEYS[2]), foreign}
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
"#
    };
}

/// Lua that releases the lock KEYS[2] and wakes one waiter, if one waits: a waiter registers in the
/// list KEYS[5] (`REGISTER`), and a release moves one registration to the wake-up list KEYS[3] the
/// waiters block on, which then lives ARGV[$wake_ms] ms. Nobody registered: nothing is pushed. The
/// one definition of a release in Lua, shared by every script that ends a lock (COMMIT, SAVE,
/// TOUCH, RELEASE) once it has checked the lock is ours; `watch.rs` sends the same commands in a
/// transaction.
macro_rules! release_and_wake {
    ($wake_ms:literal) => {
        concat!(
            "redis.call('DEL', KEYS[2])\n",
            "if redis.call('LMOVE', KEYS[5], KEYS[3], 'LEFT', 'RIGHT') then redis.call('PEXPIRE', KEYS[3], ARGV[",
            $wake_ms,
            "]) end\n",
        )
    };
}

/// Lua that reads the version of the session KEYS[1] (nonce in KEYS[$ver], '0' when there is none: a
/// session phpredis wrote) as the locals `n`, `t`.
macro_rules! read_version {
    ($ver:literal) => {
        concat!("local n = redis.call('GET', KEYS[", $ver, "]) or '0'\nlocal t = redis.call('PEXPIRETIME', KEYS[1])\n")
    };
}

/// A write script: checks that the lock KEYS[2] is ARGV[1]'s (ARGV[1] = '': no lock), then the
/// expectation (ARGV[4]: 'any' (nothing read), 'absent' (no data key: PEXPIRETIME -2) or 'version'
/// = nonce ARGV[5] and expiry ARGV[6]), then runs `$write`, stores the new nonce ARGV[7] in KEYS[4]
/// for ttl ARGV[2] ms and releases the lock (waking a registered waiter, see `release_and_wake!`).
/// Returns {1, new expiry} when written, {0} when the lock is not ours, and {2, data, n, t} (what is
/// stored now) when the expectation failed — the lock is released then too. `$drop` runs whenever
/// nothing is written (the scratch key of COMMIT).
/// KEYS: data, lock, wake, version, waiters[, scratch]. ARGV: token, ttl ms, wake ms, expect, nonce,
/// expiry, new nonce[, data].
macro_rules! write_script {
    ($drop:literal, $write:literal) => {
        concat!(
            "\nif ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then\n",
            $drop,
            "  return {0}\nend\n",
            "if ARGV[4] ~= 'any' then\n",
            read_version!("4"),
            "if not ((ARGV[4] == 'absent' and t == -2)\n",
            "    or (ARGV[4] == 'version' and n == ARGV[5] and t == tonumber(ARGV[6]))) then\n",
            $drop,
            "  if ARGV[1] ~= '' then\n",
            release_and_wake!("3"),
            "  end\n",
            "  return {2, redis.call('GET', KEYS[1]), n, t}\nend\nend\n",
            $write,
            "redis.call('SET', KEYS[4], ARGV[7], 'PX', ARGV[2])\n",
            "if ARGV[1] ~= '' then\n",
            release_and_wake!("3"),
            "end\n",
            "return {1, redis.call('PEXPIRETIME', KEYS[1])}\n"
        )
    };
}

/// Takes the lock (or finds it is already ours) and reads the data and its version in one step
/// (Cluster). KEYS: data, lock, wake, version. ARGV: token, lock expiry in ms.
/// Returns {1, data, n, t} when locked, {0, pttl, foreign} when another owner holds it.
/// KEYS[5]: the session's user key (per-user index), read and kept alive for ARGV[3] ms (`GETEX`).
const ACQUIRE: &str = concat!(
    "\n",
    take_lock!(),
    read_version!("4"),
    "return {1, redis.call('GET', KEYS[1]), n, t, redis.call('GETEX', KEYS[5], 'PX', ARGV[3])}\n"
);

/// The data and its version in one step (Cluster, where the router sends one command at a time).
/// KEYS: data, version — only the keys it reads, so that while its slot migrates it is
/// served by whichever node holds both (a multi-key command naming a missing key gets TRYAGAIN).
/// Returns {data, n, t}.
/// (Not the user key: a key that does not exist yet would make it a TRYAGAIN during a migration.)
const READ: &str = concat!("\n", read_version!("2"), "return {redis.call('GET', KEYS[1]), n, t}\n");

/// The write of standalone servers when no WATCH holds for it (`watch.rs`): the data was written to
/// a scratch key (KEYS[6]) by a `SET` sent in the same write (pipelined); if the lock and the
/// expectation hold it becomes the session (RENAME, O(1)), otherwise it is dropped.
const COMMIT: &str = write_script!(
    "  redis.call('DEL', KEYS[6])\n",
    "redis.call('RENAME', KEYS[6], KEYS[1])\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
);

/// Life of a scratch key should the COMMIT after it never arrive (a connection lost in between).
const SCRATCH_LIFE_MS: &[u8] = b"60000";

/// The write of a cluster: the data is ARGV[8]. A written session's user key (KEYS[6], per-user
/// index, in the session's slot) is kept alive for ARGV[9] ms (`users::user_key_ms`): a Cluster's
/// unlocked read does not name it, so without this a session written with locking off or optimistic
/// would outlive its `_USER` and drop out of its user's list.
const SAVE: &str = write_script!("", "redis.call('SET', KEYS[1], ARGV[8], 'PX', ARGV[2])\nredis.call('PEXPIRE', KEYS[6], ARGV[9])\n");

/// Refreshes the TTL of the data and its version, under our lock (ARGV[1]; '' for none) which it
/// releases, and keeps the session's user key (KEYS[6], per-user index) alive for ARGV[4] ms.
/// KEYS: data, lock, wake, version, waiters, user. ARGV: token, ttl ms, wake ms, user key ms.
/// Returns 1, or 0 when the lock is not ours.
const TOUCH: &str = concat!(r#"
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[6], ARGV[4])
if ARGV[1] ~= '' then
"#, release_and_wake!("3"), "end\nreturn 1\n");

/// Releases our lock (if it still is ours), optionally deleting the data and its version.
/// KEYS: data, lock, wake, version, waiters. ARGV: token, wake ms, "1" to delete the data.
const RELEASE: &str = concat!(r#"
if ARGV[3] == '1' then redis.call('DEL', KEYS[1], KEYS[4]) end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
"#, release_and_wake!("2"), "return 1\n");

/// A waiter's registration before it blocks on the wake-up list (sent with `EVAL`, so that it never
/// meets NOSCRIPT in front of the blocking BLPOP): one entry in KEYS[2] (at most 64 kept), which a
/// release moves to the wake-up list KEYS[3] (`release_and_wake!`); if the lock KEYS[1] is gone
/// already (released between the failed attempt and now) a wake-up is pushed at once, so that the
/// BLPOP sent behind this returns. Entries and wake-ups live ARGV[1] ms (longer than one block).
const REGISTER: &str = r#"
redis.call('RPUSH', KEYS[2], 1)
redis.call('LTRIM', KEYS[2], -64, -1)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('RPUSH', KEYS[3], 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
return 1
"#;

/// How long a wake-up token waits for a waiter to pop it.
const WAKE_LIFE_MS: u64 = 2000;
/// Poll interval while phpredis (which sends no wake-up) holds the lock: phpredis' own.
const FOREIGN_POLL: Duration = Duration::from_millis(20);
/// Longest single block on the wake-up list: a safety net should a wake-up be lost (a waiter that
/// popped it died before taking the lock).
const MAX_BLOCK: Duration = Duration::from_millis(500);
/// The largest value Redis accepts by default (`proto-max-bulk-len`, 512 MiB): a larger session is
/// refused before anything is sent.
const MAX_VALUE: usize = 512 << 20;

struct Script {
    code: &'static str,
    sha: String,
}

impl Script {
    fn new(code: &'static str) -> Self {
        Script { code, sha: redis::Script::new(code).get_hash().to_string() }
    }
}

struct Scripts {
    commit: Script,
    acquire: Script,
    read: Script,
    save: Script,
    touch: Script,
    release: Script,
}

fn scripts() -> &'static Scripts {
    static S: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    S.get_or_init(|| Scripts {
        commit: Script::new(COMMIT),
        acquire: Script::new(ACQUIRE),
        read: Script::new(READ),
        save: Script::new(SAVE),
        touch: Script::new(TOUCH),
        release: Script::new(RELEASE),
    })
}

/// A connection to one server, or to a whole cluster (redis-rs routes by key, follows MOVED/ASK and
/// refreshes its slot map after a failover).
enum Link {
    /// A plain TCP or unix socket connection (busy-polling reads, see `crate::net`).
    Plain(wire::Wire),
    /// A TLS connection.
    Single(redis::Connection),
    /// Boxed: the cluster client is 4x the size of the other links.
    Cluster(Box<redis::cluster::ClusterConnection<NodeConn>>),
}

/// How long a cluster command answered TRYAGAIN is retried: Redis says it while a slot is being
/// migrated and a multi-key command (our lock and save scripts) finds only some of its keys on the
/// node. Nothing was run; the answer changes once the keys have moved and the slot is assigned
/// (`CLUSTER SETSLOT … NODE`), which for a slot of sessions takes milliseconds.
const TRYAGAIN_WAIT: Duration = Duration::from_secs(5);

thread_local! {
    /// The TLS settings (a node standing for the cluster's shared options) that `NodeConn::connect`
    /// uses for every node the cluster connects to, set around each cluster call (`TlsScope`):
    /// redis-rs' cluster client cannot carry a CA or client certificate with native-tls.
    static CLUSTER_TLS: std::cell::RefCell<Option<Node>> = const { std::cell::RefCell::new(None) };
}

/// Sets `CLUSTER_TLS` for its lifetime.
struct TlsScope(Option<Node>);

impl TlsScope {
    fn new(node: &Node) -> Self {
        TlsScope(CLUSTER_TLS.with(|t| t.replace(node.tls.as_ref().map(|_| node.clone()))))
    }
}

impl Drop for TlsScope {
    fn drop(&mut self) {
        let prev = self.0.take();
        CLUSTER_TLS.with(|t| *t.borrow_mut() = prev);
    }
}

/// One cluster node's connection: a plain `redis::Connection`, connected with the DSN's TLS settings
/// (CA bundle, client certificate, verification) to whatever node the cluster's slot map names.
struct NodeConn(redis::Connection);

impl redis::cluster::Connect for NodeConn {
    fn connect<T: IntoConnectionInfo>(info: T, timeout: Option<Duration>) -> redis::RedisResult<Self> {
        let info = info.into_connection_info()?;
        let template = CLUSTER_TLS.with(|t| t.borrow().clone());
        let (client, tls_node) = match (template, info.addr().clone()) {
            (Some(node), ConnectionAddr::TcpTls { host, port, .. }) | (Some(node), ConnectionAddr::Tcp(host, port)) => {
                let info = info.set_addr(tls_addr(host.clone(), port, node.tls.as_ref().expect("set with TLS only")));
                let node = Node { addr: Addr::Tcp { host, port }, ..node };
                let client = tls_client(info, &node)
                    .map_err(|e| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "TLS", format!("{e}"))))?;
                (client, Some(node))
            }
            _ => (redis::Client::open(info)?, None),
        };
        let c = match (timeout, tls_node) {
            // Every node of a TLS cluster (the seeds, and nodes found later) is connected with the
            // handshake bounded, as a standalone TLS connection is (`tls_connect`).
            (Some(t), Some(node)) => match tls_connect(client, t) {
                Ok(r) => r?,
                Err(stuck) => return Err(redis::RedisError::from((redis::ErrorKind::Io, "TLS handshake", stuck.detail(&node.addr, t)))),
            },
            (Some(t), None) => client.get_connection_with_timeout(t)?,
            (None, _) => client.get_connection()?,
        };
        Ok(NodeConn(c))
    }

    fn send_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<()> {
        self.0.send_packed_command(cmd)
    }

    fn set_write_timeout(&self, dur: Option<Duration>) -> redis::RedisResult<()> {
        self.0.set_write_timeout(dur)
    }

    fn set_read_timeout(&self, dur: Option<Duration>) -> redis::RedisResult<()> {
        self.0.set_read_timeout(dur)
    }

    fn recv_response(&mut self) -> redis::RedisResult<Value> {
        self.0.recv_response()
    }
}

impl ConnectionLike for NodeConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<Value> {
        self.0.req_packed_command(cmd)
    }

    fn req_packed_commands(&mut self, cmd: &[u8], offset: usize, count: usize) -> redis::RedisResult<Vec<Value>> {
        self.0.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.0.check_connection()
    }

    fn is_open(&self) -> bool {
        self.0.is_open()
    }
}

impl Link {
    fn conn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Link::Plain(c) => c,
            Link::Single(c) => c,
            Link::Cluster(c) => &mut **c,
        }
    }

    fn set_read_timeout(&self, d: Option<Duration>) -> redis::RedisResult<()> {
        match self {
            Link::Plain(c) => c.set_read_timeout(d),
            Link::Single(c) => c.set_read_timeout(d),
            Link::Cluster(c) => c.set_read_timeout(d),
        }
    }

    /// Busy polling on or off (only plain connections poll).
    fn set_polling(&mut self, on: bool) {
        if let Link::Plain(c) = self {
            c.set_polling(on);
        }
    }
}

struct Conn {
    node: Node,
    conn: Option<Link>,
    /// Counts the links made: a WATCH (`watch.rs`) is known to hold only on the link it was sent on.
    gen: u64,
    /// The server may hold a WATCH of ours on this link: a WATCH was sent and no EXEC, UNWATCH or
    /// DISCARD since (never false while one is held; see `exec_batch`).
    watching: bool,
    /// Sentinel: the address of the master this link was made to (`at`).
    master: Option<String>,
    /// When the server was last asked whether it evicts keys (`users.rs`, `probing`).
    evict_asked: Option<std::time::Instant>,
}


pub struct RedisStore {
    opts: RedisOptions,
    conns: Vec<Conn>,
    /// The user key's value as the last read of a session found it (per-user index, `users.rs`):
    /// `bound` answers from it without a round trip. A read cache, replaced by every read.
    last_user: Option<(SessionId, Option<Vec<u8>>)>,
    /// Requests sent and answered (round trips), for tests, benchmarks and the metrics layer.
    round_trips: u64,
    /// The packed command being sent, kept between requests (a buffer, not session state).
    buf: Vec<u8>,
    /// What a WATCH sent by this store's last read or lock covers, while it holds (`watch.rs`).
    watch: Option<watch::Watch>,
    /// The next `load` is an optimistic read (`Event::OptimisticRead`): it WATCHes the session.
    cas_read: bool,
    /// The last `Retry::Watched` call met a demoted master (READONLY): nothing was run.
    demoted: bool,
    /// What calls got past, for `take_warnings` (a server that may evict bindings: `users.rs`).
    cautions: Vec<crate::store::Caution>,
}

/// What a command needs to be retried safely on a fresh connection after a dropped one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Idempotent: run again on a new connection if the pooled one turns out dead.
    Safe,
    /// Not idempotent (a write under a lock that releases it): never run twice.
    Never,
    /// A transaction on what a WATCH covers (watch.rs): never run twice, not even after a failover
    /// (on another link it would check nothing); the caller falls back to a script (`demoted`).
    Watched,
}

/// A TLS address checked as `t.verify` says.
fn tls_addr(host: String, port: u16, t: &dsn::Tls) -> ConnectionAddr {
    let mut a = ConnectionAddr::TcpTls { host, port, insecure: t.verify == Verify::None, tls_params: None };
    if t.verify == Verify::Ca {
        a.set_danger_accept_invalid_hostnames(true);
    }
    a
}

/// The kind of a redis-rs error, decided where it arises: timeouts, refused or dropped connections
/// (and failed authentication or TLS set-up: the server cannot be used), malformed answers, and the
/// server's own error answers.
fn kind_of(e: &redis::RedisError) -> ErrorKind {
    use redis::ErrorKind as K;
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
        ErrorKind::Unavailable
    } else {
        match e.kind() {
            K::AuthenticationFailed | K::InvalidClientConfig | K::ClusterConnectionNotFound | K::MasterNameNotFoundBySentinel | K::Io => {
                ErrorKind::Unavailable
            }
            K::Parse | K::UnexpectedReturnType => ErrorKind::Corrupt,
            _ => ErrorKind::Backend,
        }
    }
}

/// A redis-rs error at `at`, in the words `detail` gives.
fn redis_err(at: impl Into<String>, e: &redis::RedisError, detail: String) -> StoreError {
    StoreError::new(kind_of(e), at, detail)
}

/// A malformed answer from `at`.
fn corrupt(at: impl Into<String>, detail: String) -> StoreError {
    StoreError::new(ErrorKind::Corrupt, at, detail)
}

fn conn_info(node: &Node) -> Result<ConnectionInfo> {
    let addr = match (&node.addr, &node.tls) {
        (Addr::Tcp { host, port }, None) => ConnectionAddr::Tcp(host.clone(), *port),
        (Addr::Tcp { host, port }, Some(t)) => tls_addr(host.clone(), *port, t),
        (Addr::Unix(p), _) => ConnectionAddr::Unix(p.clone()),
    };
    let mut redis = RedisConnectionInfo::default().set_db(node.db).set_skip_set_lib_name();
    if let Some(u) = &node.username {
        redis = redis.set_username(u);
    }
    if let Some(p) = &node.password {
        redis = redis.set_password(p);
    }
    let info = addr
        .into_connection_info()
        .map_err(|e| redis_err(node.addr.to_string(), &e, format!("{}: {e}", node.addr)))?
        .set_redis_settings(redis)
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    Ok(info)
}

/// A redis error as an operator reads it: never the password (redis-rs does not put it in errors).
fn explain(e: &redis::RedisError, node: &Node) -> String {
    if e.is_timeout() {
        format!("no answer within {:.3} s (read_timeout)", node.read_timeout.as_secs_f64())
    } else {
        e.to_string()
    }
}

fn connect_cluster(o: &RedisOptions) -> Result<redis::cluster::ClusterConnection<NodeConn>> {
    let seeds = &o.nodes;
    let first = &seeds[0];
    let infos = seeds.iter().map(conn_info).collect::<Result<Vec<_>>>()?;
    let mut b = redis::cluster::ClusterClientBuilder::new(infos)
        .connection_timeout(first.connect_timeout)
        .response_timeout(first.read_timeout)
        .tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true))
        .retries(3)
        // redis-rs sleeps at least 1.28 s before each retry of TRYAGAIN/CLUSTERDOWN by default: a
        // request would stall that long on a slot migration. Short waits here (10–80 ms); a longer
        // migration is waited out by `run` (TRYAGAIN_WAIT).
        .min_retry_wait(10)
        .max_retry_wait(200)
        .retry_wait_formula(10, 2);
    if let Some(u) = &first.username {
        b = b.username(u);
    }
    if let Some(p) = &first.password {
        b = b.password(p);
    }
    if first.tls.as_ref().is_some_and(|t| t.verify == Verify::Ca) {
        b = b.danger_accept_invalid_hostnames(true);
    }
    // Named as the DSN names it: redis-cluster://h:p,… or rediss-cluster://h:p,…
    let what = o.describe();
    let client = b.build().map_err(|e| redis_err(&what, &e, format!("{what}: {}", explain(&e, first))))?;
    let _tls = TlsScope::new(first);
    let c = client
        .get_generic_connection::<NodeConn>()
        .map_err(|e| redis_err(&what, &e, format!("{what}: cannot connect: {}", explain(&e, first))))?;
    let t = Some(first.read_timeout);
    c.set_read_timeout(t).and_then(|_| c.set_write_timeout(t)).map_err(|e| redis_err(&what, &e, format!("cluster: {e}")))?;
    Ok(c)
}

/// Asks the Sentinels, in order, for the current master of `name`, and connects to it (over TLS when
/// the Sentinels are: `rediss-sentinel://`).
/// Answers the link and the master's address (host:port), which names the master in later errors.
fn connect_via_sentinels(o: &RedisOptions, name: &str) -> Result<(Link, String)> {
    let auth = &o.sentinel_auth;
    let mut why = Vec::new();
    for s in &o.nodes {
        // Sentinels are asked with their own credentials (sentinel_user/sentinel_password), never the
        // master's, and without its database.
        let asked = Node { username: auth.username.clone(), password: auth.password.clone(), db: 0, ..s.clone() };
        let addr: redis::RedisResult<Option<(String, u16)>> = match connect(&asked) {
            Ok(mut c) => redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(name).query(c.conn()),
            Err(e) => {
                why.push(format!("Sentinel {e}"));
                continue;
            }
        };
        match addr {
            Ok(Some((host, port))) => {
                let master = Node { addr: Addr::Tcp { host, port }, ..s.clone() };
                // Named as the master, at the master (the kind is the master's failure).
                return connect(&master).map(|l| (l, master.addr.to_string())).map_err(|e| {
                    StoreError::new(e.kind(), e.at(), format!("master {name:?} (from Sentinel {}): {e}", s.addr))
                });
            }
            Ok(None) => why.push(format!("Sentinel {} knows no master {name:?}", s.addr)),
            Err(e) => why.push(format!("Sentinel {}: {}", s.addr, explain(&e, s))),
        }
    }
    // Every Sentinel failed or knew no such master: the service cannot be reached, at the Sentinels.
    Err(StoreError::new(
        ErrorKind::Unavailable,
        o.describe(),
        format!("{}: no Sentinel named the master: {}", o.describe(), why.join("; ")),
    ))
}

/// A client for `info` with `node`'s TLS files (CA bundle, client certificate), read now so that a
/// renewed certificate is picked up by the next connection.
fn tls_client(info: ConnectionInfo, node: &Node) -> Result<redis::Client> {
    Ok(match &node.tls {
        Some(t) if t.ca.is_some() || t.cert.is_some() => {
            let read = |p: &std::path::PathBuf, what: &str| {
                std::fs::read(p).map_err(|e| {
                    StoreError::io(p.display().to_string(), &e, format!("{}: cannot read the TLS {what} {}: {e}", node.addr, p.display()))
                })
            };
            let client_tls = match (&t.cert, &t.key) {
                (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                    client_cert: read(c, "certificate (cert)")?,
                    client_key: read(k, "key (key)")?,
                }),
                _ => None,
            };
            let root_cert = t.ca.as_ref().map(|c| read(c, "CA bundle (ca)")).transpose()?;
            let client = redis::Client::build_with_tls(info, redis::TlsCertificates { client_tls, root_cert })
                .map_err(|e| redis_err(node.addr.to_string(), &e, format!("{}: {}", node.addr, explain(&e, node))))?;
            // build_with_tls replaces the address' TLS parameters: verify=ca (no host name check) again.
            let mut info = client.get_connection_info().clone();
            let mut addr = info.addr().clone();
            addr.set_danger_accept_invalid_hostnames(t.verify == Verify::Ca);
            info = info.set_addr(addr);
            redis::Client::open(info).map_err(|e| redis_err(node.addr.to_string(), &e, format!("{}: {}", node.addr, explain(&e, node))))?
        }
        _ => redis::Client::open(info).map_err(|e| redis_err(node.addr.to_string(), &e, format!("{}: {}", node.addr, explain(&e, node))))?,
    })
}

fn connect(node: &Node) -> Result<Link> {
    let at = node.addr.to_string();
    let connect_error = |e: redis::RedisError| {
        if e.is_timeout() {
            let detail = format!("{}: cannot connect within {:.3} s (timeout)", node.addr, node.connect_timeout.as_secs_f64());
            StoreError::new(ErrorKind::Timeout, &at, detail)
        } else {
            redis_err(&at, &e, format!("{}: cannot connect: {}", node.addr, explain(&e, node)))
        }
    };
    if node.tls.is_none() {
        return wire::Wire::connect(node).map(Link::Plain).map_err(connect_error);
    }
    let client = tls_client(conn_info(node)?, node)?;
    let c = match tls_connect(client, node.connect_timeout) {
        Ok(r) => r.map_err(connect_error)?,
        Err(stuck) => return Err(StoreError::new(ErrorKind::Timeout, &at, stuck.detail(&node.addr, node.connect_timeout))),
    };
    let t = Some(node.read_timeout);
    c.set_read_timeout(t).and_then(|_| c.set_write_timeout(t)).map_err(|e| redis_err(&at, &e, format!("{}: {e}", node.addr)))?;
    Ok(Link::Single(c))
}

/// TLS handshakes of this process still running after their deadline. redis-rs bounds the TCP connect
/// by the timeout but not the handshake after it, and a plain Redis port that gets a ClientHello
/// waits for the end of a command that never comes: a `rediss://` DSN naming a plain port would hang
/// the request for good. So the connect runs in a thread of its own and the request waits for it at
/// most twice the connect timeout (the TCP connect, then the handshake). A thread left behind ends
/// when the server closes the connection; past `MAX_STUCK` of them the engine fails at once.
static STUCK_HANDSHAKES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const MAX_STUCK: usize = 4;

enum Stuck {
    /// This handshake ran out of time.
    Now,
    /// Too many earlier ones are still stuck; this one was not tried.
    Before,
}

impl Stuck {
    /// What went wrong with the handshake to `addr` (connect timeout `timeout`).
    fn detail(&self, addr: &impl std::fmt::Display, timeout: Duration) -> String {
        match self {
            Stuck::Now => format!(
                "{addr}: the TLS handshake did not finish within {:.3} s (timeout; is this a TLS port? a plain Redis never answers one)",
                (2 * timeout).as_secs_f64()
            ),
            Stuck::Before => format!(
                "{addr}: earlier TLS handshakes of this process never finished (is this a TLS port? a plain Redis never answers one); not tried again"
            ),
        }
    }
}

fn tls_connect(client: redis::Client, timeout: Duration) -> std::result::Result<redis::RedisResult<redis::Connection>, Stuck> {
    use std::sync::atomic::Ordering::SeqCst;
    if STUCK_HANDSHAKES.load(SeqCst) >= MAX_STUCK {
        return Err(Stuck::Before);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("sp-tls-connect".into()).spawn(move || {
        if tx.send(client.get_connection_with_timeout(timeout)).is_err() {
            // The request gave up on this handshake and counted it as stuck: it has ended now.
            STUCK_HANDSHAKES.fetch_sub(1, SeqCst);
        }
    });
    if let Err(e) = spawned {
        return Ok(Err(redis::RedisError::from(e)));
    }
    match rx.recv_timeout(2 * timeout) {
        Ok(r) => Ok(r),
        Err(_) => {
            STUCK_HANDSHAKES.fetch_add(1, SeqCst);
            // It may have finished just now (then it has sent, and will not decrement).
            match rx.try_recv() {
                Ok(r) => {
                    STUCK_HANDSHAKES.fetch_sub(1, SeqCst);
                    Ok(r)
                }
                Err(_) => Err(Stuck::Now),
            }
        }
    }
}

/// Whether a key has a Redis Cluster hash tag: a `{` followed later by a `}` with something between.
fn has_hash_tag(key: &str) -> bool {
    key.find('{').is_some_and(|open| key[open + 1..].find('}').is_some_and(|close| close > 0))
}


/// RESP encoding of one command, appended to `buf`.
fn pack_more(buf: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(buf, b'*', args.len());
    for a in args {
        push_header(buf, b'$', a.len());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
}

/// `<kind><n>\r\n`: the digits written by hand, not by `write!` (core::fmt was the largest single
/// cost of packing a cycle's commands in callgrind: ~40 instructions per digit string).
fn push_header(buf: &mut Vec<u8>, kind: u8, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.push(kind);
    buf.extend_from_slice(&digits[i..]);
    buf.extend_from_slice(b"\r\n");
}

fn ms(d: Duration) -> Vec<u8> {
    (d.as_millis().max(1) as u64).to_string().into_bytes()
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

impl RedisStore {
    /// Connects to every server of the DSN (one, unless phpredis' server list is used) lazily: the
    /// first use connects, so a dead server costs at most its connect timeout, and only when needed.
    pub fn open(o: &RedisOptions) -> Result<Self> {
        let conns = match o.mode {
            Mode::Standalone => o.nodes.iter().map(|n| Conn { node: n.clone(), conn: None, gen: 0, watching: false, master: None, evict_asked: None }).collect(),
            // One connection (to the cluster, or to the current master); its `node` stands for the
            // shared options.
            Mode::Cluster | Mode::Sentinel(_) => vec![Conn { node: o.nodes[0].clone(), conn: None, gen: 0, watching: false, master: None, evict_asked: None }],
        };
        let mut s = RedisStore { opts: o.clone(), conns, last_user: None, round_trips: 0, buf: Vec::new(), watch: None, cas_read: false, demoted: false, cautions: Vec::new() };
        // Connect now when there is one target, so that `open` reports an unreachable server.
        if s.conns.len() == 1 {
            let (link, master) = s.link_for(0)?;
            s.conns[0].conn = Some(link);
            s.conns[0].master = master;
        }
        Ok(s)
    }

    /// A new link to server `idx`, and (Sentinel) the master's address.
    fn link_for(&self, idx: usize) -> Result<(Link, Option<String>)> {
        Ok(match &self.opts.mode {
            Mode::Standalone => (connect(&self.conns[idx].node)?, None),
            Mode::Cluster => (Link::Cluster(Box::new(connect_cluster(&self.opts)?)), None),
            Mode::Sentinel(name) => connect_via_sentinels(&self.opts, name).map(|(l, m)| (l, Some(m)))?,
        })
    }

    fn node_for(&self, id: &SessionId) -> usize {
        match self.opts.mode {
            Mode::Standalone => dsn::pick_node(&self.opts.nodes, id.as_str().as_bytes()),
            Mode::Cluster | Mode::Sentinel(_) => 0,
        }
    }

    /// Where an error of server `idx` is: its host:port (or socket); Sentinel: the master the link
    /// was made to, with the service; a cluster as a whole (redis-rs' cluster client routes each
    /// command itself and does not say which node failed; its error text often does).
    fn at(&self, idx: usize) -> String {
        match &self.opts.mode {
            Mode::Sentinel(name) => match &self.conns[idx].master {
                Some(m) => format!("{m} (master {name:?} of {})", self.opts.describe()),
                None => self.opts.describe(),
            },
            Mode::Cluster => self.opts.describe(),
            Mode::Standalone => self.conns[idx].node.addr.to_string(),
        }
    }

    /// The keys of a session. Standalone: phpredis' `<key>`, `<key>_LOCK`, and ours `<key>_WAKE`,
    /// `<key>_VER`. Cluster: the data key stays phpredis' (RedisCluster's session handler uses the
    /// same), and the other keys carry the data key as their hash tag — `{<key>}_LOCK` — so all four
    /// live in one slot.
    fn keys(&self, idx: usize, id: &SessionId) -> Keys {
        let data = format!("{}{}", self.conns[idx].node.prefix, id.as_str());
        let base = match self.opts.mode {
            Mode::Cluster if !has_hash_tag(&data) => format!("{{{data}}}"),
            _ => data.clone(),
        };
        let key = |suffix: &str| format!("{base}{suffix}").into_bytes();
        Keys { lock: key("_LOCK"), wake: key("_WAKE"), ver: key("_VER"), wait: key("_WAIT"), user: key("_USER"), data: data.into_bytes() }
    }

    /// Runs `f` on server `idx`'s connection, connecting first if needed. A pooled connection found
    /// dead (the server restarted, an idle timeout) is replaced and, for `Retry::Safe`, the command is
    /// sent again once. Any error drops the connection: its state is unknown.
    fn run<T>(&mut self, idx: usize, retry: Retry, mut f: impl FnMut(&mut Link, &mut u64) -> redis::RedisResult<T>) -> Result<T> {
        let mut fresh = false;
        let mut tryagain: Option<(Instant, Duration)> = None;
        loop {
            if self.conns[idx].conn.is_none() {
                let (link, master) = self.link_for(idx)?;
                self.conns[idx].conn = Some(link);
                self.conns[idx].master = master;
                self.conns[idx].gen += 1;
                self.conns[idx].watching = false;
                fresh = true;
            }
            // `at` is formatted only for an error: it cost an allocation and a Display per command.
            let r = {
                let c = &mut self.conns[idx];
                let conn = c.conn.as_mut().expect("connected above");
                let _tls = matches!(conn, Link::Cluster(_)).then(|| TlsScope::new(&c.node));
                f(conn, &mut self.round_trips)
            };
            match r {
                Ok(v) => return Ok(v),
                // A slot being migrated: the command was not run (TRYAGAIN; or ASK/MOVED when
                // redis-rs' own retries ran out between the two nodes). Wait (20 ms, doubling, at
                // most 200 ms) and send it again, for TRYAGAIN_WAIT at most; redis-rs follows the ASK.
                Err(e)
                    if matches!(e.code(), Some("TRYAGAIN" | "ASK" | "MOVED")) && matches!(self.opts.mode, Mode::Cluster) =>
                {
                    let (since, step) = tryagain.get_or_insert((Instant::now(), Duration::from_millis(10)));
                    if since.elapsed() >= TRYAGAIN_WAIT {
                        // The slot cannot be served for now.
                        let at = self.at(idx);
                        let detail = format!("{at}: slot still being migrated after {} s: {e}", TRYAGAIN_WAIT.as_secs());
                        return Err(StoreError::new(ErrorKind::Unavailable, at, detail));
                    }
                    *step = (*step * 2).min(Duration::from_millis(200));
                    std::thread::sleep(*step);
                }
                Err(e) => {
                    let at = self.at(idx);
                    let c = &mut self.conns[idx];
                    let dropped = e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error();
                    // The server became a replica (a Sentinel failover): nothing was written, since a
                    // script fails at its first write; ask the Sentinels again and retry, even a write.
                    let demoted = e.code() == Some("READONLY") && matches!(self.opts.mode, Mode::Sentinel(_));
                    if dropped || demoted || e.is_timeout() {
                        c.conn = None;
                    }
                    if demoted && retry == Retry::Watched {
                        // Nothing ran (a replica refuses the transaction's writes: EXECABORT).
                        self.demoted = true;
                    } else if ((dropped && !e.is_timeout() && retry == Retry::Safe) || demoted) && !fresh {
                        continue;
                    }
                    let detail = format!("{at}: {}", explain(&e, &c.node));
                    return Err(redis_err(at, &e, detail));
                }
            }
        }
    }

    /// Sends `cmds` in one write and reads their answers: one round trip. Standalone connections get
    /// the commands packed into a buffer the store keeps, so a large session costs no allocation per
    /// request on the way out. Any error answer fails the whole call (the bool: one of them was
    /// NOSCRIPT). Pipelines of more than one command are only used on standalone connections.
    fn exec_many(&mut self, idx: usize, retry: Retry, cmds: &[&[&[u8]]]) -> std::result::Result<Vec<Value>, (StoreError, bool)> {
        self.exec_batch(idx, retry, cmds, false)
    }

    /// `exec_many`, keeping track of WATCH (see `watch.rs`): a transaction (MULTI) sent on a link that
    /// may hold a WATCH is preceded by an UNWATCH in the same write, unless `watched` (the write that
    /// the WATCH was for), so that a WATCH never spoils another request's or another step's write.
    fn exec_batch(&mut self, idx: usize, retry: Retry, cmds: &[&[&[u8]]], watched: bool) -> std::result::Result<Vec<Value>, (StoreError, bool)> {
        let was_watching = self.conns[idx].watching;
        let unwatch = !watched && was_watching && cmds.iter().any(|c| c.first() == Some(&&b"MULTI"[..]));
        // The last command of the batch that changes what the server watches.
        let last = cmds.iter().rev().find_map(|c| match c.first().copied() {
            Some(b"WATCH") => Some(true),
            Some(b"EXEC" | b"UNWATCH" | b"DISCARD") => Some(false),
            _ => None,
        });
        if unwatch || last.is_some() {
            // Whatever the store knew to be watched is not any more (a new WATCH is recorded by its sender).
            self.watch = None;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if unwatch {
            pack_more(&mut buf, &[b"UNWATCH"]);
        }
        for c in cmds {
            pack_more(&mut buf, c);
        }
        #[cfg(test)]
        SENT.with(|s| s.borrow_mut().extend(cmds.iter().map(|c| c.iter().take(2).map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" "))));
        let offset = usize::from(unwatch);
        let mut noscript = false;
        let r = self.run(idx, retry, |c, rt| {
            *rt += 1;
            let r = match c {
                Link::Plain(_) | Link::Single(_) => c.conn().req_packed_commands(&buf, offset, cmds.len()).and_then(|vs| {
                    vs.into_iter().map(Value::extract_error).collect::<redis::RedisResult<Vec<Value>>>()
                }),
                Link::Cluster(conn) => {
                    let args = cmds[0];
                    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap_or("PING"));
                    args[1..].iter().for_each(|a| {
                        cmd.arg(*a);
                    });
                    cmd.query::<Value>(conn).map(|v| vec![v])
                }
            };
            noscript = matches!(&r, Err(e) if e.code() == Some("NOSCRIPT"));
            r
        });
        // Never false while the server may hold a WATCH: after a failure, a WATCH of the batch may
        // have run (a dropped link starts again from false in `run`).
        self.conns[idx].watching = match (&r, last) {
            (Ok(_), Some(w)) => w,
            (Ok(_), None) => was_watching && !unwatch,
            (Err(_), _) => was_watching || last.is_some() || cmds.iter().any(|c| c.first() == Some(&&b"WATCH"[..])),
        };
        // Keep the buffer for the next request, unless a huge session made it huge.
        if buf.capacity() <= 4 << 20 {
            self.buf = buf;
        }
        r.map_err(|e| (e, noscript))
    }

    /// Sends `before`, script `s`, then `after` in one write (one round trip); on NOSCRIPT (the
    /// server lost its script cache: a restart, SCRIPT FLUSH, a new cluster node), all once more with
    /// the script's body. Returns every answer, in order.
    #[allow(clippy::too_many_arguments)]
    fn pipeline_script(
        &mut self,
        idx: usize,
        retry: Retry,
        before: &[&[&[u8]]],
        s: &'static Script,
        keys: &[&[u8]],
        args: &[&[u8]],
        after: &[&[&[u8]]],
    ) -> Result<Vec<Value>> {
        let n = keys.len().to_string();
        let mut call: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        call.extend_from_slice(&[b"EVALSHA", s.sha.as_bytes(), n.as_bytes()]);
        call.extend_from_slice(keys);
        call.extend_from_slice(args);
        let mut first = true;
        loop {
            let mut refs: Vec<&[&[u8]]> = before.to_vec();
            refs.push(&call);
            refs.extend_from_slice(after);
            match self.exec_many(idx, retry, &refs) {
                Err((_, true)) if first => {
                    call[0] = b"EVAL";
                    call[1] = s.code.as_bytes();
                    first = false;
                }
                r => return r.map_err(|(e, _)| e),
            }
        }
    }

    /// Runs script `s` alone and returns its answer.
    fn script(&mut self, idx: usize, retry: Retry, s: &'static Script, keys: &[&[u8]], args: &[&[u8]]) -> Result<Value> {
        let mut v = self.pipeline_script(idx, retry, &[], s, keys, args, &[])?;
        Ok(v.pop().unwrap_or(Value::Nil))
    }

    fn simple<T: redis::FromRedisValue>(&mut self, idx: usize, args: &[&[u8]]) -> Result<T> {
        let mut v = self.exec_many(idx, Retry::Safe, &[args]).map_err(|(e, _)| e)?;
        T::from_redis_value(v.pop().unwrap_or(Value::Nil)).map_err(|e| corrupt(self.at(idx), format!("{}: unexpected answer: {e}", self.at(idx))))
    }

    /// A malformed answer `v` from `what`.
    fn unexpected(&self, idx: usize, v: &dyn std::fmt::Debug, what: &str) -> StoreError {
        corrupt(self.at(idx), format!("{}: unexpected answer {v:?} from {what}", self.at(idx)))
    }

    /// A session as `{data, nonce, expiry}` answers say it (data nil: none).
    fn loaded(&self, idx: usize, data: Value, n: &Value, t: &Value) -> Result<Option<Loaded>> {
        let bad = |what: &dyn std::fmt::Debug| self.unexpected(idx, what, "a read");
        let data = match data {
            Value::Nil => return Ok(None),
            Value::BulkString(d) => d,
            other => return Err(bad(&other)),
        };
        let nonce = match n {
            Value::Nil => 0,
            Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| bad(n))?,
            other => return Err(bad(other)),
        };
        let expiry = as_int(t).ok_or_else(|| bad(t))?;
        Ok(Some(Loaded { data, version: version(nonce, expiry) }))
    }

    /// The last three answers of a pipeline that ended with `read_cmds`: expiry, nonce, data.
    fn loaded_from_pipeline(&self, idx: usize, vals: &mut Vec<Value>) -> Result<Option<Loaded>> {
        match (vals.pop(), vals.pop(), vals.pop()) {
            (Some(d), Some(n), Some(t)) => self.loaded(idx, d, &n, &t),
            other => Err(self.unexpected(idx, &other, "a read")),
        }
    }

    /// The answer of the READ script: {data, nonce, expiry}.
    fn loaded_from(&mut self, idx: usize, v: Option<Value>) -> Result<Option<Loaded>> {
        match v {
            Some(Value::Array(items)) if items.len() == 3 => {
                let mut it = items.into_iter();
                let (d, n, t) = (it.next().unwrap_or(Value::Nil), it.next().unwrap_or(Value::Nil), it.next().unwrap_or(Value::Nil));
                self.loaded(idx, d, &n, &t)
            }
            other => Err(self.unexpected(idx, &other, "a read")),
        }
    }

    fn busy(items: &[Value]) -> Acquire {
        let pttl = items.get(1).and_then(as_int).unwrap_or(-1);
        let foreign = items.get(2).and_then(as_int) == Some(1);
        Acquire::Busy(Busy { expires_in: u64::try_from(pttl).ok().map(Duration::from_millis), foreign })
    }

    /// The answer of a write script (see `write_script!`).
    fn written(&self, idx: usize, nonce: u64, v: Option<Value>) -> Result<Written> {
        let Some(Value::Array(items)) = v else { return Err(self.unexpected(idx, &v, "the save script")) };
        match (items.first().and_then(as_int), items.len()) {
            (Some(1), 2) => match as_int(&items[1]) {
                Some(t) => Ok(Written::Done(version(nonce, t))),
                None => Err(self.unexpected(idx, &items, "the save script")),
            },
            (Some(0), 1) => Ok(Written::LockLost),
            (Some(2), 4) => {
                let mut it = items.into_iter().skip(1);
                let d = it.next().unwrap_or(Value::Nil);
                let (n, t) = (it.next().unwrap_or(Value::Nil), it.next().unwrap_or(Value::Nil));
                Ok(Written::Conflict(self.loaded(idx, d, &n, &t)?))
            }
            _ => Err(self.unexpected(idx, &items, "the save script")),
        }
    }
}

/// A session's keys (see `RedisStore::keys`).
struct Keys {
    data: Vec<u8>,
    lock: Vec<u8>,
    wake: Vec<u8>,
    ver: Vec<u8>,
    /// Waiters' registrations (`REGISTER`): a release wakes someone only when this is not empty.
    wait: Vec<u8>,
    /// The per-user index's record of the session's user (`users.rs`).
    user: Vec<u8>,
}

impl Keys {
    fn all(&self) -> [&[u8]; 5] {
        [&self.data, &self.lock, &self.wake, &self.ver, &self.wait]
    }
}

/// A version from its two parts (see the module documentation).
fn version(nonce: u64, expiry: i64) -> Version {
    Version::new((u128::from(nonce) << 64) | u128::from(expiry as u64))
}

/// The two parts of a version: nonce, expiry.
fn version_parts(v: Version) -> (u64, i64) {
    ((v.get() >> 64) as u64, v.get() as u64 as i64)
}

/// A fresh nonce for a write: random, never 0 (0 stands for "no `_VER` key").
fn new_nonce() -> u64 {
    crate::lock::fresh_u64().max(1)
}

/// The commands that read a session and its version, pipelined in one write: the expiry first, then
/// the nonce, then the data. Not a transaction, and needs none: every write (ours or phpredis') and
/// every touch sets a new expiry, so a write that slips in between the three makes the version read
/// one that no later check can match — a spurious conflict, never a write over data not read — and
/// without one the three are what one moment stored. (A write in the same millisecond with the
/// same lifetime keeps the expiry: then our writes still change the nonce; phpredis' is the case
/// the module documentation concedes.)
fn read_cmds(k: &Keys) -> [[&[u8]; 2]; 3] {
    [[b"PEXPIRETIME", &k.data], [b"GET", &k.ver], [b"GET", &k.data]]
}

#[cfg(test)]
thread_local! {
    /// What this thread's stores sent through `exec_batch`: each command's name and first argument,
    /// for tests that check what a step costs the server.
    pub(super) static SENT: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `read_cmds` as command slices.
fn read_refs<'a>(c: &'a [[&'a [u8]; 2]; 3]) -> [&'a [&'a [u8]]; 3] {
    [&c[0][..], &c[1][..], &c[2][..]]
}

impl Pooled for RedisStore {
    /// `persistent=0` asks for a connection per request.
    fn reusable(&self) -> bool {
        self.opts.persistent
    }
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        self.opts.describe()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let user_ms = users::user_key_ms(exp);
        if self.opts.mode == Mode::Cluster {
            // The user key is asked for when needed (`users::bound`), see READ.
            self.last_user = None;
            let v = self.script(idx, Retry::Safe, &scripts().read, &[&k.data, &k.ver], &[])?;
            return self.loaded_from(idx, Some(v));
        }
        let getex: &[&[u8]] = &[b"GETEX", &k.user, b"PX", &user_ms];
        if std::mem::take(&mut self.cas_read) {
            // An optimistic read: its write is a transaction on what this WATCHes (watch.rs).
            let (mut vals, read) = self.read_watched(idx, id, &k, &[getex])?;
            self.saw_user(id, vals.pop());
            return Ok(read);
        }
        let cmds = read_cmds(&k);
        let [a, b, c] = read_refs(&cmds);
        let mut vals = self.exec_many(idx, Retry::Safe, &[getex, a, b, c]).map_err(|(e, _)| e)?;
        let read = self.loaded_from_pipeline(idx, &mut vals);
        self.saw_user(id, vals.pop());
        read
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let user_ms = users::user_key_ms(exp);
        let args: [&[u8]; 3] = [owner.as_str().as_bytes(), &ms(lock_expire), &user_ms];
        if self.opts.mode != Mode::Cluster {
            // Standalone: SET NX, WATCH and the read in one write, no script (watch.rs).
            return self.lock_watched(idx, id, &k, owner, args[1], &user_ms);
        }
        // Safe to retry: the script treats a lock already holding our token as ours.
        let [d, l, w, ver, _] = k.all();
        let v = self.script(idx, Retry::Safe, &scripts().acquire, &[d, l, w, ver, &k.user], &args)?;
        let Value::Array(items) = v else { return Err(self.unexpected(idx, &v, "the lock script")) };
        match (items.first().and_then(as_int), items.len()) {
            (Some(1), 5) => {
                let mut it = items.into_iter().skip(1);
                let d = it.next().unwrap_or(Value::Nil);
                let (n, t) = (it.next().unwrap_or(Value::Nil), it.next().unwrap_or(Value::Nil));
                self.saw_user(id, it.next());
                Ok(Acquire::Locked(self.loaded(idx, d, &n, &t)?))
            }
            (Some(0), _) => Ok(Self::busy(&items)),
            _ => Err(self.unexpected(idx, &items, "the lock script")),
        }
    }

    fn wait_for_release(&mut self, id: &SessionId, busy: &Busy, deadline: Instant, _attempt: u32) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = match busy.expires_in {
            // Until the holder releases (it pushes a wake-up) or its lock expires, whichever is first.
            Some(ttl) if !busy.foreign => (ttl + Duration::from_millis(1)).min(MAX_BLOCK),
            // phpredis' lock (no wake-up), or one without an expiry: poll.
            _ => FOREIGN_POLL,
        }
        .min(left);
        if busy.foreign || busy.expires_in.is_none() || wait < Duration::from_millis(2) {
            std::thread::sleep(wait);
            return Ok(());
        }
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let read_timeout = self.conns[idx].node.read_timeout;
        let secs = format!("{:.3}", wait.as_secs_f64());
        let life = ms(Duration::from_millis(WAKE_LIFE_MS));
        // Registered first (a release wakes only registered waiters), in the same write.
        let mut register = redis::cmd("EVAL");
        register.arg(REGISTER).arg(3).arg(&k.lock).arg(&k.wait).arg(&k.wake).arg(&life);
        let mut blpop = redis::cmd("BLPOP");
        blpop.arg(&k.wake).arg(&secs);
        self.run(idx, Retry::Safe, |c, rt| {
            *rt += 1;
            c.set_read_timeout(Some(wait + read_timeout))?;
            // The answer comes when the holder lets go: no point polling for it.
            c.set_polling(false);
            let r = match c {
                Link::Cluster(conn) => register.query::<Value>(&mut **conn).and_then(|_| blpop.query::<Value>(&mut **conn)),
                _ => redis::pipe().add_command(register.clone()).add_command(blpop.clone()).query::<Vec<Value>>(c.conn()).map(|_| Value::Nil),
            };
            c.set_polling(true);
            c.set_read_timeout(Some(read_timeout))?;
            r
        })?;
        Ok(())
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let v: Option<Vec<u8>> = self.simple(idx, &[b"GET", &k.lock])?;
        // phpredis' "host|pid" values are not tokens: never judged dead (holder_is_dead).
        Ok(v.and_then(|v| String::from_utf8(v).ok()).map(Token::from_stored))
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        let idx = self.node_for(id);
        if data.len() > MAX_VALUE {
            let at = self.at(idx);
            let detail = format!("{at}: session of {} bytes is too large (Redis stores at most {MAX_VALUE} bytes)", data.len());
            return Err(StoreError::TooLarge { at, size: data.len(), limit: MAX_VALUE, detail });
        }
        let k = self.keys(idx, id);
        let (kind, n, t): (&[u8], String, String) = match expect {
            // Under our lock the lock decides (Held): a locking-off writer is overwritten, as before.
            Expect::Any | Expect::Held(_) => (b"any", String::new(), String::new()),
            Expect::Absent => (b"absent", String::new(), String::new()),
            Expect::Version(v) => {
                let (n, t) = version_parts(v);
                (b"version", n.to_string(), t.to_string())
            }
        };
        let nonce = new_nonce();
        let new = nonce.to_string();
        let (ttl, wl) = (ms(exp.lifetime), ms(Duration::from_millis(WAKE_LIFE_MS)));
        // Every write keeps the session's user key (per-user index) alive with it, in the same
        // round trip: a no-op for an unbound session (users.rs).
        let user_ms = users::user_key_ms(exp);
        let keep_user: &[&[u8]] = &[b"PEXPIRE", &k.user, &user_ms];
        let token = owner.map_or(&b""[..], |t| t.as_str().as_bytes());
        // A write that releases a lock, or whose expectation a first attempt may already have
        // changed, is never sent twice.
        let retry = if owner.is_none() && expect == Expect::Any { Retry::Safe } else { Retry::Never };
        if let Some(w) = self.save_watched(idx, id, &k, data, expect, owner, &ttl, &wl, nonce, keep_user)? {
            return Ok(w);
        }
        let mut args: Vec<&[u8]> = vec![token, &ttl, &wl, kind, n.as_bytes(), t.as_bytes(), new.as_bytes()];
        if retry == Retry::Safe && self.opts.mode != Mode::Cluster {
            // Nothing to check (locking off): the data and the nonce in one transaction, no script.
            let cmds: [&[&[u8]]; 6] = [
                keep_user,
                &[b"MULTI"],
                &[b"SET", &k.data, data, b"PX", &ttl],
                &[b"SET", &k.ver, new.as_bytes(), b"PX", &ttl],
                &[b"PEXPIRETIME", &k.data],
                &[b"EXEC"],
            ];
            let mut vals = self.exec_many(idx, retry, &cmds).map_err(|(e, _)| e)?;
            return match vals.pop() {
                Some(Value::Array(items)) if items.len() == 3 => match as_int(&items[2]) {
                    Some(t) => Ok(Written::Done(version(nonce, t))),
                    None => Err(self.unexpected(idx, &items, "a write")),
                },
                other => Err(self.unexpected(idx, &other, "a write")),
            };
        }
        let v = if self.opts.mode != Mode::Cluster {
            // Standalone: SET the data to a scratch key and COMMIT it, in one write.
            let mut scratch = k.data.clone();
            scratch.extend_from_slice(b"_WRITE_");
            scratch.extend_from_slice(new.as_bytes());
            let set: &[&[u8]] = &[b"SET", &scratch, data, b"PX", SCRATCH_LIFE_MS];
            let [d, l, w, ver, wait] = k.all();
            self.pipeline_script(idx, retry, &[set, keep_user], &scripts().commit, &[d, l, w, ver, wait, &scratch], &args, &[])?.pop()
        } else {
            args.push(data);
            args.push(&user_ms);
            let [d, l, w, ver, wait] = k.all();
            Some(self.script(idx, retry, &scripts().save, &[d, l, w, ver, wait, &k.user], &args)?)
        };
        self.written(idx, nonce, v)
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let (ttl, wl) = (ms(exp.lifetime), ms(Duration::from_millis(WAKE_LIFE_MS)));
        let token = owner.map_or(&b""[..], |t| t.as_str().as_bytes());
        let retry = if owner.is_none() { Retry::Safe } else { Retry::Never };
        // The session's user key (per-user index) lives on with it, as at a write.
        let user_ms = users::user_key_ms(exp);
        if retry == Retry::Safe && self.opts.mode != Mode::Cluster {
            // No lock to check: both expiries in one transaction, no script.
            let cmds: [&[&[u8]]; 5] = [
                &[b"PEXPIRE", &k.user, &user_ms],
                &[b"MULTI"],
                &[b"PEXPIRE", &k.data, &ttl],
                &[b"PEXPIRE", &k.ver, &ttl],
                &[b"EXEC"],
            ];
            self.exec_many(idx, retry, &cmds).map_err(|(e, _)| e)?;
            return Ok(Touched::Done);
        }
        if let Some(t) = owner {
            if let Some(done) = self.touch_watched(idx, id, &k, t, &ttl, &wl, &user_ms)? {
                return Ok(done);
            }
        }
        let [d, l, w, ver, wait] = k.all();
        let v = self.script(idx, retry, &scripts().touch, &[d, l, w, ver, wait, &k.user], &[token, &ttl, &wl, &user_ms])?;
        match as_int(&v) {
            Some(1) => Ok(Touched::Done),
            Some(0) => Ok(Touched::LockLost),
            _ => Err(self.unexpected(idx, &v, "the touch script")),
        }
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let wl = ms(Duration::from_millis(WAKE_LIFE_MS));
        self.script(idx, Retry::Safe, &scripts().release, &k.all(), &[owner.as_str().as_bytes(), &wl, b"0"])?;
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        // The user key goes with the session (its user's index entry is pruned by the next list).
        self.last_user = None;
        match owner {
            Some(t) => {
                let wl = ms(Duration::from_millis(WAKE_LIFE_MS));
                let args: [&[u8]; 3] = [t.as_str().as_bytes(), &wl, b"1"];
                if self.opts.mode == Mode::Cluster {
                    self.script(idx, Retry::Safe, &scripts().release, &k.all(), &args)?;
                    let _: i64 = self.simple(idx, &[b"DEL", &k.user])?;
                } else {
                    let del: &[&[u8]] = &[b"DEL", &k.user];
                    self.pipeline_script(idx, Retry::Safe, &[del], &scripts().release, &k.all(), &args, &[])?;
                }
            }
            None => {
                let _: i64 = self.simple(idx, &[b"DEL", &k.data, &k.ver, &k.user])?;
            }
        }
        Ok(())
    }

    fn exists(&mut self, id: &SessionId, _exp: Expiry) -> Result<bool> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let n: i64 = self.simple(idx, &[b"EXISTS", &k.data])?;
        Ok(n > 0)
    }

    // No `collector`: Redis expires sessions itself (TTL = session.gc_maxlifetime).

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

    fn take_warnings(&mut self) -> Vec<crate::store::Caution> {
        std::mem::take(&mut self.cautions)
    }

    fn event(&mut self, e: &Event) {
        match e {
            // The next read's write will expect its version: it WATCHes the session (watch.rs).
            Event::OptimisticRead => self.cas_read = self.opts.mode != Mode::Cluster,
            Event::Started => self.cas_read = false,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod users_tests;
#[cfg(test)]
mod watch_tests;
