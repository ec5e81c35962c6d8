//! `session.save_path` forms of the Redis engine → `RedisOptions`. Pure parsing, table-driven tests.
//!
//! Two dialects:
//! - our own: `redis://[[user]:password@]host[:port][/db][?prefix=…&timeout=…&read_timeout=…&persistent=0|1&busy_poll=µs]`
//!   and `unix:///path/redis.sock[?db=…&prefix=…&…]`;
//! - phpredis' own, accepted verbatim: `tcp://host:port?auth=…&database=…&prefix=…&timeout=…`, a comma
//!   (or space) separated list of such URLs (a session lives on the node phpredis would choose), and
//!   `unix:///path?…`.
//!
//! - phpredis' `rediscluster` handler's own, accepted verbatim:
//!   `seed[]=host:port&seed[]=host:port&timeout=2&read_timeout=2&failover=error&persistent=1&auth=…&prefix=…`
//!   (`tls://host:port` seeds and `stream[cafile]=…` style TLS options as phpredis takes them).
//!
//! Cluster and Sentinel have TLS twins, `rediss-cluster://` and `rediss-sentinel://`, taking the
//! `rediss://` options (ca, cert, key, verify); for Sentinel, TLS applies to the Sentinels and to the
//! master they name. Sentinels with `requirepass` get their own credentials (`sentinel_user=`,
//! `sentinel_password=`), separate from the master's `user:password@`.
//!
//! Every standalone/Sentinel form uses phpredis' default key prefix `PHPREDIS_SESSION:` and every cluster
//! form phpredis' `rediscluster` default `PHPREDIS_CLUSTER_SESSION:`, so that switching
//! `session.save_handler` between phpredis' handlers and `session_proxy` logs nobody out.

use std::path::PathBuf;
use std::time::Duration;
use crate::grammar::{self, parse_query, percent_decode, split_query, Bools, Encoding, Reason};
use crate::net::parse_busy_poll;

/// phpredis' default key prefix.
pub const DEFAULT_PREFIX: &str = "PHPREDIS_SESSION:";
/// The default prefix of phpredis' `rediscluster` session handler.
pub const DEFAULT_CLUSTER_PREFIX: &str = "PHPREDIS_CLUSTER_SESSION:";
pub const DEFAULT_PORT: u16 = 6379;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(2000);

pub const FORMS: &str = "\"redis[s]://[[user]:password@]host[:port][/db][?prefix=…&timeout=S&read_timeout=S&persistent=0|1&busy_poll=µS]\", \
\"unix:///path/redis.sock[?db=N&prefix=…]\", phpredis' \"tcp://host:port[?auth=…&database=N&prefix=…&timeout=S&weight=N]\" \
(a comma list of them, or unix://…), \"redis[s]-cluster://host:port[,…]\", \"redis[s]-sentinel://host:port[,…]/<master>\", \
phpredis' \"seed[]=host:port&seed[]=…&auth=…&prefix=…\"";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// How a TLS server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verify {
    /// Chain to a trusted CA and the host name (the default).
    Full,
    /// Chain to a trusted CA, any host name.
    Ca,
    /// Nothing (encryption without authentication; for tests only).
    None,
}

/// `rediss://` settings. Files are read when connecting, so a renewed certificate is picked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tls {
    /// PEM CA bundle to trust instead of the system's.
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require them.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub verify: Verify,
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "{host}:{port}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// One Redis server and how to talk to it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub addr: Addr,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub prefix: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// phpredis' `weight`: this node's share of sessions in a list.
    pub weight: u32,
    /// Some for `rediss://`.
    pub tls: Option<Tls>,
    /// How long a read polls the socket before it sleeps (`busy_poll=<µs>`, see `crate::net`).
    pub busy_poll: Duration,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("weight", &self.weight)
            .field("tls", &self.tls)
            .field("busy_poll", &self.busy_poll)
            .finish()
    }
}

impl Node {
    fn new(addr: Addr) -> Self {
        Node {
            addr,
            username: None,
            password: None,
            db: 0,
            prefix: DEFAULT_PREFIX.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            weight: 1,
            tls: None,
            busy_poll: crate::net::DEFAULT_BUSY_POLL,
        }
    }
}

/// How the servers of a DSN are used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Independent servers; a session lives on the one phpredis' weight rule picks.
    Standalone,
    /// `nodes` are seeds of one Redis Cluster.
    Cluster,
    /// `nodes` are Sentinels; the session server is the current master of this name.
    Sentinel(String),
}

/// A user name and password (the password never shown by `Debug`).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedisOptions {
    pub mode: Mode,
    /// Standalone servers, or cluster seeds (all with the same credentials and options), or Sentinels
    /// (with the master's credentials, db and options).
    pub nodes: Vec<Node>,
    /// Keep the connection for later requests of this worker (default on).
    pub persistent: bool,
    /// Sentinel mode: what the Sentinels themselves are asked with (`sentinel_user=`, `sentinel_password=`).
    pub sentinel_auth: Credentials,
}

impl RedisOptions {
    /// For messages: the servers, never a password.
    pub fn describe(&self) -> String {
        let hosts = || self.nodes.iter().map(|n| n.addr.to_string()).collect::<Vec<_>>().join(",");
        let s = if self.nodes.first().is_some_and(|n| n.tls.is_some()) { "s" } else { "" };
        match &self.mode {
            Mode::Cluster => return format!("redis{s}-cluster://{}", hosts()),
            Mode::Sentinel(name) => return format!("redis{s}-sentinel://{}/{name}/{}", hosts(), self.nodes[0].db),
            Mode::Standalone => {}
        }
        let list: Vec<String> = self
            .nodes
            .iter()
            .map(|n| match &n.addr {
                Addr::Unix(p) => format!("unix://{}", p.display()),
                a if n.tls.is_some() => format!("rediss://{a}/{}", n.db),
                a => format!("redis://{a}/{}", n.db),
            })
            .collect();
        list.join(",")
    }
}

/// Parses a Redis-family save_path. Errors are the reason only (the caller adds the save_path, masked).
/// Each form is parsed directly, in its own words: no form is rewritten into another one.
pub fn parse(save_path: &str) -> Result<RedisOptions, Reason> {
    if is_phpredis_cluster_form(save_path) {
        return parse_phpredis_cluster(save_path);
    }
    let (scheme, rest) = save_path.split_once("://").unwrap_or(("", ""));
    let standalone = |nodes, persistent| RedisOptions { mode: Mode::Standalone, nodes, persistent, sentinel_auth: Credentials::default() };
    match scheme.to_ascii_lowercase().as_str() {
        "redis" => parse_redis_url(rest, &REDIS).map(|(n, p)| standalone(vec![n], p)),
        "rediss" => parse_redis_url(rest, &REDISS).map(|(n, p)| standalone(vec![n], p)),
        "redis-cluster" => parse_cluster_url(rest, &REDIS_CLUSTER),
        "rediss-cluster" => parse_cluster_url(rest, &REDISS_CLUSTER),
        "redis-sentinel" => parse_sentinel_url(rest, &REDIS_SENTINEL),
        "rediss-sentinel" => parse_sentinel_url(rest, &REDISS_SENTINEL),
        "tcp" | "unix" => {
            let mut nodes = Vec::new();
            let mut persistent = true;
            for url in save_path.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|u| !u.is_empty()) {
                let (node, p) = parse_phpredis_url(url)?;
                persistent &= p;
                nodes.push(node);
            }
            if nodes.is_empty() {
                return Err(Reason::Rule("no server given"));
            }
            if nodes.len() > 64 {
                return Err(Reason::TooMany { what: "servers", count: nodes.len(), max: 64 });
            }
            Ok(standalone(nodes, persistent))
        }
        other => Err(Reason::UnknownScheme(other.to_string())),
    }
}

/// One of our URL forms: its name in messages and whether it speaks TLS (and so takes ca, cert, key,
/// verify).
struct UrlForm {
    name: &'static str,
    tls: bool,
}

const REDIS: UrlForm = UrlForm { name: "redis://", tls: false };
const REDISS: UrlForm = UrlForm { name: "rediss://", tls: true };
const REDIS_CLUSTER: UrlForm = UrlForm { name: "redis-cluster://", tls: false };
const REDISS_CLUSTER: UrlForm = UrlForm { name: "rediss-cluster://", tls: true };
const REDIS_SENTINEL: UrlForm = UrlForm { name: "redis-sentinel://", tls: false };
const REDISS_SENTINEL: UrlForm = UrlForm { name: "rediss-sentinel://", tls: true };

/// The options all our URL forms take, and the TLS forms' own.
const URL_OPTIONS: &str = "prefix, timeout, read_timeout, persistent, busy_poll";
const TLS_OPTIONS: &str = ", ca, cert, key, verify";
/// The Sentinel forms' own options, before the others.
const SENTINEL_OPTIONS: &str = "db, sentinel_user, sentinel_password, ";

/// What the options of a URL form set beyond the node.
struct UrlOptions {
    persistent: bool,
    prefix_given: bool,
}

/// Applies the options of `form` to `node`. `own` takes the form's own options first (Sentinel's
/// db and credentials): it answers whether it knew the key; `own_known` lists them for the message.
fn url_options(
    node: &mut Node,
    query: Option<&str>,
    form: &UrlForm,
    own_known: &str,
    mut own: impl FnMut(&str, &str) -> Result<bool, Reason>,
) -> Result<UrlOptions, Reason> {
    let mut o = UrlOptions { persistent: true, prefix_given: false };
    let mut t = Tls { ca: None, cert: None, key: None, verify: Verify::Full };
    for (k, v) in parse_query(query)? {
        if own(&k, &v)? {
            continue;
        }
        match k.as_str() {
            "prefix" => {
                node.prefix = parse_prefix(&v)?;
                o.prefix_given = true;
            }
            "timeout" => node.connect_timeout = grammar::option_secs(&k, &v)?,
            "read_timeout" => node.read_timeout = grammar::option_secs(&k, &v)?,
            "persistent" => o.persistent = grammar::option_bool(&k, &v, Bools::Digits)?,
            "busy_poll" => node.busy_poll = parse_busy_poll(&k, &v)?,
            "ca" if form.tls => t.ca = Some(parse_file(&k, &v)?),
            "cert" if form.tls => t.cert = Some(parse_file(&k, &v)?),
            "key" if form.tls => t.key = Some(parse_file(&k, &v)?),
            "verify" if form.tls => {
                t.verify = match v.as_str() {
                    "full" => Verify::Full,
                    "ca" => Verify::Ca,
                    "none" => Verify::None,
                    _ => return Err(grammar::invalid(&k, &v, "full, ca or none")),
                }
            }
            _ => {
                let tls = if form.tls { TLS_OPTIONS } else { "" };
                return Err(Reason::UnknownOption { key: k, place: format!("for {}", form.name), known: format!("{own_known}{URL_OPTIONS}{tls}") });
            }
        }
    }
    if t.cert.is_some() != t.key.is_some() {
        return Err(Reason::Rule("options cert and key go together (a client certificate and its key)"));
    }
    if form.tls {
        node.tls = Some(t);
    }
    Ok(o)
}

/// `[user]:password@` or `password@` (a lone userinfo is the password, as redis-cli and phpredis read it).
fn userinfo(node: &mut Node, ui: &str) -> Result<(), Reason> {
    let (user, pass) = ui.split_once(':').unwrap_or(("", ui));
    if !user.is_empty() {
        node.username = Some(percent_decode(user)?);
    }
    if !pass.is_empty() {
        node.password = Some(percent_decode(pass)?);
    }
    Ok(())
}

/// `authority` cut at its last '@': the userinfo and the host part.
fn split_userinfo(authority: &str) -> (Option<&str>, &str) {
    match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    }
}

/// `host:port[,host:port…]` of the cluster and Sentinel forms, each a copy of `template`.
fn node_list(hosts: &str, template: &Node, what: &'static str) -> Result<Vec<Node>, Reason> {
    let mut nodes = Vec::new();
    for hp in hosts.split(',').map(str::trim) {
        let (host, port) = parse_host_port(hp)?;
        nodes.push(Node { addr: Addr::Tcp { host, port }, ..template.clone() });
    }
    if nodes.len() > 64 {
        return Err(Reason::TooMany { what, count: nodes.len(), max: 64 });
    }
    Ok(nodes)
}

/// `redis[s]://[[user]:password@]host[:port][/db][?…]` (what follows the scheme).
fn parse_redis_url(rest: &str, form: &UrlForm) -> Result<(Node, bool), Reason> {
    let (main, query) = split_query(rest);
    let (authority, path) = main.split_once('/').unwrap_or((main, ""));
    let (ui, hostport) = split_userinfo(authority);
    let (host, port) = parse_host_port(hostport)?;
    let mut node = Node::new(Addr::Tcp { host, port });
    if let Some(ui) = ui {
        userinfo(&mut node, ui)?;
    }
    let path = path.trim_end_matches('/');
    if !path.is_empty() {
        node.db = parse_db(None, path)?;
    }
    let o = url_options(&mut node, query, form, "", |_, _| Ok(false))?;
    Ok((node, o.persistent))
}

/// `redis[s]-cluster://[[user]:password@]host:port[,host:port…][?prefix=…&timeout=…&read_timeout=…&persistent=…]`
/// (`rediss-cluster://` also takes ca, cert, key, verify).
fn parse_cluster_url(rest: &str, form: &UrlForm) -> Result<RedisOptions, Reason> {
    let (main, query) = split_query(rest);
    let main = main.trim_end_matches('/');
    if main.contains('/') {
        return Err(Reason::NoDatabase(form.name.to_string()));
    }
    let (ui, hosts) = split_userinfo(main);
    let mut template = Node::new(Addr::Tcp { host: String::new(), port: DEFAULT_PORT });
    if let Some(ui) = ui {
        userinfo(&mut template, ui)?;
    }
    let o = url_options(&mut template, query, form, "", |_, _| Ok(false))?;
    if !o.prefix_given {
        template.prefix = DEFAULT_CLUSTER_PREFIX.into();
    }
    let nodes = node_list(hosts, &template, "seeds")?;
    Ok(RedisOptions { mode: Mode::Cluster, nodes, persistent: o.persistent, sentinel_auth: Credentials::default() })
}

/// `redis[s]-sentinel://[[user]:password@]host:port[,host:port…]/<master-name>[?db=N&prefix=…&timeout=…&…]`:
/// the credentials, db and options are for the master; the Sentinels are asked with `sentinel_user=` /
/// `sentinel_password=` (none by default). `rediss-sentinel://` speaks TLS to the Sentinels and to the
/// master, with the same ca/cert/key/verify.
fn parse_sentinel_url(rest: &str, form: &UrlForm) -> Result<RedisOptions, Reason> {
    let (main, query) = split_query(rest);
    let (hostpart, name) = main
        .split_once('/')
        .ok_or_else(|| Reason::NoMasterName(form.name.to_string()))?;
    let name = percent_decode(name.trim_end_matches('/'))?;
    if name.is_empty() || name.contains('/') || name.chars().any(|c| c.is_whitespace()) {
        return Err(Reason::BadMasterName(name));
    }
    let (ui, hosts) = split_userinfo(hostpart);
    let mut template = Node::new(Addr::Tcp { host: String::new(), port: DEFAULT_PORT });
    if let Some(ui) = ui {
        userinfo(&mut template, ui)?;
    }
    let mut db = 0;
    let mut sentinel_auth = Credentials::default();
    let o = url_options(&mut template, query, form, SENTINEL_OPTIONS, |k, v| {
        match k {
            "db" => db = parse_db(Some(k), v)?,
            "sentinel_user" => sentinel_auth.username = Some(v.to_string()),
            "sentinel_password" => sentinel_auth.password = Some(v.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if sentinel_auth.username.is_some() && sentinel_auth.password.is_none() {
        return Err(Reason::Rule("option sentinel_user needs sentinel_password (the Sentinels' password for that user)"));
    }
    template.db = db;
    let nodes = node_list(hosts, &template, "Sentinels")?;
    Ok(RedisOptions { mode: Mode::Sentinel(name), nodes, persistent: o.persistent, sentinel_auth })
}

/// The key that marks phpredis' `rediscluster` form (a query string, no `scheme://`).
pub const PHPREDIS_CLUSTER_KEY: &str = "seed";

/// Whether `save_path` is phpredis' `rediscluster` form: a query string with a `seed[]` key (and no
/// `scheme://` before it).
pub fn is_phpredis_cluster_form(save_path: &str) -> bool {
    grammar::is_query_form(save_path, PHPREDIS_CLUSTER_KEY)
}

/// phpredis' `session.save_handler = rediscluster` save_path, verbatim:
/// `seed[]=host:port&seed[]=host:port&timeout=2&read_timeout=2&failover=error&persistent=1&auth=…&prefix=…`.
/// `auth` may be a password or `auth[]=user&auth[]=pass`; `failover` (none, error, distribute,
/// distribute_slaves) only chooses where phpredis reads from — session_proxy always reads from the
/// masters, which is at least as fresh. TLS as phpredis takes it: `seed[]=tls://host:port` and
/// `stream[cafile]=…`, `stream[local_cert]=…`, `stream[local_pk]=…`, `stream[verify_peer]=0|1`,
/// `stream[verify_peer_name]=0|1`.
fn parse_phpredis_cluster(save_path: &str) -> Result<RedisOptions, Reason> {
    const KNOWN: &str = "seed[], timeout, read_timeout, persistent, prefix, auth, failover, stream[cafile], \
        stream[local_cert], stream[local_pk], stream[verify_peer], stream[verify_peer_name]";
    let mut seeds: Vec<String> = Vec::new();
    let mut auth_list: Vec<String> = Vec::new();
    let mut auth_user: Option<String> = None;
    let mut auth_pass: Option<String> = None;
    let mut seen: Vec<String> = Vec::new();
    let mut node = Node::new(Addr::Tcp { host: String::new(), port: DEFAULT_PORT });
    node.prefix = DEFAULT_CLUSTER_PREFIX.into();
    let mut persistent = true;
    let mut t = Tls { ca: None, cert: None, key: None, verify: Verify::Full };
    let mut tls_opt: Option<String> = None;
    for (k, v) in grammar::decode_pairs(save_path.trim(), Encoding::Form)? {
        let is_list = k == "seed[]" || k == "auth[]";
        if !is_list {
            if seen.contains(&k) {
                return Err(Reason::GivenTwice(k));
            }
            seen.push(k.clone());
        }
        // phpredis ignores an empty prefix (and keeps its default); other values must be there.
        if v.is_empty() && k != "prefix" {
            return Err(Reason::EmptyValue(k));
        }
        match k.as_str() {
            "seed[]" => seeds.push(v),
            "timeout" | "read_timeout" => {
                // phpredis: 0 (or absent) means its default; negative values are refused.
                let zero = v.parse::<f64>().is_ok_and(|x| x == 0.0);
                if !zero {
                    let d = grammar::option_secs(&k, &v)?;
                    if k == "timeout" { node.connect_timeout = d } else { node.read_timeout = d }
                }
            }
            "persistent" => persistent = grammar::option_bool(&k, &v, Bools::Php)?,
            "prefix" if v.is_empty() => {}
            "prefix" => node.prefix = parse_prefix(&v)?,
            "auth" => auth_pass = Some(v),
            "auth[]" => auth_list.push(v),
            "auth[user]" => auth_user = Some(v),
            "auth[pass]" | "auth[password]" => auth_pass = Some(v),
            "failover" => {
                if !["none", "error", "distribute", "distribute_slaves"].contains(&v.to_ascii_lowercase().as_str()) {
                    return Err(grammar::invalid(&k, &v, "none, error, distribute or distribute_slaves"));
                }
            }
            "stream[cafile]" => { t.ca = Some(parse_file(&k, &v)?); tls_opt = Some(k) }
            "stream[local_cert]" => { t.cert = Some(parse_file(&k, &v)?); tls_opt = Some(k) }
            "stream[local_pk]" => { t.key = Some(parse_file(&k, &v)?); tls_opt = Some(k) }
            "stream[verify_peer]" | "stream[verify_peer_name]" => {
                if !grammar::option_bool(&k, &v, Bools::Php)? {
                    t.verify = match (k.as_str(), t.verify) {
                        ("stream[verify_peer]", _) | (_, Verify::None) => Verify::None,
                        _ => Verify::Ca,
                    };
                }
                tls_opt = Some(k);
            }
            "seed" => return Err(Reason::Rule("option \"seed\" must be a list: seed[]=host:port&seed[]=host:port")),
            _ => return Err(Reason::UnknownOption { key: k, place: "in phpredis' cluster save_path".into(), known: KNOWN.into() }),
        }
    }
    match auth_list.len() {
        0 => {}
        1 if auth_pass.is_none() => auth_pass = auth_list.pop(),
        2 if auth_pass.is_none() && auth_user.is_none() => {
            auth_pass = auth_list.pop();
            auth_user = auth_list.pop();
        }
        _ => return Err(Reason::Rule("option auth is given more than once (write auth=password or auth[]=user&auth[]=password)")),
    }
    node.username = auth_user;
    node.password = auth_pass;
    if t.cert.is_some() != t.key.is_some() {
        return Err(Reason::Rule("options stream[local_cert] and stream[local_pk] go together (a client certificate and its key)"));
    }
    if seeds.is_empty() {
        return Err(Reason::Rule("no seed given (write seed[]=host:port&seed[]=host:port)"));
    }
    if seeds.len() > 64 {
        return Err(Reason::TooMany { what: "seeds", count: seeds.len(), max: 64 });
    }
    let mut nodes = Vec::new();
    let mut tls_seeds = 0;
    for seed in &seeds {
        let hp = match seed.split_once("://") {
            Some((scheme, hp)) if scheme.eq_ignore_ascii_case("tls") || scheme.eq_ignore_ascii_case("ssl") => {
                tls_seeds += 1;
                hp
            }
            Some((scheme, hp)) if scheme.eq_ignore_ascii_case("tcp") => hp,
            Some((scheme, _)) => return Err(Reason::SeedScheme { seed: seed.to_string(), scheme: scheme.to_string() }),
            None => seed.as_str(),
        };
        if hp.contains(',') || hp.contains('/') || hp.contains('@') {
            return Err(Reason::SeedNotHostPort(mask(hp)));
        }
        let (host, port) = parse_host_port(hp.trim())?;
        nodes.push(Node { addr: Addr::Tcp { host, port }, ..node.clone() });
    }
    if tls_seeds != 0 && tls_seeds != nodes.len() {
        return Err(Reason::Rule("seeds mix tls:// and plain host:port (all or none must be tls://)"));
    }
    if tls_seeds > 0 {
        nodes.iter_mut().for_each(|n| n.tls = Some(t.clone()));
    } else if let Some(k) = tls_opt {
        return Err(Reason::TlsOptionOnPlainSeeds(k.to_string()));
    }
    Ok(RedisOptions { mode: Mode::Cluster, nodes, persistent, sentinel_auth: Credentials::default() })
}

fn parse_phpredis_url(url: &str) -> Result<(Node, bool), Reason> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| Reason::NotUrl(url.to_string()))?;
    let (main, query) = split_query(rest);
    let mut node = match scheme.to_ascii_lowercase().as_str() {
        "tcp" => {
            let hostport = main.trim_end_matches('/');
            if hostport.contains('@') || hostport.contains('/') {
                return Err(Reason::TcpNotHostPort(mask(hostport)));
            }
            let (host, port) = parse_host_port(hostport)?;
            Node::new(Addr::Tcp { host, port })
        }
        "unix" => Node::new(Addr::Unix(grammar::abs_path("unix socket path", &percent_decode(main)?)?)),
        other => return Err(Reason::MixedScheme(other.to_string())),
    };
    let mut persistent = true;
    for (k, v) in parse_query(query)? {
        match k.as_str() {
            "auth" | "password" => node.password = Some(v),
            "user" | "username" => node.username = Some(v),
            "database" | "db" => node.db = parse_db(Some(&k), &v)?,
            "prefix" => node.prefix = parse_prefix(&v)?,
            "timeout" => node.connect_timeout = grammar::option_secs(&k, &v)?,
            "read_timeout" => node.read_timeout = grammar::option_secs(&k, &v)?,
            "persistent" => persistent = grammar::option_bool(&k, &v, Bools::Digits)?,
            "busy_poll" => node.busy_poll = parse_busy_poll(&k, &v)?,
            "weight" => node.weight = grammar::option_int(&k, &v, 1, 1000)? as u32,
            // phpredis connection tuning with no meaning here; accepted so a phpredis save_path works as is.
            "persistent_id" | "retry_interval" => {}
            _ => {
                return Err(Reason::UnknownOption {
                    key: k,
                    place: format!("for {scheme}://"),
                    known: "auth, user, database, db, prefix, timeout, read_timeout, persistent, busy_poll, weight, \
                            persistent_id, retry_interval"
                        .into(),
                })
            }
        }
    }
    Ok((node, persistent))
}

fn mask(s: &str) -> String {
    match s.rfind('@') {
        Some(i) => format!("***{}", &s[i..]),
        None => s.to_string(),
    }
}

fn parse_host_port(hp: &str) -> Result<(String, u16), Reason> {
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| Reason::UnclosedBracket(hp.to_string()))?;
        (h, after.strip_prefix(':'))
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    if host.is_empty() {
        return Err(Reason::Rule("no host given"));
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')) {
        return Err(Reason::BadHost(host.to_string()));
    }
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => grammar::int(p, 1, 65535)
            .ok_or_else(|| Reason::BadPort(p.to_string()))? as u16,
    };
    Ok((host.to_string(), port))
}

/// `key`: the option name, or None for the `/db` path of redis://.
fn parse_db(key: Option<&str>, v: &str) -> Result<i64, Reason> {
    match key {
        Some(k) => grammar::option_int(k, v, 0, 65535).map(|n| n as i64),
        None => grammar::int(v, 0, 65535)
            .map(|n| n as i64)
            .ok_or_else(|| Reason::BadDatabase(v.to_string())),
    }
}

fn parse_file(key: &str, v: &str) -> Result<PathBuf, Reason> {
    grammar::abs_path("file", v).map_err(|_| grammar::invalid(key, v, "an absolute file path without \"..\""))
}

fn parse_prefix(v: &str) -> Result<String, Reason> {
    if v.len() > 512 {
        return Err(Reason::OptionTooLong { key: "prefix", len: v.len(), max: 512 });
    }
    Ok(v.to_string())
}

/// The node phpredis picks for a session id: the id's first 4 bytes as a native-endian u32, modulo the
/// total weight, walked over the servers in the order phpredis keeps them (the last URL first).
pub fn pick_node(nodes: &[Node], id: &[u8]) -> usize {
    if nodes.len() <= 1 {
        return 0;
    }
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(id) {
        *d = *s;
    }
    let total: u32 = nodes.iter().map(|n| n.weight).sum();
    let pos = u32::from_ne_bytes(b) % total.max(1);
    let mut i = 0u32;
    for (idx, n) in nodes.iter().enumerate().rev() {
        if pos >= i && pos < i + n.weight {
            return idx;
        }
        i += n.weight;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Node {
        Node::new(Addr::Tcp { host: host.into(), port })
    }

    #[test]
    fn valid_forms() {
        let one = |n: Node| RedisOptions { mode: Mode::Standalone, nodes: vec![n], persistent: true, sentinel_auth: Credentials::default() };
        let cases: Vec<(&str, RedisOptions)> = vec![
            ("redis://127.0.0.1", one(tcp("127.0.0.1", 6379))),
            ("redis://127.0.0.1:6380/", one(tcp("127.0.0.1", 6380))),
            ("REDIS://h:1/3", one(Node { db: 3, ..tcp("h", 1) })),
            ("redis://[::1]:7000", one(tcp("::1", 7000))),
            ("redis://:s%40cret@h", one(Node { password: Some("s@cret".into()), ..tcp("h", 6379) })),
            ("redis://pw@h", one(Node { password: Some("pw".into()), ..tcp("h", 6379) })),
            (
                "redis://alice:pw@h:6379/2",
                one(Node { username: Some("alice".into()), password: Some("pw".into()), db: 2, ..tcp("h", 6379) }),
            ),
            ("redis://alice:@h", one(Node { username: Some("alice".into()), ..tcp("h", 6379) })),
            (
                "redis://h?prefix=app:&timeout=0.25&read_timeout=3&persistent=0",
                RedisOptions {
                    mode: Mode::Standalone,
                    nodes: vec![Node {
                        prefix: "app:".into(),
                        connect_timeout: Duration::from_millis(250),
                        read_timeout: Duration::from_secs(3),
                        ..tcp("h", 6379)
                    }],
                    persistent: false,
                    sentinel_auth: Credentials::default(),
                },
            ),
            ("unix:///run/redis.sock", one(Node::new(Addr::Unix("/run/redis.sock".into())))),
            (
                "rediss://:pw@h:6380/1?ca=/etc/ca.pem&verify=ca",
                one(Node {
                    password: Some("pw".into()),
                    db: 1,
                    tls: Some(Tls { ca: Some("/etc/ca.pem".into()), cert: None, key: None, verify: Verify::Ca }),
                    ..tcp("h", 6380)
                }),
            ),
            (
                "rediss://h?cert=/c.pem&key=/k.pem",
                one(Node {
                    tls: Some(Tls { ca: None, cert: Some("/c.pem".into()), key: Some("/k.pem".into()), verify: Verify::Full }),
                    ..tcp("h", 6379)
                }),
            ),
            (
                "unix:///run/redis.sock?db=4&prefix=x_",
                one(Node { db: 4, prefix: "x_".into(), ..Node::new(Addr::Unix("/run/redis.sock".into())) }),
            ),
            ("tcp://10.0.0.1:6379", one(tcp("10.0.0.1", 6379))),
            (
                "tcp://h:6379?auth=pw&database=1&prefix=P:&timeout=2.5&read_timeout=1&persistent=1&persistent_id=x&retry_interval=100&weight=2",
                one(Node {
                    password: Some("pw".into()),
                    db: 1,
                    prefix: "P:".into(),
                    connect_timeout: Duration::from_millis(2500),
                    read_timeout: Duration::from_secs(1),
                    weight: 2,
                    ..tcp("h", 6379)
                }),
            ),
            (
                "tcp://a:1?weight=2, tcp://b:2 unix:///s.sock?database=3",
                RedisOptions {
                    mode: Mode::Standalone,
                    nodes: vec![
                        Node { weight: 2, ..tcp("a", 1) },
                        tcp("b", 2),
                        Node { db: 3, ..Node::new(Addr::Unix("/s.sock".into())) },
                    ],
                    persistent: true,
                    sentinel_auth: Credentials::default(),
                },
            ),
            (
                "redis-cluster://127.0.0.1:7000, 127.0.0.1:7001",
                RedisOptions {
                    mode: Mode::Cluster,
                    nodes: [7000, 7001]
                        .iter()
                        .map(|p| Node { prefix: DEFAULT_CLUSTER_PREFIX.into(), ..tcp("127.0.0.1", *p) })
                        .collect(),
                    persistent: true,
                    sentinel_auth: Credentials::default(),
                },
            ),
            (
                "redis-cluster://u:p@h1:1,h2?prefix=x:&timeout=0.1",
                RedisOptions {
                    mode: Mode::Cluster,
                    nodes: ["h1:1", "h2:6379"]
                        .iter()
                        .map(|hp| {
                            let (h, p) = hp.split_once(':').unwrap();
                            Node {
                                username: Some("u".into()),
                                password: Some("p".into()),
                                prefix: "x:".into(),
                                connect_timeout: Duration::from_millis(100),
                                ..tcp(h, p.parse().unwrap())
                            }
                        })
                        .collect(),
                    persistent: true,
                    sentinel_auth: Credentials::default(),
                },
            ),
            (
                "redis-sentinel://:pw@s1:26379,s2/mymaster?db=2&prefix=p:",
                RedisOptions {
                    mode: Mode::Sentinel("mymaster".into()),
                    nodes: ["s1", "s2"]
                        .iter()
                        .map(|h| Node { password: Some("pw".into()), db: 2, prefix: "p:".into(), ..tcp(h, if *h == "s1" { 26379 } else { 6379 }) })
                        .collect(),
                    persistent: true,
                    sentinel_auth: Credentials::default(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn tls_cluster_and_sentinel_forms() {
        let tls = |ca: Option<&str>, verify| Some(Tls { ca: ca.map(Into::into), cert: None, key: None, verify });
        let o = parse("rediss-cluster://u:pw@h1:1,h2:2?ca=/ca.pem&verify=ca").unwrap();
        assert_eq!(o.mode, Mode::Cluster);
        assert_eq!(o.nodes.len(), 2);
        for n in &o.nodes {
            assert_eq!(n.tls, tls(Some("/ca.pem"), Verify::Ca));
            assert_eq!((n.username.as_deref(), n.password.as_deref()), (Some("u"), Some("pw")));
            assert_eq!(n.prefix, DEFAULT_CLUSTER_PREFIX);
        }
        assert_eq!(o.describe(), "rediss-cluster://h1:1,h2:2");
        assert_eq!(parse("redis-cluster://h1:1").unwrap().nodes[0].tls, None);

        let o = parse("rediss-sentinel://:masterpw@s1:26379,s2/mymaster?db=2&sentinel_user=sent&sentinel_password=sentpw&cert=/c.pem&key=/k.pem").unwrap();
        assert_eq!(o.mode, Mode::Sentinel("mymaster".into()));
        assert_eq!(o.sentinel_auth, Credentials { username: Some("sent".into()), password: Some("sentpw".into()) });
        for n in &o.nodes {
            assert_eq!(n.password.as_deref(), Some("masterpw"), "userinfo stays the master's");
            assert_eq!(n.db, 2);
            assert_eq!(n.tls, Some(Tls { ca: None, cert: Some("/c.pem".into()), key: Some("/k.pem".into()), verify: Verify::Full }));
        }
        assert_eq!(o.describe(), "rediss-sentinel://s1:26379,s2:6379/mymaster/2");
        assert!(!format!("{o:?}").contains("sentpw") && !format!("{o:?}").contains("masterpw"));
        let o = parse("redis-sentinel://s1/m?sentinel_password=x%26y").unwrap();
        assert_eq!(o.sentinel_auth, Credentials { username: None, password: Some("x&y".into()) });
        assert_eq!(o.nodes[0].tls, None);
        assert_eq!(o.nodes[0].password, None);
    }

    #[test]
    fn phpredis_cluster_form() {
        let o = parse("seed[]=127.0.0.1:7000&seed[]=127.0.0.1:7001&timeout=2&read_timeout=2.5&failover=error&persistent=1&auth=pw&prefix=P:").unwrap();
        assert_eq!(o.mode, Mode::Cluster);
        assert!(o.persistent);
        assert_eq!(o.nodes.iter().map(|n| n.addr.to_string()).collect::<Vec<_>>(), ["127.0.0.1:7000", "127.0.0.1:7001"]);
        for n in &o.nodes {
            assert_eq!((n.username.as_deref(), n.password.as_deref()), (None, Some("pw")));
            assert_eq!(n.prefix, "P:");
            assert_eq!(n.connect_timeout, Duration::from_secs(2));
            assert_eq!(n.read_timeout, Duration::from_millis(2500));
            assert_eq!(n.tls, None);
        }
        // phpredis' defaults: its rediscluster prefix; an empty prefix and 0 timeouts mean the default.
        let o = parse("seed[]=h:1&prefix=&timeout=0&persistent=0").unwrap();
        assert_eq!(o.nodes[0].prefix, DEFAULT_CLUSTER_PREFIX);
        assert_eq!(o.nodes[0].connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert!(!o.persistent);
        // auth as an array (user, password), percent- and form-encoded keys and values.
        let o = parse("seed%5B%5D=h:1&auth[]=alice&auth[]=p%40ss+word").unwrap();
        assert_eq!((o.nodes[0].username.as_deref(), o.nodes[0].password.as_deref()), (Some("alice"), Some("p@ss word")));
        let o = parse("seed[]=h:1&auth[user]=bob&auth[pass]=pw").unwrap();
        assert_eq!((o.nodes[0].username.as_deref(), o.nodes[0].password.as_deref()), (Some("bob"), Some("pw")));
        // TLS as phpredis takes it: tls:// seeds and stream context options.
        let o = parse("seed[]=tls://h:1&seed[]=tls://h:2&stream[cafile]=/ca.pem&stream[verify_peer_name]=0").unwrap();
        for n in &o.nodes {
            assert_eq!(n.tls, Some(Tls { ca: Some("/ca.pem".into()), cert: None, key: None, verify: Verify::Ca }));
        }
        assert_eq!(o.describe(), "rediss-cluster://h:1,h:2");
        let o = parse("seed[]=tls://h:1&stream[verify_peer]=0").unwrap();
        assert_eq!(o.nodes[0].tls.as_ref().unwrap().verify, Verify::None);
        assert!(is_phpredis_cluster_form("seed[]=tls://h:1"));
        assert!(is_phpredis_cluster_form("timeout=2&seed[]=h:1"));
        assert!(!is_phpredis_cluster_form("redis://h?seed[]=x"));
        assert!(!is_phpredis_cluster_form("/var/lib/php/sessions"));
    }

    #[test]
    fn invalid_forms_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("redis://", "no host"),
            ("redis://h:0", "port \"0\""),
            ("redis://h:99999", "port \"99999\""),
            ("redis://h:abc", "port \"abc\""),
            ("redis://h/abc", "database number"),
            ("redis://h/99999999", "database number"),
            ("redis://h?foo=1", "unknown option \"foo\""),
            ("redis://h?auth=x", "unknown option \"auth\""),
            ("redis://h?timeout=abc", "timeout=\"abc\" must be seconds"),
            ("redis://h?timeout=0", "must be seconds"),
            ("redis://h?read_timeout=-1", "read_timeout=\"-1\""),
            ("redis://h?persistent=yes", "persistent=\"yes\" must be 0 or 1"),
            ("redis://h?prefix=", "empty value"),
            ("redis://h?timeout=1&timeout=2", "given twice"),
            ("redis://h?timeout", "has no value"),
            ("redis://h%zz", "not a host name"),
            ("redis://ho st", "not a host name"),
            ("redis://[::1", "unclosed"),
            ("rediss://h?verify=maybe", "verify=\"maybe\" must be full, ca or none"),
            ("rediss://h?ca=rel/ca.pem", "absolute file path"),
            ("rediss://h?cert=/c.pem", "cert and key go together"),
            ("rediss://h?bogus=1", "unknown option \"bogus\" for rediss://"),
            ("redis://h?ca=/ca.pem", "unknown option \"ca\" for redis://"),
            ("redis-cluster://h:1/2", "takes no database"),
            ("redis-cluster://h:1,", "no host"),
            ("redis-cluster://h:1?bogus=1", "unknown option \"bogus\" for redis-cluster://"),
            ("redis-cluster://:pw@h:x", "port \"x\""),
            ("redis-sentinel://h:1", "needs the master name"),
            ("redis-sentinel://h:1/", "must be one non-empty word"),
            ("redis-sentinel://h:1/m?db=x", "option db=\"x\""),
            ("redis-sentinel://h:1/m?db=1&db=2", "given twice"),
            ("redis-sentinel://h:1/m?bogus=1", "unknown option \"bogus\" for redis-sentinel:// (known: db, sentinel_user, sentinel_password, prefix"),
            ("redis-sentinel://h:1/m?sentinel_user=u", "sentinel_user needs sentinel_password"),
            ("redis-sentinel://h:1/m?sentinel_password=", "option \"sentinel_password\" has an empty value"),
            ("redis-sentinel://h:1/m?sentinel_password=pw&sentinel_password=pw", "\"sentinel_password\" is given twice"),
            ("redis-sentinel://h:1/m?ca=/ca.pem", "unknown option \"ca\" for redis-sentinel://"),
            ("rediss-sentinel://h:1", "rediss-sentinel:// needs the master name"),
            ("rediss-sentinel://h:1/m?verify=maybe", "verify=\"maybe\" must be full, ca or none"),
            ("rediss-sentinel://h:1/m?bogus=1", "unknown option \"bogus\" for rediss-sentinel:// (known: db, sentinel_user, sentinel_password, prefix"),
            ("rediss-cluster://h:1/2", "rediss-cluster:// takes no database"),
            ("rediss-cluster://h:1?cert=/c.pem", "cert and key go together"),
            ("rediss-cluster://h:1?bogus=1", "unknown option \"bogus\" for rediss-cluster:// (known: prefix, timeout, read_timeout, persistent, busy_poll, ca"),
            ("redis-cluster://h:1?ca=/ca.pem", "unknown option \"ca\" for redis-cluster://"),
            ("redis-cluster://h:1?sentinel_password=pw", "unknown option \"sentinel_password\""),
            ("seed[]=h:1&colour=blue", "unknown option \"colour\" in phpredis' cluster save_path"),
            ("seed=h:1", "must be a list"),
            ("timeout=2&seed[]=", "option \"seed[]\" has an empty value"),
            ("seed[]=h:x", "port \"x\""),
            ("seed[]=h:1&timeout=-1", "timeout=\"-1\" must be seconds"),
            ("seed[]=h:1&read_timeout=soon", "read_timeout=\"soon\""),
            ("seed[]=h:1&persistent=maybe", "persistent=\"maybe\" must be 0 or 1"),
            ("seed[]=h:1&failover=sometimes", "failover=\"sometimes\" must be none, error"),
            ("seed[]=h:1&prefix=a&prefix=b", "\"prefix\" is given twice"),
            ("seed[]=h:1&auth[]=a&auth[]=pw&auth[]=c", "auth is given more than once"),
            ("seed[]=h:1&stream[cafile]=/ca.pem", "stream[cafile] is for TLS"),
            ("seed[]=tls://h:1&stream[cafile]=ca.pem", "absolute file path"),
            ("seed[]=tls://h:1&stream[local_cert]=/c.pem", "go together"),
            ("seed[]=tls://h:1&seed[]=h:2", "mix tls://"),
            ("seed[]=redis://h:1", "must be tcp or tls"),
            ("seed[]=u:pw@h:1", "must be host:port"),
            ("seed[]=h:1&timeout", "has no value"),
            ("unix://relative.sock", "not absolute"),
            ("unix:///a/../b.sock", "contains \"..\""),
            ("unix:///s.sock?database=x", "option database=\"x\" must be an integer"),
            ("tcp://u:pw@h:1", "must be host:port"),
            ("tcp://h:1?weight=0", "weight=\"0\" must be an integer from 1"),
            ("tcp://h:1?bogus=1", "unknown option \"bogus\""),
            ("tcp://h:1,redis://h:2", "cannot be mixed"),
            ("tcp://h:1,h2:2", "not a URL"),
            // Each form is parsed in its own words: a value that holds another form's scheme or
            // words of a message is quoted as given (main rewrote a fake URL's messages, changing them).
            ("redis-cluster://h:1?timeout=redis://x", "option timeout=\"redis://x\" must be seconds"),
            ("rediss-sentinel://h:1/m?ca=rediss://x", "option ca=\"rediss://x\" must be an absolute file path"),
            ("redis-sentinel://h:1/m?read_timeout=(known: 1)", "option read_timeout=\"(known: 1)\" must be seconds"),
        ];
        for (input, want) in cases {
            let e = parse(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
            assert!(!e.contains("pw"), "{input:?} leaks a password: {e}");
        }
    }

    #[test]
    fn node_choice_follows_phpredis() {
        let nodes = vec![tcp("a", 1), tcp("b", 2)];
        // phpredis keeps the last URL at the head of its list: pos 0 → b, pos 1 → a.
        let id_for = |pos: u32| {
            let mut id = pos.to_ne_bytes().to_vec();
            id.extend_from_slice(b"rest");
            id
        };
        assert_eq!(pick_node(&nodes, &id_for(0)), 1);
        assert_eq!(pick_node(&nodes, &id_for(1)), 0);
        assert_eq!(pick_node(&nodes, &id_for(2)), 1);
        let weighted = vec![Node { weight: 3, ..tcp("a", 1) }, tcp("b", 2)];
        assert_eq!(pick_node(&weighted, &id_for(0)), 1);
        assert_eq!(pick_node(&weighted, &id_for(1)), 0);
        assert_eq!(pick_node(&weighted, &id_for(3)), 0);
        assert_eq!(pick_node(&[tcp("a", 1)], b"x"), 0);
    }

    #[test]
    fn reasons_are_typed() {
        // The options of every URL form are typed reasons, not strings.
        assert!(matches!(parse("redis-sentinel://h:1/m?db=x"), Err(Reason::NotInRange { min: 0, max: 65535, .. })));
        assert!(matches!(parse("rediss-cluster://h:1?bogus=1"), Err(Reason::UnknownOption { .. })));
        assert!(matches!(parse("seed[]=h:1&prefix=a&prefix=b"), Err(Reason::GivenTwice(k)) if k == "prefix"));
    }

    #[test]
    fn passwords_stay_out_of_debug_and_describe() {
        let o = parse("redis://alice:hunter2@h:1/2").unwrap();
        assert!(!format!("{o:?}").contains("hunter2"));
        assert_eq!(o.describe(), "redis://h:1/2");
        let o = parse("tcp://h:1?auth=hunter2").unwrap();
        assert!(!format!("{o:?}").contains("hunter2") && !o.describe().contains("hunter2"));
    }
}
