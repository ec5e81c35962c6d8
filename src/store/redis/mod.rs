//! The Redis engine: standalone servers over TCP or a unix socket, in phpredis' key layout.
//!
//! Keys (phpredis-compatible): data `<prefix><id>`, lock `<prefix><id>_LOCK` (value: our owner token),
//! wake-up list `<prefix><id>_WAKE`. Expiry is Redis' own TTL (`session.gc_maxlifetime`), so gc has
//! nothing to do.
//!
//! Round trips per request (see `tests::round_trips`):
//! - locking on, standalone/Sentinel: `LOCK` script + `GET` pipelined in one write; `SET` of a scratch
//!   key + `COMMIT` script (owner check, RENAME over the session, release) in one write — the data
//!   never passes through Lua; `TOUCH` refreshes and releases in one script;
//! - locking on, Cluster: `ACQUIRE` (lock + read) and `SAVE` (owner check + write + release), one
//!   script each;
//! - locking off: one `GET`, one `SET … PX`.
//!
//! A waiter blocks on the wake-up list (`BLPOP`), which every release of ours pushes to, bounded by
//! the lock's remaining life and the caller's deadline; a lock held by phpredis (which does not
//! push) is polled every 20 ms as phpredis itself does.

pub mod dsn;
mod wire;

use std::time::{Duration, Instant};

use anyhow::anyhow;
use redis::{ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo, RedisConnectionInfo, Value};

use super::legacy::{Acquire, Saved, Store};
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

/// Lua that releases the lock KEYS[2] and wakes one waiter through the list KEYS[3], which lives
/// ARGV[$wake_ms] ms, then returns 1. The one definition of a release, shared by every script that ends
/// a lock (COMMIT, SAVE, TOUCH, RELEASE) once it has checked the lock is ours.
macro_rules! release_and_wake {
    ($wake_ms:literal) => {
        concat!(
            "redis.call('DEL', KEYS[2], KEYS[3])\n",
            "redis.call('RPUSH', KEYS[3], 1)\n",
            "redis.call('PEXPIRE', KEYS[3], ARGV[",
            $wake_ms,
            "])\n",
            "return 1\n"
        )
    };
}

/// Takes the lock (or finds it is already ours) and reads the data in one step.
/// KEYS: data, lock. ARGV: token, lock expiry in ms.
/// Returns {1, data?} when locked, {0, pttl, foreign} when another owner holds it.
const ACQUIRE: &str = concat!(
    "\n",
    take_lock!(),
    r#"local d = redis.call('GET', KEYS[1])
if d then return {1, d} end
return {1}
"#
);

/// `ACQUIRE` without the read, for standalone servers: the data comes from a `GET` sent in the same
/// write (pipelined), so a large session never passes through Lua (which costs the server ~0.2 ms
/// per 64 KiB). The GET's answer is used only when the lock was ours. Returns {1} or {0, pttl, foreign}.
const LOCK: &str = concat!("\n", take_lock!(), "return {1}\n");

/// `SAVE` for standalone servers: the data was written to a scratch key by a `SET` sent in the same
/// write (pipelined); under our lock it becomes the session (RENAME, O(1)), otherwise it is dropped.
/// KEYS: data, lock, wake, scratch. ARGV: token, ttl ms, wake-list life ms.
const COMMIT: &str = concat!(r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  redis.call('DEL', KEYS[4])
  return 0
end
redis.call('RENAME', KEYS[4], KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"#, release_and_wake!("3"));

/// Life of a scratch key should the COMMIT after it never arrive (a connection lost in between).
const SCRATCH_LIFE_MS: &[u8] = b"60000";

/// Writes under our lock and releases it, waking one waiter. Nothing is written if the lock is not ours.
/// KEYS: data, lock, wake. ARGV: token, data, ttl ms, wake-list life ms.
const SAVE: &str = concat!(r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
"#, release_and_wake!("4"));

/// Refreshes the TTL under our lock and releases it. KEYS: data, lock, wake. ARGV: token, ttl ms, wake ms.
const TOUCH: &str = concat!(r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"#, release_and_wake!("3"));

/// Releases our lock (if it still is ours), optionally deleting the data. KEYS: data, lock, wake.
/// ARGV: token, wake ms, "1" to delete the data.
const RELEASE: &str = concat!(r#"
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
"#, release_and_wake!("2"));

/// How long a wake-up token waits for a waiter to pop it.
const WAKE_LIFE_MS: u64 = 2000;
/// Poll interval while phpredis (which sends no wake-up) holds the lock: phpredis' own.
const FOREIGN_POLL: Duration = Duration::from_millis(20);
/// Longest single block on the wake-up list: a safety net should a wake-up be lost (a waiter that
/// popped it died before taking the lock).
const MAX_BLOCK: Duration = Duration::from_millis(500);

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
    lock: Script,
    commit: Script,
    acquire: Script,
    save: Script,
    touch: Script,
    release: Script,
}

fn scripts() -> &'static Scripts {
    static S: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    S.get_or_init(|| Scripts {
        lock: Script::new(LOCK),
        commit: Script::new(COMMIT),
        acquire: Script::new(ACQUIRE),
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
    Cluster(redis::cluster::ClusterConnection<NodeConn>),
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
        let client = match (template, info.addr().clone()) {
            (Some(node), ConnectionAddr::TcpTls { host, port, .. }) | (Some(node), ConnectionAddr::Tcp(host, port)) => {
                let info = info.set_addr(tls_addr(host.clone(), port, node.tls.as_ref().expect("set with TLS only")));
                let node = Node { addr: Addr::Tcp { host, port }, ..node };
                tls_client(info, &node)
                    .map_err(|e| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "TLS", format!("{e:#}"))))?
            }
            _ => redis::Client::open(info)?,
        };
        let c = match timeout {
            Some(t) => client.get_connection_with_timeout(t)?,
            None => client.get_connection()?,
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
            Link::Cluster(c) => c,
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
}

pub struct RedisStore {
    opts: RedisOptions,
    conns: Vec<Conn>,
    /// What the last Busy answer said: the lock's remaining life (ms, <0: none) and whether phpredis holds it.
    last_busy: Option<(i64, bool)>,
    /// Requests sent and answered (round trips), for tests and benchmarks.
    round_trips: u64,
    /// The packed command being sent, kept between requests.
    buf: Vec<u8>,
}

/// What a command needs to be retried safely on a fresh connection after a dropped one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Idempotent: run again on a new connection if the pooled one turns out dead.
    Safe,
    /// Not idempotent (a write under a lock that releases it): never run twice.
    Never,
}

/// A TLS address checked as `t.verify` says.
fn tls_addr(host: String, port: u16, t: &dsn::Tls) -> ConnectionAddr {
    let mut a = ConnectionAddr::TcpTls { host, port, insecure: t.verify == Verify::None, tls_params: None };
    if t.verify == Verify::Ca {
        a.set_danger_accept_invalid_hostnames(true);
    }
    a
}

fn conn_info(node: &Node) -> anyhow::Result<ConnectionInfo> {
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
        .map_err(|e| anyhow!("{}: {e}", node.addr))?
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

fn connect_cluster(o: &RedisOptions) -> anyhow::Result<redis::cluster::ClusterConnection<NodeConn>> {
    let seeds = &o.nodes;
    let first = &seeds[0];
    let infos = seeds.iter().map(conn_info).collect::<anyhow::Result<Vec<_>>>()?;
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
    let client = b.build().map_err(|e| anyhow!("{what}: {}", explain(&e, first)))?;
    let _tls = TlsScope::new(first);
    let c = client
        .get_generic_connection::<NodeConn>()
        .map_err(|e| anyhow!("{what}: cannot connect: {}", explain(&e, first)))?;
    let t = Some(first.read_timeout);
    c.set_read_timeout(t).and_then(|_| c.set_write_timeout(t)).map_err(|e| anyhow!("cluster: {e}"))?;
    Ok(c)
}

/// Asks the Sentinels, in order, for the current master of `name`, and connects to it (over TLS when
/// the Sentinels are: `rediss-sentinel://`).
fn connect_via_sentinels(o: &RedisOptions, name: &str) -> anyhow::Result<Link> {
    let auth = &o.sentinel_auth;
    let mut why = Vec::new();
    for s in &o.nodes {
        // Sentinels are asked with their own credentials (sentinel_user/sentinel_password), never the
        // master's, and without its database.
        let asked = Node { username: auth.username.clone(), password: auth.password.clone(), db: 0, ..s.clone() };
        let addr: redis::RedisResult<Option<(String, u16)>> = match connect(&asked) {
            Ok(mut c) => redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(name).query(c.conn()),
            Err(e) => {
                why.push(format!("Sentinel {e:#}"));
                continue;
            }
        };
        match addr {
            Ok(Some((host, port))) => {
                let master = Node { addr: Addr::Tcp { host, port }, ..s.clone() };
                return connect(&master).map_err(|e| anyhow!("master {name:?} (from Sentinel {}): {e:#}", s.addr));
            }
            Ok(None) => why.push(format!("Sentinel {} knows no master {name:?}", s.addr)),
            Err(e) => why.push(format!("Sentinel {}: {}", s.addr, explain(&e, s))),
        }
    }
    Err(anyhow!("{}: no Sentinel named the master: {}", o.describe(), why.join("; ")))
}

/// A client for `info` with `node`'s TLS files (CA bundle, client certificate), read now so that a
/// renewed certificate is picked up by the next connection.
fn tls_client(info: ConnectionInfo, node: &Node) -> anyhow::Result<redis::Client> {
    Ok(match &node.tls {
        Some(t) if t.ca.is_some() || t.cert.is_some() => {
            let read = |p: &std::path::PathBuf, what: &str| {
                std::fs::read(p).map_err(|e| anyhow!("{}: cannot read the TLS {what} {}: {e}", node.addr, p.display()))
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
                .map_err(|e| anyhow!("{}: {}", node.addr, explain(&e, node)))?;
            // build_with_tls replaces the address' TLS parameters: verify=ca (no host name check) again.
            let mut info = client.get_connection_info().clone();
            let mut addr = info.addr().clone();
            addr.set_danger_accept_invalid_hostnames(t.verify == Verify::Ca);
            info = info.set_addr(addr);
            redis::Client::open(info).map_err(|e| anyhow!("{}: {}", node.addr, explain(&e, node)))?
        }
        _ => redis::Client::open(info).map_err(|e| anyhow!("{}: {}", node.addr, explain(&e, node)))?,
    })
}

fn connect(node: &Node) -> anyhow::Result<Link> {
    let connect_error = |e: redis::RedisError| {
        if e.is_timeout() {
            anyhow!("{}: cannot connect within {:.3} s (timeout)", node.addr, node.connect_timeout.as_secs_f64())
        } else {
            anyhow!("{}: cannot connect: {}", node.addr, explain(&e, node))
        }
    };
    if node.tls.is_none() {
        return wire::Wire::connect(node).map(Link::Plain).map_err(connect_error);
    }
    let client = tls_client(conn_info(node)?, node)?;
    let c = client.get_connection_with_timeout(node.connect_timeout).map_err(connect_error)?;
    let t = Some(node.read_timeout);
    c.set_read_timeout(t).and_then(|_| c.set_write_timeout(t)).map_err(|e| anyhow!("{}: {e}", node.addr))?;
    Ok(Link::Single(c))
}

/// Whether a key has a Redis Cluster hash tag: a `{` followed later by a `}` with something between.
fn has_hash_tag(key: &str) -> bool {
    key.find('{').is_some_and(|open| key[open + 1..].find('}').is_some_and(|close| close > 0))
}


/// RESP encoding of one command, appended to `buf`.
fn pack_more(buf: &mut Vec<u8>, args: &[&[u8]]) {
    use std::io::Write;
    let _ = write!(buf, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(buf, "${}\r\n", a.len());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
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
    pub fn open(o: &RedisOptions) -> anyhow::Result<Self> {
        let conns = match o.mode {
            Mode::Standalone => o.nodes.iter().map(|n| Conn { node: n.clone(), conn: None }).collect(),
            // One connection (to the cluster, or to the current master); its `node` stands for the
            // shared options.
            Mode::Cluster | Mode::Sentinel(_) => vec![Conn { node: o.nodes[0].clone(), conn: None }],
        };
        let mut s = RedisStore { opts: o.clone(), conns, last_busy: None, round_trips: 0, buf: Vec::new() };
        // Connect now when there is one target, so that `open` reports an unreachable server.
        if s.conns.len() == 1 {
            let link = s.link()?;
            s.conns[0].conn = Some(link);
        }
        Ok(s)
    }

    /// Round trips made so far (each a request and its answer).
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    fn link_for(&self, idx: usize) -> anyhow::Result<Link> {
        Ok(match &self.opts.mode {
            Mode::Standalone => connect(&self.conns[idx].node)?,
            Mode::Cluster => Link::Cluster(connect_cluster(&self.opts)?),
            Mode::Sentinel(name) => connect_via_sentinels(&self.opts, name)?,
        })
    }

    fn link(&self) -> anyhow::Result<Link> {
        self.link_for(0)
    }

    fn node_for(&self, id: &SessionId) -> usize {
        match self.opts.mode {
            Mode::Standalone => dsn::pick_node(&self.opts.nodes, id.as_str().as_bytes()),
            Mode::Cluster | Mode::Sentinel(_) => 0,
        }
    }

    /// (data, lock, wake-up) keys. Standalone: phpredis' `<key>`, `<key>_LOCK`. Cluster: the data key
    /// stays phpredis' (RedisCluster's session handler uses the same), and the lock and wake-up keys
    /// carry the data key as their hash tag — `{<key>}_LOCK` — so all three live in one slot.
    fn keys(&self, idx: usize, id: &SessionId) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let data = format!("{}{}", self.conns[idx].node.prefix, id.as_str());
        let base = match self.opts.mode {
            Mode::Cluster if !has_hash_tag(&data) => format!("{{{data}}}"),
            _ => data.clone(),
        };
        (data.into_bytes(), format!("{base}_LOCK").into_bytes(), format!("{base}_WAKE").into_bytes())
    }

    /// Runs `f` on server `idx`'s connection, connecting first if needed. A pooled connection found
    /// dead (the server restarted, an idle timeout) is replaced and, for `Retry::Safe`, the command is
    /// sent again once. Any error drops the connection: its state is unknown.
    fn run<T>(
        &mut self,
        idx: usize,
        retry: Retry,
        mut f: impl FnMut(&mut Link, &mut u64) -> redis::RedisResult<T>,
    ) -> anyhow::Result<T> {
        let mut fresh = false;
        let mut tryagain: Option<(Instant, Duration)> = None;
        loop {
            if self.conns[idx].conn.is_none() {
                let link = self.link_for(idx)?;
                self.conns[idx].conn = Some(link);
                fresh = true;
            }
            let c = &mut self.conns[idx];
            let conn = c.conn.as_mut().expect("connected above");
            let _tls = matches!(conn, Link::Cluster(_)).then(|| TlsScope::new(&c.node));
            match f(conn, &mut self.round_trips) {
                Ok(v) => return Ok(v),
                // A slot being migrated: the command was not run (TRYAGAIN; or ASK/MOVED when
                // redis-rs' own retries ran out between the two nodes). Wait (20 ms, doubling, at
                // most 200 ms) and send it again, for TRYAGAIN_WAIT at most; redis-rs follows the ASK.
                Err(e)
                    if matches!(e.code(), Some("TRYAGAIN" | "ASK" | "MOVED")) && matches!(self.opts.mode, Mode::Cluster) =>
                {
                    let (since, step) = tryagain.get_or_insert((Instant::now(), Duration::from_millis(10)));
                    if since.elapsed() >= TRYAGAIN_WAIT {
                        return Err(anyhow!(
                            "{}: slot still being migrated after {} s: {e}",
                            self.opts.describe(),
                            TRYAGAIN_WAIT.as_secs()
                        ));
                    }
                    *step = (*step * 2).min(Duration::from_millis(200));
                    std::thread::sleep(*step);
                }
                Err(e) => {
                    let node = c.node.clone();
                    let dropped = e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error();
                    // The server became a replica (a Sentinel failover): nothing was written, since a
                    // script fails at its first write; ask the Sentinels again and retry, even a write.
                    let demoted = e.code() == Some("READONLY") && matches!(self.opts.mode, Mode::Sentinel(_));
                    if dropped || demoted || e.is_timeout() {
                        c.conn = None;
                    }
                    if ((dropped && !e.is_timeout() && retry == Retry::Safe) || demoted) && !fresh {
                        continue;
                    }
                    let what = match self.opts.mode {
                        Mode::Cluster | Mode::Sentinel(_) => self.opts.describe(),
                        Mode::Standalone => node.addr.to_string(),
                    };
                    return Err(anyhow!("{what}: {}", explain(&e, &node)));
                }
            }
        }
    }

    /// Sends one command (its arguments) and returns the answer. Standalone connections get the
    /// command packed into a buffer the store keeps, so a large session costs no allocation per
    /// request on the way out.
    fn exec(&mut self, idx: usize, retry: Retry, args: &[&[u8]]) -> anyhow::Result<Value> {
        self.exec_noscript(idx, retry, args).map_err(|(e, _)| e)
    }

    /// `exec`, telling a NOSCRIPT answer apart (the bool).
    fn exec_noscript(&mut self, idx: usize, retry: Retry, args: &[&[u8]]) -> Result<Value, (anyhow::Error, bool)> {
        self.exec_many(idx, retry, &[args]).map(|mut v| v.pop().unwrap_or(Value::Nil))
    }

    /// Sends `cmds` in one write and reads their answers: one round trip. Any error answer fails the
    /// whole call (the bool: one of them was NOSCRIPT). Pipelines of more than one command are only
    /// used on standalone connections.
    fn exec_many(&mut self, idx: usize, retry: Retry, cmds: &[&[&[u8]]]) -> Result<Vec<Value>, (anyhow::Error, bool)> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for c in cmds {
            pack_more(&mut buf, c);
        }
        let mut noscript = false;
        let r = self.run(idx, retry, |c, rt| {
            *rt += 1;
            let r = match c {
                Link::Plain(_) | Link::Single(_) => c.conn().req_packed_commands(&buf, 0, cmds.len()).and_then(|vs| {
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
        // Keep the buffer for the next request, unless a huge session made it huge.
        if buf.capacity() <= 4 << 20 {
            self.buf = buf;
        }
        r.map_err(|e| (e, noscript))
    }

    /// Sends `before`, script `s`, then `after` in one write (one round trip); on NOSCRIPT, all once
    /// more with the script's body. Returns every answer, in order.
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
    ) -> anyhow::Result<Vec<Value>> {
        let n = keys.len().to_string();
        let mut call: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        call.extend_from_slice(&[b"EVALSHA", s.sha.as_bytes(), n.as_bytes()]);
        call.extend_from_slice(keys);
        call.extend_from_slice(args);
        let r = {
            let mut refs: Vec<&[&[u8]]> = before.to_vec();
            refs.push(&call);
            refs.extend_from_slice(after);
            self.exec_many(idx, retry, &refs)
        };
        match r {
            Ok(v) => Ok(v),
            Err((_, true)) => {
                call[0] = b"EVAL";
                call[1] = s.code.as_bytes();
                let mut refs: Vec<&[&[u8]]> = before.to_vec();
                refs.push(&call);
                refs.extend_from_slice(after);
                self.exec_many(idx, retry, &refs).map_err(|(e, _)| e)
            }
            Err((e, false)) => Err(e),
        }
    }

    fn script(&mut self, idx: usize, retry: Retry, s: &'static Script, keys: &[&[u8]], args: &[&[u8]]) -> anyhow::Result<Value> {
        let n = keys.len().to_string();
        let mut all: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        all.extend_from_slice(&[b"EVALSHA", s.sha.as_bytes(), n.as_bytes()]);
        all.extend_from_slice(keys);
        all.extend_from_slice(args);
        match self.exec_noscript(idx, retry, &all) {
            // The server lost its script cache (restart, SCRIPT FLUSH, a new cluster node): send the body once.
            Err((_, true)) => {
                all[0] = b"EVAL";
                all[1] = s.code.as_bytes();
                self.exec(idx, retry, &all)
            }
            r => r.map_err(|(e, _)| e),
        }
    }

    fn simple<T: redis::FromRedisValue>(&mut self, idx: usize, args: &[&[u8]]) -> anyhow::Result<T> {
        let v = self.exec(idx, Retry::Safe, args)?;
        T::from_redis_value(v).map_err(|e| anyhow!("unexpected answer: {e}"))
    }

    /// Notes what a {0, pttl, foreign} answer says, for `wait_for_release`.
    fn busy(&mut self, items: &[Value]) -> Acquire {
        let ttl = items.get(1).and_then(as_int).unwrap_or(-1);
        let foreign = items.get(2).and_then(as_int) == Some(1);
        self.last_busy = Some((ttl, foreign));
        Acquire::Busy
    }

    fn owned_step(&mut self, s: &'static Script, id: &SessionId, args: &[&[u8]]) -> anyhow::Result<Saved> {
        let idx = self.node_for(id);
        let (data, lock, wake) = self.keys(idx, id);
        let v = self.script(idx, Retry::Never, s, &[&data, &lock, &wake], args)?;
        match as_int(&v) {
            Some(1) => Ok(Saved::Done),
            Some(0) => Ok(Saved::LockLost),
            _ => Err(anyhow!("unexpected answer {v:?} from the save script")),
        }
    }
}

impl Store for RedisStore {
    fn describe(&self) -> String {
        self.opts.describe()
    }

    fn load(&mut self, id: &SessionId, _max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        let idx = self.node_for(id);
        let (data, _, _) = self.keys(idx, id);
        self.simple(idx, &[b"GET", &data])
    }

    fn lock_and_load(
        &mut self,
        id: &SessionId,
        owner: &Token,
        expire: Duration,
        _max_lifetime: Duration,
    ) -> anyhow::Result<Acquire> {
        let idx = self.node_for(id);
        let (data, lock, _) = self.keys(idx, id);
        let args: [&[u8]; 2] = [owner.as_str().as_bytes(), &ms(expire)];
        // Safe to retry: the scripts treat a lock already holding our token as ours.
        if self.opts.mode != Mode::Cluster {
            // Standalone: LOCK, then GET in the same write.
            let get: &[&[u8]] = &[b"GET", &data];
            let mut vals = self.pipeline_script(idx, Retry::Safe, &[], &scripts().lock, &[&data, &lock], &args, &[get])?;
            let (got, v) = match (vals.pop(), vals.pop()) {
                (Some(got), Some(v)) => (got, v),
                _ => return Err(anyhow!("missing answers from the lock script")),
            };
            let Value::Array(items) = v else { return Err(anyhow!("unexpected answer {v:?} from the lock script")) };
            if items.first().and_then(as_int) == Some(1) {
                return match got {
                    Value::Nil => Ok(Acquire::Locked(None)),
                    Value::BulkString(d) => Ok(Acquire::Locked(Some(d))),
                    other => Err(anyhow!("unexpected answer {other:?} to GET")),
                };
            }
            return Ok(self.busy(&items));
        }
        let v = self.script(idx, Retry::Safe, &scripts().acquire, &[&data, &lock], &args)?;
        let Value::Array(mut items) = v else { return Err(anyhow!("unexpected answer {v:?} from the lock script")) };
        if items.len() == 2 && items.first().and_then(as_int) == Some(1) {
            if let Some(Value::BulkString(d)) = items.pop() {
                return Ok(Acquire::Locked(Some(d)));
            }
            return Err(anyhow!("unexpected data type from the lock script"));
        }
        match (items.first().and_then(as_int), items.get(1)) {
            (Some(1), None) => Ok(Acquire::Locked(None)),
            (Some(0), _) => Ok(self.busy(&items)),
            _ => Err(anyhow!("unexpected answer {items:?} from the lock script")),
        }
    }

    fn wait_for_release(&mut self, id: &SessionId, deadline: Instant, _attempt: u32) -> anyhow::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        let (pttl, foreign) = self.last_busy.take().unwrap_or((-1, true));
        let wait = if foreign || pttl < 0 {
            FOREIGN_POLL
        } else {
            // Until the holder releases (it pushes a wake-up) or its lock expires, whichever is first.
            Duration::from_millis(pttl as u64 + 1).min(MAX_BLOCK)
        }
        .min(left);
        if foreign || pttl < 0 || wait < Duration::from_millis(2) {
            std::thread::sleep(wait);
            return Ok(());
        }
        let idx = self.node_for(id);
        let (_, _, wake) = self.keys(idx, id);
        let read_timeout = self.conns[idx].node.read_timeout;
        let secs = format!("{:.3}", wait.as_secs_f64());
        self.run(idx, Retry::Safe, |c, rt| {
            *rt += 1;
            c.set_read_timeout(Some(wait + read_timeout))?;
            // The answer comes when the holder lets go: no point polling for it.
            c.set_polling(false);
            let r = redis::cmd("BLPOP").arg(&wake).arg(&secs).query::<Value>(c.conn());
            c.set_polling(true);
            c.set_read_timeout(Some(read_timeout))?;
            r
        })?;
        Ok(())
    }

    fn save(&mut self, id: &SessionId, data: &[u8], ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        match owner {
            Some(t) if self.opts.mode != Mode::Cluster => {
                // Standalone: SET the data to a scratch key and COMMIT it under the lock, in one write.
                let idx = self.node_for(id);
                let (key, lock, wake) = self.keys(idx, id);
                let mut scratch = key.clone();
                scratch.extend_from_slice(b"_WRITE_");
                scratch.extend_from_slice(t.as_str().as_bytes());
                let (ttl, wl) = (ms(ttl), ms(Duration::from_millis(WAKE_LIFE_MS)));
                let set: &[&[u8]] = &[b"SET", &scratch, data, b"PX", SCRATCH_LIFE_MS];
                let args: [&[u8]; 3] = [t.as_str().as_bytes(), &ttl, &wl];
                let v = self.pipeline_script(idx, Retry::Never, &[set], &scripts().commit, &[&key, &lock, &wake, &scratch], &args, &[])?;
                match v.last().and_then(as_int) {
                    Some(1) => Ok(Saved::Done),
                    Some(0) => Ok(Saved::LockLost),
                    _ => Err(anyhow!("unexpected answer {v:?} from the save script")),
                }
            }
            Some(t) => {
                let (ttl, wl) = (ms(ttl), ms(Duration::from_millis(WAKE_LIFE_MS)));
                self.owned_step(&scripts().save, id, &[t.as_str().as_bytes(), data, &ttl, &wl])
            }
            None => {
                let idx = self.node_for(id);
                let (key, _, _) = self.keys(idx, id);
                let () = self.simple(idx, &[b"SET", &key, data, b"PX", &ms(ttl)])?;
                Ok(Saved::Done)
            }
        }
    }

    fn touch(&mut self, id: &SessionId, ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        match owner {
            Some(t) => {
                let (ttl, wl) = (ms(ttl), ms(Duration::from_millis(WAKE_LIFE_MS)));
                self.owned_step(&scripts().touch, id, &[t.as_str().as_bytes(), &ttl, &wl])
            }
            None => {
                let idx = self.node_for(id);
                let (key, _, _) = self.keys(idx, id);
                let _: i64 = self.simple(idx, &[b"PEXPIRE", &key, &ms(ttl)])?;
                Ok(Saved::Done)
            }
        }
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> anyhow::Result<()> {
        let idx = self.node_for(id);
        let (data, lock, wake) = self.keys(idx, id);
        let wl = ms(Duration::from_millis(WAKE_LIFE_MS));
        self.script(idx, Retry::Safe, &scripts().release, &[&data, &lock, &wake], &[owner.as_str().as_bytes(), &wl, b"0"])?;
        Ok(())
    }

    fn lock_holder(&mut self, id: &SessionId) -> anyhow::Result<Option<Token>> {
        let idx = self.node_for(id);
        let (_, lock, _) = self.keys(idx, id);
        let v: Option<Vec<u8>> = self.simple(idx, &[b"GET", &lock])?;
        // phpredis' "host|pid" values are not tokens: never judged dead (holder_is_dead).
        Ok(v.and_then(|v| String::from_utf8(v).ok()).map(Token::from_stored))
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> anyhow::Result<()> {
        let idx = self.node_for(id);
        let (data, lock, wake) = self.keys(idx, id);
        match owner {
            Some(t) => {
                let wl = ms(Duration::from_millis(WAKE_LIFE_MS));
                self.script(idx, Retry::Safe, &scripts().release, &[&data, &lock, &wake], &[t.as_str().as_bytes(), &wl, b"1"])?;
            }
            None => {
                let _: i64 = self.simple(idx, &[b"DEL", &data])?;
            }
        }
        Ok(())
    }

    fn exists(&mut self, id: &SessionId, _max_lifetime: Duration) -> anyhow::Result<bool> {
        let idx = self.node_for(id);
        let (data, _, _) = self.keys(idx, id);
        let n: i64 = self.simple(idx, &[b"EXISTS", &data])?;
        Ok(n > 0)
    }

    /// Redis expires sessions itself (TTL = session.gc_maxlifetime): nothing to do.
    fn gc(&mut self, _max_lifetime: Duration) -> anyhow::Result<u64> {
        Ok(0)
    }

    fn collects(&self) -> bool {
        false
    }

    /// `persistent=0` asks for a connection per request.
    fn reusable(&self) -> bool {
        self.opts.persistent
    }
}

#[cfg(test)]
mod tests;
