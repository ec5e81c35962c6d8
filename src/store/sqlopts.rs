//! The DSN options the SQL server engines share (`pgsql://`, `mysql://`):
//! `scheme://[user[:password]@]host[:port][,host2[:port]…]/dbname[?table=…&sslmode=…&sslrootcert=…&connect_timeout=S&lock=advisory|row&schema=native|symfony&create=auto|never]`.
//! Pure parsing with the shared grammar (`crate::grammar`); each engine adds its own keys (`socket`
//! for MySQL) through `extra`.

use std::path::PathBuf;
use std::time::Duration;

use crate::grammar::{self, Reason};

/// How a session's lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// The server's advisory lock (pg_advisory_lock, GET_LOCK), held on the worker's connection.
    Advisory,
    /// A lock row with owner token and expiry (for connection poolers in transaction mode).
    Row,
}

/// Which table layout is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Schema {
    /// Ours: id, data, created, updated, expiry, user_id, version.
    Native,
    /// Symfony's PdoSessionHandler (5.4): sess_id, sess_data, sess_lifetime, sess_time.
    Symfony,
}

/// TLS to the server, libpq's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS, without checking the certificate.
    Require,
    /// TLS, the certificate checked against the CA (`sslrootcert` or the system's) and the host name.
    VerifyFull,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SqlOptions {
    /// (host, port) in the order given; connected to in turn.
    pub hosts: Vec<(String, u16)>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: String,
    pub table: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub lock: LockMode,
    pub schema: Schema,
    /// Create the table (and functions) on first use; false: only check, naming what is missing.
    pub create: bool,
    /// A unix socket instead of TCP (MySQL's `socket=`).
    pub socket: Option<PathBuf>,
}

/// Never prints the password.
impl std::fmt::Debug for SqlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlOptions")
            .field("hosts", &self.hosts)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("table", &self.table)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("connect_timeout", &self.connect_timeout)
            .field("lock", &self.lock)
            .field("schema", &self.schema)
            .field("create", &self.create)
            .field("socket", &self.socket)
            .finish()
    }
}

impl SqlOptions {
    /// Where the store lives, for messages: `host:port[,host:port]` or the socket path; no credentials.
    pub fn at(&self) -> String {
        if let Some(s) = &self.socket {
            return s.display().to_string();
        }
        self.hosts.iter().map(|(h, p)| if h.contains(':') { format!("[{h}]:{p}") } else { format!("{h}:{p}") }).collect::<Vec<_>>().join(",")
    }

    /// The table Symfony's handler uses by default, or ours.
    pub fn default_table(schema: Schema) -> &'static str {
        match schema {
            Schema::Native => "sessions",
            Schema::Symfony => "sessions",
        }
    }
}

/// The keys every SQL engine takes.
const COMMON_KEYS: &str = "table, sslmode, sslrootcert, connect_timeout, lock, schema, create";

/// Parses what follows `scheme://` (`rest`, query included). `default_port` for hosts without one;
/// `extra` takes an engine's own keys (true: taken), `extra_keys` names them for the message.
pub fn parse(
    scheme: &str,
    rest: &str,
    default_port: u16,
    extra_keys: &str,
    mut extra: impl FnMut(&str, &str, &mut SqlOptions) -> Result<bool, Reason>,
) -> Result<SqlOptions, Reason> {
    let (main, query) = grammar::split_query(rest);
    let params = grammar::parse_query(query)?;
    // userinfo: up to the last '@' (a password may hold '/').
    let (userinfo, hostpath) = match main.rfind('@') {
        Some(i) => (Some(&main[..i]), &main[i + 1..]),
        None => (None, main),
    };
    let (hostlist, db) = match hostpath.find('/') {
        Some(i) => (&hostpath[..i], &hostpath[i + 1..]),
        None => (hostpath, ""),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pw) = match u.split_once(':') {
                Some((user, pw)) => (user, Some(grammar::percent_decode(pw)?)),
                None => (u, None),
            };
            let user = grammar::percent_decode(user)?;
            (Some(user).filter(|u| !u.is_empty()), pw)
        }
    };
    let dbname = grammar::percent_decode(db)?;
    if dbname.is_empty() {
        return Err(Reason::SqlNoDatabase(scheme.to_string()));
    }
    if dbname.contains('/') {
        return Err(Reason::DatabaseSlash(dbname));
    }
    let mut hosts = Vec::new();
    if !hostlist.is_empty() {
        for h in hostlist.split(',') {
            hosts.push(host_port(scheme, h, default_port)?);
        }
    }
    let mut o = SqlOptions {
        hosts,
        user,
        password,
        dbname,
        table: String::new(),
        sslmode: SslMode::Prefer,
        sslrootcert: None,
        connect_timeout: Duration::from_secs(5),
        lock: LockMode::Advisory,
        schema: Schema::Native,
        create: true,
        socket: None,
    };
    for (k, v) in params {
        match k.as_str() {
            "table" => {
                if v.len() > 63 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || v.as_bytes()[0].is_ascii_digit() {
                    return Err(grammar::invalid(&k, &v, "a table name of letters, digits and _ (at most 63, not starting with a digit)"));
                }
                o.table = v;
            }
            "sslmode" => {
                o.sslmode = match v.to_ascii_lowercase().as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-full" => SslMode::VerifyFull,
                    _ => return Err(grammar::invalid(&k, &v, "disable, prefer, require or verify-full")),
                }
            }
            "sslrootcert" => o.sslrootcert = Some(grammar::abs_path("sslrootcert", &v)?),
            "connect_timeout" => o.connect_timeout = grammar::option_secs(&k, &v)?,
            "lock" => {
                o.lock = match v.to_ascii_lowercase().as_str() {
                    "advisory" => LockMode::Advisory,
                    "row" => LockMode::Row,
                    _ => return Err(grammar::invalid(&k, &v, "advisory or row")),
                }
            }
            "schema" => {
                o.schema = match v.to_ascii_lowercase().as_str() {
                    "native" => Schema::Native,
                    "symfony" => Schema::Symfony,
                    _ => return Err(grammar::invalid(&k, &v, "native or symfony")),
                }
            }
            "create" => {
                o.create = match v.to_ascii_lowercase().as_str() {
                    "auto" => true,
                    "never" => false,
                    _ => return Err(grammar::invalid(&k, &v, "auto or never")),
                }
            }
            _ => {
                if !extra(&k, &v, &mut o)? {
                    let known = if extra_keys.is_empty() { COMMON_KEYS.to_string() } else { format!("{COMMON_KEYS}, {extra_keys}") };
                    return Err(Reason::UnknownOption { key: k, place: format!("for {scheme}://"), known });
                }
            }
        }
    }
    if o.hosts.is_empty() && o.socket.is_none() {
        return Err(Reason::SqlNoServer(scheme.to_string()));
    }
    if o.sslrootcert.is_some() && o.sslmode == SslMode::Disable {
        return Err(Reason::Rule("sslrootcert is given but sslmode=disable"));
    }
    if o.table.is_empty() {
        o.table = SqlOptions::default_table(o.schema).to_string();
    }
    Ok(o)
}

/// Lock rows live in a table of ours beside the native one: Symfony's table has none (its requests
/// lock with advisory locks), so `lock=row` needs `schema=native`.
pub fn row_needs_native(o: &SqlOptions) -> Result<(), Reason> {
    if o.lock == LockMode::Row && o.schema == Schema::Symfony {
        return Err(Reason::Rule("lock=row works with schema=native only (Symfony's table has no lock table; its requests lock with advisory locks)"));
    }
    Ok(())
}

/// `host[:port]` or `[v6]:port`.
fn host_port(scheme: &str, h: &str, default_port: u16) -> Result<(String, u16), Reason> {
    let bad = || Reason::SqlServer { server: h.to_string(), scheme: scheme.to_string() };
    let (host, port) = if let Some(r) = h.strip_prefix('[') {
        let (host, after) = r.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match h.split_once(':') {
            Some((host, p)) => (host, Some(p)),
            None => (h, None),
        }
    };
    let host = grammar::percent_decode(host)?;
    if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
        return Err(bad());
    }
    let port = match port {
        None => default_port,
        Some(p) => grammar::int(p, 1, 65535).ok_or_else(|| Reason::ServerPort { port: p.to_string(), server: h.to_string() })? as u16,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(rest: &str) -> Result<SqlOptions, Reason> {
        parse("pgsql", rest, 5432, "", |_, _, _| Ok(false))
    }

    #[test]
    fn valid_forms() {
        let o = p("u:p%40ss@h1,h2:6000,[::1]:7/db?table=t_1&sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=1.5&lock=row&schema=symfony&create=never").unwrap();
        assert_eq!(o.hosts, vec![("h1".into(), 5432), ("h2".into(), 6000), ("::1".into(), 7)]);
        assert_eq!((o.user.as_deref(), o.password.as_deref(), o.dbname.as_str()), (Some("u"), Some("p@ss"), "db"));
        assert_eq!((o.table.as_str(), o.sslmode, o.lock, o.schema, o.create), ("t_1", SslMode::VerifyFull, LockMode::Row, Schema::Symfony, false));
        assert_eq!(o.connect_timeout, Duration::from_millis(1500));
        assert_eq!(o.at(), "h1:5432,h2:6000,[::1]:7");
        let o = p("h/db").unwrap();
        assert_eq!((o.user, o.password, o.table.as_str(), o.lock, o.schema, o.create), (None, None, "sessions", LockMode::Advisory, Schema::Native, true));
        // A password with '/' (base64) and no user.
        let o = p(":ab/cd==@h/db").unwrap();
        assert_eq!((o.user, o.password.as_deref()), (None, Some("ab/cd==")));
        assert!(!format!("{:?}", p("u:hunter2@h/db").unwrap()).contains("hunter2"));
    }

    #[test]
    fn invalid_forms_name_the_problem() {
        let cases = [
            ("h", "", "no database name given"),
            ("h/", "", "no database name given"),
            ("/db", "", "no server given"),
            ("h:0/db", "", "port \"0\" of server \"h:0\" must be an integer from 1 to 65535"),
            ("h:x/db", "", "must be an integer from 1 to 65535"),
            ("h,/db", "", "is not host[:port]"),
            ("[::1/db", "", "is not host[:port]"),
            ("h/db", "table=a-b", "option table=\"a-b\" must be a table name"),
            ("h/db", "table=1a", "must be a table name"),
            ("h/db", "sslmode=maybe", "option sslmode=\"maybe\" must be disable, prefer, require or verify-full"),
            ("h/db", "sslrootcert=ca.pem", "sslrootcert \"ca.pem\" is not absolute"),
            ("h/db", "sslmode=disable&sslrootcert=/ca.pem", "sslmode=disable"),
            ("h/db", "connect_timeout=0", "option connect_timeout=\"0\" must be seconds"),
            ("h/db", "lock=file", "option lock=\"file\" must be advisory or row"),
            ("h/db", "schema=drupal", "must be native or symfony"),
            ("h/db", "create=yes", "must be auto or never"),
            ("h/db", "bogus=1", "unknown option \"bogus\" for pgsql:// (known: table, sslmode"),
            ("h/db", "lock=row&lock=row", "given twice"),
        ];
        for (rest, query, want) in cases {
            let full = if query.is_empty() { rest.to_string() } else { format!("{rest}?{query}") };
            let e = p(&full).unwrap_err().to_string();
            assert!(e.contains(want), "{full:?}: {e}");
        }
    }
}
