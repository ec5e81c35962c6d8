//! `memcached://` DSN → options. Pure parsing (no network), table-driven tests below.
//!
//! ```text
//! memcached://host[:port][,host[:port]...][?prefix=P&replicas=N&timeout=MS&retry=MS&weights=W1,W2...&lock_placement=compat|session&busy_poll=µS]
//! memcached:///run/memcached/memcached.sock       (a unix socket: an absolute path)
//! memcached://10.0.0.1:11211,/run/mc.sock,[::1]:11212
//! ```

use std::path::PathBuf;
use std::time::Duration;
use crate::grammar::{self, option_int as int, Reason};

/// The key prefix php-memcached uses for sessions (`memcached.sess_prefix`).
pub const DEFAULT_PREFIX: &str = "memc.sess.key.";
pub const DEFAULT_PORT: u16 = 11211;
const MAX_SERVERS: usize = 64;
/// Default `retry=`: a server that did not answer within the timeout is skipped for this long, then
/// probed again by the next request that needs it, so it costs `timeout` at most once per this
/// interval per worker. A server that refused the connection is not skipped beyond the request that
/// saw it (a probe costs microseconds): a restarted server serves the next request. (libmemcached's
/// default is 2 s.)
pub const DEFAULT_RETRY: Duration = Duration::from_millis(250);


#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl ServerAddr {
    /// `host:port` or the socket path: what messages show.
    pub fn label(&self) -> String {
        match self {
            ServerAddr::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            ServerAddr::Tcp { host, port } => format!("{host}:{port}"),
            ServerAddr::Unix(p) => p.display().to_string(),
        }
    }

    /// The name libmemcached hashes onto the ketama continuum: `host:port`, `host` alone on 11211,
    /// `path:0` for a socket.
    pub fn ketama_name(&self) -> String {
        match self {
            ServerAddr::Tcp { host, port } if *port == DEFAULT_PORT => host.clone(),
            ServerAddr::Tcp { host, port } => format!("{host}:{port}"),
            ServerAddr::Unix(p) => format!("{}:0", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemcachedOptions {
    pub servers: Vec<ServerAddr>,
    /// Ketama weights, one per server (all 1 unless `weights=` is given).
    pub weights: Vec<u32>,
    /// `weights=` given: libmemcached's weighted (MD5) continuum, as php-memcached's
    /// `memcached.sess_consistent_hash_type=ketama_weighted`.
    pub weighted: bool,
    /// Prepended to every key (session and lock), not hashed: php-memcached's `memcached.sess_prefix`.
    pub prefix: String,
    /// Extra copies of each session on the next servers of the list (libmemcached's replica layout).
    pub replicas: u8,
    /// Connect, read and write timeout for one server.
    pub timeout: Duration,
    /// How long a server that failed is skipped before it is tried again (default
    /// `DEFAULT_RETRY`): the bound on how late a restarted server is noticed by each worker.
    pub retry: Duration,
    /// `lock_placement=session`: the lock item lives on its session's server instead of where
    /// php-memcached looks for it (ketama of `lock.<id>`). Saves a round trip per request on several
    /// servers; php-memcached no longer sees these locks (use it once no php-memcached client is left).
    pub lock_with_session: bool,
    /// How long a read polls the socket before it sleeps (`busy_poll=<µs>`, see `crate::net`).
    pub busy_poll: Duration,
}

impl MemcachedOptions {
    pub fn new(servers: Vec<ServerAddr>) -> Self {
        let n = servers.len();
        MemcachedOptions {
            servers,
            weights: vec![1; n],
            weighted: false,
            prefix: DEFAULT_PREFIX.into(),
            replicas: 0,
            timeout: Duration::from_millis(1000),
            retry: DEFAULT_RETRY,
            lock_with_session: false,
            busy_poll: crate::net::DEFAULT_BUSY_POLL,
        }
    }
}

fn in_server(entry: &str, reason: Reason) -> Reason {
    Reason::Server { server: entry.to_string(), reason: Box::new(reason) }
}

fn server(entry: &str) -> Result<ServerAddr, Reason> {
    let e = entry.trim();
    if e.is_empty() {
        return Err(Reason::Rule("the server list has an empty entry"));
    }
    if e.starts_with('/') {
        return grammar::abs_path("socket path", e).map(ServerAddr::Unix);
    }
    let (host, port) = if let Some(rest) = e.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| in_server(e, Reason::Rule("unclosed '['")))?;
        match after {
            "" => (h, None),
            p if p.starts_with(':') => (h, Some(&p[1..])),
            _ => return Err(in_server(e, Reason::Rule("expected ':port' after ']'"))),
        }
    } else {
        match e.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (e, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if !host_ok || (host.contains(':') && !e.starts_with('[')) {
        return Err(in_server(e, Reason::BadHostV6(host.to_string())));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| in_server(e, Reason::BadPort(p.to_string())))?,
    };
    Ok(ServerAddr::Tcp { host: host.to_string(), port })
}

/// Parses what follows `memcached://` (the server list) and the query options.
pub fn parse(servers_part: &str, params: Vec<(String, String)>) -> Result<MemcachedOptions, Reason> {
    if servers_part.trim().is_empty() {
        return Err(Reason::Rule("no server given (memcached://host:port)"));
    }
    // Refused whole, never quoted: what stands before an '@' may be a password.
    if servers_part.contains('@') {
        return Err(Reason::Rule("memcached:// takes no user or password (user:password@host): the meta protocol has no authentication"));
    }
    let mut servers = Vec::new();
    for entry in servers_part.split(',') {
        let s = server(entry)?;
        if servers.contains(&s) {
            return Err(Reason::ListedTwice(s.label()));
        }
        servers.push(s);
    }
    if servers.len() > MAX_SERVERS {
        return Err(Reason::TooMany { what: "servers", count: servers.len(), max: MAX_SERVERS });
    }
    let mut o = MemcachedOptions::new(servers);
    for (k, v) in params {
        match k.as_str() {
            "prefix" => {
                if v.len() > 128 || v.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
                    return Err(grammar::invalid(&k, &v, "1 to 128 printable ASCII characters without spaces"));
                }
                o.prefix = v;
            }
            "replicas" => {
                let max = o.servers.len() as u64 - 1;
                if max == 0 && v != "0" {
                    return Err(Reason::NeedsServers { key: k.clone(), value: v.clone() });
                }
                o.replicas = int(&k, &v, 0, max.min(8))? as u8;
            }
            "timeout" => o.timeout = grammar::option_millis(&k, &v, 1, 60_000)?,
            "retry" => o.retry = grammar::option_millis(&k, &v, 0, 600_000)?,
            "busy_poll" => o.busy_poll = crate::net::parse_busy_poll(&k, &v)?,
            "weights" => {
                let w: Vec<&str> = v.split(',').collect();
                if w.len() != o.servers.len() {
                    return Err(Reason::WeightsCount { value: v.clone(), servers: o.servers.len() });
                }
                o.weighted = true;
                o.weights = w.iter().map(|x| int("weights", x, 1, 1000).map(|n| n as u32)).collect::<Result<_, _>>()?;
            }
            "lock_placement" => {
                o.lock_with_session = match v.as_str() {
                    "compat" => false,
                    "session" => true,
                    _ => return Err(grammar::invalid(&k, &v, "compat or session")),
                }
            }
            _ => {
                return Err(Reason::UnknownOption {
                    key: k,
                    place: "for memcached://".into(),
                    known: "prefix, replicas, timeout, retry, weights, lock_placement, busy_poll".into(),
                })
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> ServerAddr {
        ServerAddr::Tcp { host: h.into(), port: p }
    }

    fn q(s: &str) -> Vec<(String, String)> {
        s.split('&').filter(|p| !p.is_empty()).map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        }).collect()
    }

    #[test]
    fn valid_forms() {
        let cases: Vec<(&str, &str, MemcachedOptions)> = vec![
            ("127.0.0.1:11211", "", MemcachedOptions::new(vec![tcp("127.0.0.1", 11211)])),
            ("localhost", "", MemcachedOptions::new(vec![tcp("localhost", 11211)])),
            ("a:1,b:2, c:3", "", MemcachedOptions::new(vec![tcp("a", 1), tcp("b", 2), tcp("c", 3)])),
            ("/run/mc.sock", "", MemcachedOptions::new(vec![ServerAddr::Unix("/run/mc.sock".into())])),
            ("[::1]:11212,/s", "", MemcachedOptions::new(vec![tcp("::1", 11212), ServerAddr::Unix("/s".into())])),
            ("[::1]", "", MemcachedOptions::new(vec![tcp("::1", 11211)])),
            (
                "a:1,b:2,c:3",
                "prefix=app.&replicas=2&timeout=250&retry=0&weights=1,2,3&lock_placement=session&busy_poll=0",
                MemcachedOptions {
                    prefix: "app.".into(),
                    replicas: 2,
                    timeout: Duration::from_millis(250),
                    retry: Duration::ZERO,
                    weights: vec![1, 2, 3],
                    weighted: true,
                    lock_with_session: true,
                    busy_poll: Duration::ZERO,
                    ..MemcachedOptions::new(vec![tcp("a", 1), tcp("b", 2), tcp("c", 3)])
                },
            ),
            ("h", "replicas=0", MemcachedOptions::new(vec![tcp("h", 11211)])),
        ];
        for (servers, query, want) in cases {
            assert_eq!(parse(servers, q(query)).unwrap(), want, "{servers:?} {query:?}");
        }
    }

    #[test]
    fn invalid_forms_name_the_problem() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "", "no server given"),
            ("a:1,,b:2", "", "empty entry"),
            ("a:0", "", "port \"0\" must be an integer from 1 to 65535"),
            ("a:99999", "", "from 1 to 65535"),
            ("a:x", "", "port \"x\""),
            ("a b:1", "", "not a host name"),
            ("::1:11211", "", "[v6]:port"),
            ("[::1", "", "unclosed"),
            ("a:1,a:1", "", "listed twice"),
            ("/run/../x.sock", "", "contains \"..\""),
            ("a:1", "replicas=1", "needs more than one server"),
            ("a:1,b:1", "replicas=2", "from 0 to 1"),
            ("user:Zq9secret@a:1", "", "takes no user or password"),
            ("a:1", "busy_poll=1001", "busy_poll=\"1001\" must be an integer from 0 to 1000"),
            ("a:1", "timeout=0", "timeout=\"0\" must be an integer from 1 to 60000"),
            ("a:1", "timeout=abc", "must be an integer"),
            ("a:1", "retry=-1", "must be an integer"),
            ("a:1", "prefix=a b", "printable ASCII"),
            ("a:1,b:2", "weights=1", "one weight per server"),
            ("a:1,b:2", "weights=1,0", "from 1 to 1000"),
            ("a:1", "ttl=5", "unknown option \"ttl\""),
            ("a:1", "lock_placement=x", "compat or session"),
        ];
        for e in crate::grammar::assert_refused(parse, cases) {
            assert!(!e.contains("Zq9"), "a secret quoted: {e}");
        }
    }

    #[test]
    fn ketama_names_follow_libmemcached() {
        assert_eq!(tcp("10.0.0.1", 11211).ketama_name(), "10.0.0.1");
        assert_eq!(tcp("10.0.0.1", 11212).ketama_name(), "10.0.0.1:11212");
        assert_eq!(tcp("::1", 5).label(), "[::1]:5");
    }
}
