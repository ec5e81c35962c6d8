//! `session.save_path` → engine configuration. Pure parsing: no file system or network access here
//! (engines check reachability when they connect), so every rule is covered by the table below.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// What an operator may write in `session.save_path`; shown in every DSN error.
pub const ACCEPTED_FORMS: &str = "accepted forms: \"sqlite:///abs/path/file.sqlite[?busy_timeout=MS&synchronous=normal|full]\", \
\"files:///abs/dir[?depth=N&mode=0600]\", \
\"redis://[[user]:password@]host[:port][/db][?prefix=…&timeout=S&read_timeout=S&persistent=0|1&busy_poll=µS]\", \
\"rediss://…[?ca=/ca.pem&cert=/c.pem&key=/k.pem&verify=full|ca|none]\" (TLS), \
\"unix:///path/redis.sock[?db=N&prefix=…]\", phpredis' \"tcp://host:port[?auth=…&database=N&prefix=…&timeout=S&weight=N]\" \
(or a comma list of them), \"redis-cluster://host:port[,host:port…][?prefix=…]\", \
\"rediss-cluster://…[?ca=…&cert=…&key=…&verify=…]\" (TLS), \
\"redis-sentinel://host:port[,host:port…]/<master-name>[?db=N&prefix=…&sentinel_user=…&sentinel_password=…]\", \
\"rediss-sentinel://…/<master-name>[?ca=…&cert=…&key=…&verify=…]\" (TLS), \
phpredis' cluster \"seed[]=host:port&seed[]=host:port[&auth=…&prefix=…&timeout=S&read_timeout=S&persistent=0|1&failover=…]\", \
\"memcached://host[:port][,host[:port]|,/unix.sock...][?prefix=P&replicas=N&timeout=MS&retry=MS&weights=W,...&lock_placement=compat|session&busy_poll=µS]\", an absolute directory (SQLite file session_proxy.sqlite inside it), \
or empty (SQLite file session_proxy.sqlite in session_proxy-<uid>, a private directory of the system temp dir)";

/// File name used when save_path names only a directory (or nothing).
pub const DEFAULT_SQLITE_FILE: &str = "session_proxy.sqlite";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Engine {
    Sqlite(SqliteOptions),
    Files(FilesOptions),
    Memcached(crate::store::memcached::MemcachedOptions),
    Redis(crate::store::redis::RedisOptions),
}

impl Engine {
    pub fn scheme(&self) -> &'static str {
        match self {
            Engine::Sqlite(_) => "sqlite",
            Engine::Files(_) => "files",
            Engine::Memcached(_) => "memcached",
            Engine::Redis(_) => "redis",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// How long one SQLite statement waits for the database write lock (not the session lock).
    pub busy_timeout: Duration,
    /// `PRAGMA synchronous`: NORMAL (default, safe in WAL mode) or FULL (fsync every commit).
    pub synchronous_full: bool,
    /// The file's directory is the zero-config private one: created 0700 and checked (`private::ensure_private_dir`).
    pub private_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilesOptions {
    pub dir: PathBuf,
    /// Sub-directory levels, as the `N;` prefix of PHP's files handler: `sess_abc` lives in `dir/a/b/`.
    pub depth: u8,
    /// Permission bits of new session files (PHP's default is 0600).
    pub mode: u32,
}

/// A parse error; `Display` gives the whole operator-facing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnError {
    pub save_path: String,
    pub reason: String,
}

impl std::fmt::Display for DsnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid session.save_path \"{}\": {}; {}",
            mask_secrets(&self.save_path).escape_debug(),
            // An engine's reason may quote the input: no control character reaches a log line.
            hide_secrets(&self.save_path, &self.reason)
                .chars()
                .map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() })
                .collect::<String>(),
            ACCEPTED_FORMS
        )
    }
}

impl std::error::Error for DsnError {}

/// Hides credentials in a DSN before it reaches a warning or phpinfo: `user:secret@` and the values of
/// `auth=`, `password=`, `pass=`, `secret=`, `sentinel_password=`, `passphrase=` query parameters and
/// their array forms (`auth[]=`, `auth[pass]=`, `stream[passphrase]=`; key matched case-insensitively,
/// after percent-decoding) become `***`. phpredis' cluster form (`seed[]=…&auth=…`) is all query.
pub fn mask_secrets(dsn: &str) -> String {
    split_secrets(dsn).0
}

/// Replaces every secret of `dsn` (as written and percent-decoded) in `text` by `***`: a refusal's
/// reason may quote the part of the DSN it could not parse. Occurrences are found in `text` as given
/// and replaced in one pass, so a piece of a secret that looks like the mask (`*`) cannot multiply it
/// (found by fuzz/mask_secrets: an exponential blow-up).
fn hide_secrets(dsn: &str, text: &str) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in split_secrets(dsn).1 {
        // A server list (phpredis' tcp://a,tcp://b) is cut at ',' and blanks, a URL at '@' and '/',
        // wherever they stand: a reason may quote a piece of a secret that held one (found by
        // fuzz/mask_secrets).
        let pieces: Vec<String> = secret
            .split(|c: char| matches!(c, ',' | '@' | '/') || c.is_ascii_whitespace())
            .filter(|p| !p.is_empty() && p.len() < secret.len())
            .map(str::to_string)
            .collect();
        forms.extend([percent_decode(&secret).unwrap_or_default(), secret]);
        forms.extend(pieces);
    }
    // Every occurrence of every form is marked in `text` before anything is replaced, so the order
    // does not matter; overlapping forms hide their union.
    forms.retain(|f| !f.is_empty());
    forms.sort();
    forms.dedup();
    let mut hidden = vec![false; text.len()];
    for form in &forms {
        for (i, _) in text.match_indices(form.as_str()) {
            if !inside_word(text, i, form) {
                hidden[i..i + form.len()].iter_mut().for_each(|h| *h = true);
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut masking = false;
    for (i, c) in text.char_indices() {
        if hidden[i] {
            if !masking {
                out.push_str("***");
            }
        } else {
            out.push(c);
        }
        masking = hidden[i];
    }
    out
}

/// Whether `needle`, found at byte `i` of `hay`, is part of a longer alphanumeric word.
fn inside_word(hay: &str, i: usize, needle: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    let (before, after) = (hay[..i].chars().next_back(), hay[i + needle.len()..].chars().next());
    (word(before) && word(needle.chars().next())) || (word(after) && word(needle.chars().next_back()))
}

/// The masked DSN and the secrets it hid.
fn split_secrets(dsn: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(dsn.len());
    let mut secrets = Vec::new();
    // userinfo: between "://" and the last '@' before the query. A password may hold '/' unencoded
    // (base64), so the path does not end it; a DSN whose part after "://" starts with '/' has no
    // host, hence no userinfo (sqlite:///dir@x/file).
    let mut rest = dsn;
    let query_only = crate::store::redis::dsn::is_phpredis_cluster_form(dsn);
    if query_only {
        rest = "";
    } else if let Some(p) = dsn.find("://") {
        let (head, tail) = dsn.split_at(p + 3);
        out.push_str(head);
        let end = tail.find('?').unwrap_or(tail.len());
        match tail[..end].rfind('@').filter(|_| !tail.starts_with('/')) {
            Some(at) => {
                let userinfo = &tail[..at];
                // Two '@' (one is in the path, or in an unencoded password): which part is the user
                // name is a guess, so hide all of it.
                match userinfo.find(':').filter(|&c| !userinfo[..c].contains('@')) {
                    Some(c) => {
                        out.push_str(&userinfo[..c]);
                        out.push_str(":***");
                        secrets.push(userinfo[c + 1..].to_string());
                    }
                    None => {
                        out.push_str("***");
                        secrets.push(userinfo.to_string());
                    }
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    let (before, query) = match rest.split_once('?') {
        _ if query_only => ("", Some(dsn)),
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    out.push_str(before);
    if let Some(q) = query {
        if !query_only {
            out.push('?');
        }
        let masked: Vec<String> = q
            .split('&')
            .map(|part| match part.split_once('=') {
                Some((k, v)) if is_secret_key(k) => {
                    secrets.push(v.to_string());
                    format!("{k}=***")
                }
                // A seed written with credentials (seed[]=user:pw@host:port) is refused, but its
                // echo must not show them.
                Some((k, v)) if query_only && v.contains('@') => {
                    let at = v.rfind('@').unwrap_or(0);
                    secrets.push(v[..at].to_string());
                    if let Some((_, pw)) = v[..at].split_once(':') {
                        secrets.push(pw.to_string());
                    }
                    format!("{k}=***{}", &v[at..])
                }
                _ => part.to_string(),
            })
            .collect();
        out.push_str(&masked.join("&"));
    }
    (out, secrets)
}

/// Whether a query key names a secret: `auth`, `password`, `pass`, `secret`, `sentinel_password`,
/// `passphrase`, also as arrays (`auth[]`, `auth[pass]`) or inside one (`stream[passphrase]`).
fn is_secret_key(k: &str) -> bool {
    const SECRET: [&str; 6] = ["auth", "password", "pass", "secret", "sentinel_password", "passphrase"];
    let k = form_decode(k).unwrap_or_else(|_| k.to_string()).to_ascii_lowercase();
    let (base, inner) = match k.split_once('[') {
        Some((b, i)) => (b, i.trim_end_matches(']')),
        None => (k.as_str(), ""),
    };
    SECRET.contains(&base) || SECRET.contains(&inner)
}

/// Parses `session.save_path`. `temp_dir` is PHP's `sys_get_temp_dir()`, used for an empty save_path.
pub fn parse(save_path: &str, temp_dir: &Path) -> Result<Engine, DsnError> {
    let err = |reason: String| DsnError { save_path: save_path.to_string(), reason };
    let trimmed = save_path.trim();
    if trimmed.is_empty() {
        // Not the shared temp dir itself, where another user could plant the file: a directory of this
        // user's own inside it.
        let dir = temp_dir.join(format!("session_proxy-{}", crate::private::euid()));
        return Ok(Engine::Sqlite(SqliteOptions { private_dir: true, ..SqliteOptions::at(dir.join(DEFAULT_SQLITE_FILE)) }));
    }
    if trimmed.len() > 4096 {
        return Err(err(format!("it is {} bytes long (at most 4096)", trimmed.len())));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(err("it contains a control character".into()));
    }
    if crate::store::redis::dsn::is_phpredis_cluster_form(trimmed) {
        // phpredis' `rediscluster` save_path: a query string of seeds and options.
        return crate::store::redis::dsn::parse(trimmed).map(Engine::Redis).map_err(err);
    }
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        if trimmed.contains(';') {
            return Err(err(
                "the \"N;[MODE;]/dir\" form of PHP's files handler is not accepted; write files:///dir?depth=N&mode=MODE"
                    .into(),
            ));
        }
        if trimmed.starts_with('/') {
            // A plain directory is taken literally, as PHP's files handler takes it (no %-decoding).
            let dir = check_abs_path(trimmed, false).map_err(err)?;
            return Ok(Engine::Sqlite(SqliteOptions::at(dir.join(DEFAULT_SQLITE_FILE))));
        }
        return Err(err("it is neither a DSN (scheme://...) nor an absolute directory".into()));
    };
    if matches!(scheme.to_ascii_lowercase().as_str(), "redis" | "rediss" | "unix" | "tcp" | "redis-cluster" | "rediss-cluster" | "redis-sentinel" | "rediss-sentinel") {
        // The Redis engine parses its own forms (phpredis' comma lists, per-server options).
        return crate::store::redis::dsn::parse(trimmed).map(Engine::Redis).map_err(err);
    }
    let (path_part, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let params = parse_query(query).map_err(err)?;
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            let path = check_abs_path(path_part, true).map_err(err)?;
            // "/dir/" and "/dir/." (also %2E-escaped) name a directory, whatever the file system says.
            if path_part.ends_with('/') || path.file_name().is_none() || path.as_os_str().as_encoded_bytes().ends_with(b"/.") {
                return Err(err(format!("{} names a directory; sqlite:// takes a file path", path.display())));
            }
            let mut o = SqliteOptions::at(path);
            for (k, v) in params {
                match k.as_str() {
                    "busy_timeout" => {
                        o.busy_timeout = Duration::from_millis(parse_int(&k, &v, 0, 600_000).map_err(err)?)
                    }
                    "synchronous" => {
                        o.synchronous_full = match v.to_ascii_lowercase().as_str() {
                            "normal" => false,
                            "full" => true,
                            _ => return Err(err(format!("option synchronous={v:?} must be normal or full"))),
                        }
                    }
                    _ => return Err(err(format!("unknown option {k:?} for sqlite:// (known: busy_timeout, synchronous)"))),
                }
            }
            Ok(Engine::Sqlite(o))
        }
        "files" => {
            let dir = check_abs_path(path_part, true).map_err(err)?;
            let mut o = FilesOptions { dir, depth: 0, mode: 0o600 };
            for (k, v) in params {
                match k.as_str() {
                    "depth" => o.depth = parse_int(&k, &v, 0, 8).map_err(err)? as u8,
                    "mode" => {
                        o.mode = u32::from_str_radix(&v, 8)
                            .ok()
                            .filter(|m| *m <= 0o777 && m & 0o600 == 0o600)
                            .ok_or_else(|| err(format!("option mode={v:?} must be octal permission bits including 0600")))?
                    }
                    _ => return Err(err(format!("unknown option {k:?} for files:// (known: depth, mode)"))),
                }
            }
            Ok(Engine::Files(o))
        }
        "memcached" => crate::store::memcached::options::parse(path_part, params).map(Engine::Memcached).map_err(err),
        other => Err(err(format!("unknown scheme {other:?}"))),
    }
}

impl SqliteOptions {
    fn at(path: PathBuf) -> Self {
        SqliteOptions { path, busy_timeout: Duration::from_millis(5000), synchronous_full: false, private_dir: false }
    }
}

pub(crate) fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let Some(q) = query else { return Ok(out) };
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("option {pair:?} has no value (write key=value)"))?;
        let k = percent_decode(k)?.to_ascii_lowercase();
        let v = percent_decode(v)?;
        if v.is_empty() {
            return Err(format!("option {k:?} has an empty value"));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("option {k:?} is given twice"));
        }
        out.push((k, v));
    }
    Ok(out)
}

pub(crate) fn parse_int(key: &str, v: &str, min: u64, max: u64) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("option {key}={v:?} must be an integer from {min} to {max}"))
}

/// `application/x-www-form-urlencoded` decoding, as PHP's `parse_str` does it (phpredis reads its
/// cluster save_path so): `+` is a space.
pub(crate) fn form_decode(s: &str) -> Result<String, String> {
    percent_decode(&s.replace('+', " "))
}

pub(crate) fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in {s:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let out = String::from_utf8(out).map_err(|_| format!("{s:?} decodes to invalid UTF-8"))?;
    if out.contains('\0') {
        return Err(format!("{s:?} decodes to a NUL byte"));
    }
    // The raw DSN is checked for control characters; an escaped one (%0A) must not slip through
    // into a file name or a message.
    if out.chars().any(char::is_control) {
        return Err(format!("{s:?} decodes to a control character"));
    }
    Ok(out)
}

fn check_abs_path(raw: &str, decode: bool) -> Result<PathBuf, String> {
    let decoded = if decode { percent_decode(raw)? } else { raw.to_string() };
    let p = PathBuf::from(&decoded);
    if decoded.is_empty() || !p.is_absolute() {
        return Err(format!("path {decoded:?} is not absolute"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("path {decoded:?} contains \"..\""));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> &'static Path {
        Path::new("/tmp")
    }

    #[test]
    fn valid_forms() {
        let sq = |p: &str| Engine::Sqlite(SqliteOptions::at(PathBuf::from(p)));
        let zero = format!("/tmp/session_proxy-{}/session_proxy.sqlite", crate::private::euid());
        let zero = Engine::Sqlite(SqliteOptions { private_dir: true, ..SqliteOptions::at(zero.into()) });
        let cases: Vec<(&str, Engine)> = vec![
            ("", zero.clone()),
            ("   ", zero),
            ("/var/lib/php/sessions", sq("/var/lib/php/sessions/session_proxy.sqlite")),
            ("/var/lib/php/sessions/", sq("/var/lib/php/sessions/session_proxy.sqlite")),
            ("/srv/100%x", sq("/srv/100%x/session_proxy.sqlite")),
            ("sqlite:///data/s.sqlite", sq("/data/s.sqlite")),
            ("SQLITE:///data/s.sqlite", sq("/data/s.sqlite")),
            ("sqlite:///my%20dir/s.sqlite", sq("/my dir/s.sqlite")),
            (
                "sqlite:///d/s.db?busy_timeout=250&synchronous=FULL",
                Engine::Sqlite(SqliteOptions {
                    path: "/d/s.db".into(),
                    busy_timeout: Duration::from_millis(250),
                    synchronous_full: true,
                    private_dir: false,
                }),
            ),
            ("files:///var/sess", Engine::Files(FilesOptions { dir: "/var/sess".into(), depth: 0, mode: 0o600 })),
            (
                "files:///var/sess?depth=2&mode=0660",
                Engine::Files(FilesOptions { dir: "/var/sess".into(), depth: 2, mode: 0o660 }),
            ),
        ];
        let mc = |servers: Vec<(&str, u16)>| {
            crate::store::memcached::MemcachedOptions::new(
                servers
                    .into_iter()
                    .map(|(h, p)| crate::store::memcached::ServerAddr::Tcp { host: h.into(), port: p })
                    .collect(),
            )
        };
        let cases: Vec<(&str, Engine)> = cases
            .into_iter()
            .chain([
                ("memcached://127.0.0.1:11211", Engine::Memcached(mc(vec![("127.0.0.1", 11211)]))),
                ("MEMCACHED://a:1,b", Engine::Memcached(mc(vec![("a", 1), ("b", 11211)]))),
                (
                    "memcached://a:1,b:2?replicas=1&prefix=x%2E",
                    Engine::Memcached(crate::store::memcached::MemcachedOptions {
                        replicas: 1,
                        prefix: "x.".into(),
                        ..mc(vec![("a", 1), ("b", 2)])
                    }),
                ),
            ])
            .collect();
        for (input, want) in cases {
            assert_eq!(parse(input, tmp()).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn invalid_forms_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("relative/dir", "neither a DSN"),
            ("sessions", "neither a DSN"),
            ("2;/var/lib/php/sessions", "files:///dir?depth=N"),
            ("2;0600;/var/lib/php/sessions", "files:///dir?depth=N&mode=MODE"),
            ("/var/lib/php;x", "files:///dir?depth=N"),
            ("ftp://host/x", "unknown scheme \"ftp\""),
            ("memcached://", "no server given"),
            ("memcached://h:1?replicas=abc", "replicas=\"abc\""),
            ("memcached://h:1?prefix=", "empty value"),
            ("redis://127.0.0.1:6379?bogus=1", "unknown option \"bogus\""),
            ("tcp://h:6379?auth=hunter2&weight=0", "weight=\"0\""),
            ("sqlite://relative.sqlite", "not absolute"),
            ("sqlite:///", "names a directory"),
            ("sqlite:///data/", "names a directory"),
            // Found by fuzz/dsn: a trailing "." names the directory too.
            ("sqlite:///.", "names a directory"),
            ("sqlite:///data/.", "names a directory"),
            ("sqlite:///data/x.db/%2E", "names a directory"),
            ("sqlite:///data/.?busy_timeout=1", "names a directory"),
            ("sqlite:///data/../etc/x.db", "contains \"..\""),
            ("sqlite:///data/x.db?busy_timeout=abc", "busy_timeout=\"abc\" must be an integer"),
            ("sqlite:///data/x.db?busy_timeout=-1", "must be an integer"),
            ("sqlite:///data/x.db?busy_timeout=9999999", "from 0 to 600000"),
            ("sqlite:///data/x.db?synchronous=off", "normal or full"),
            ("sqlite:///data/x.db?foo=1", "unknown option \"foo\""),
            ("sqlite:///data/x.db?foo", "has no value"),
            ("sqlite:///data/x.db?busy_timeout=", "empty value"),
            ("sqlite:///data/x.db?busy_timeout=1&busy_timeout=2", "given twice"),
            ("sqlite:///data/x%zz.db", "bad percent-escape"),
            ("sqlite:///data/x%00.db", "NUL byte"),
            ("sqlite:///data/x\n.db", "control character"),
            // Escaped control characters too (found by fuzz/dsn).
            ("sqlite:///data/x%0a.db", "decodes to a control character"),
            ("files:///var/s%09ess", "decodes to a control character"),
            ("files:///var/sess?mode=%7f600", "decodes to a control character"),
            ("files://var/sess", "not absolute"),
            ("files:///var/sess?depth=9", "from 0 to 8"),
            ("files:///var/sess?mode=999", "octal permission bits"),
            ("files:///var/sess?mode=0400", "octal permission bits"),
            ("files:///var/sess?table=x", "unknown option \"table\""),
        ];
        for (input, want) in cases {
            let e = parse(input, tmp()).unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
            assert!(e.contains("accepted forms"), "{input:?}: {e}");
        }
        let e = parse("sqlite:///data/x\n.db", tmp()).unwrap_err().to_string();
        assert!(e.contains("x\\n.db") && !e.contains('\n'), "control characters are escaped: {e}");
        let huge = format!("sqlite:///{}", "a".repeat(5000));
        assert!(parse(&huge, tmp()).unwrap_err().to_string().contains("at most 4096"));
    }

    #[test]
    fn secrets_are_masked() {
        let cases = [
            ("redis://user:hunter2@h:6379/0", "redis://user:***@h:6379/0"),
            ("redis://:hunter2@h:6379", "redis://:***@h:6379"),
            ("redis://hunter2@h", "redis://***@h"),
            ("tcp://h:6379?auth=hunter2&database=1", "tcp://h:6379?auth=***&database=1"),
            ("tcp://h:6379?prefix=x&password=hunter2", "tcp://h:6379?prefix=x&password=***"),
            ("sqlite:///a/b.db", "sqlite:///a/b.db"),
            // A base64 password holds '/' unencoded: the path does not end the userinfo.
            ("redis://:ab/cd+ef==@h:6379/0", "redis://:***@h:6379/0"),
            ("redis://u:ab/cd@h/0?prefix=x", "redis://u:***@h/0?prefix=x"),
            ("tcp://h:6379?p%61ssword=hunter2", "tcp://h:6379?p%61ssword=***"),
            ("tcp://h:6379?AUTH=hunter2", "tcp://h:6379?AUTH=***"),
            // No host, no userinfo: an '@' in a path is left alone.
            ("files:///srv/app@v2/s", "files:///srv/app@v2/s"),
            ("redis://pw@h/x@y:z", "redis://***@y:z"),
            // Sentinel credentials, their own option names.
            (
                "redis-sentinel://:masterpw@s1:26379/m?sentinel_user=sent&sentinel_password=hunter2&db=1",
                "redis-sentinel://:***@s1:26379/m?sentinel_user=sent&sentinel_password=***&db=1",
            ),
            ("rediss-sentinel://s1/m?SENTINEL_PASSWORD=hunter2", "rediss-sentinel://s1/m?SENTINEL_PASSWORD=***"),
            ("rediss-sentinel://s1/m?sentinel%5Fpassword=hunter2", "rediss-sentinel://s1/m?sentinel%5Fpassword=***"),
            ("rediss-cluster://u:hunter2@h:1,h:2?ca=/ca.pem", "rediss-cluster://u:***@h:1,h:2?ca=/ca.pem"),
            // phpredis' cluster form: all of it is a query, auth as a string or an array.
            ("seed[]=h:1&seed[]=h:2&auth=hunter2&prefix=p", "seed[]=h:1&seed[]=h:2&auth=***&prefix=p"),
            ("seed[]=h:1&auth[]=alice&auth[]=hunter2", "seed[]=h:1&auth[]=***&auth[]=***"),
            ("seed%5B%5D=h:1&auth%5Bpass%5D=hunter2", "seed%5B%5D=h:1&auth%5Bpass%5D=***"),
            ("seed[]=tls://h:1&stream[passphrase]=hunter2&auth=x", "seed[]=tls://h:1&stream[passphrase]=***&auth=***"),
            ("seed[]=u:hunter2@h:1&timeout=2", "seed[]=***@h:1&timeout=2"),
        ];
        for (input, want) in cases {
            assert_eq!(mask_secrets(input), want);
        }
        // C1 control characters are refused too, and never echoed (found by fuzz/dsn in the Redis form).
        let e = parse("tcp://h:6\u{c9}h=hu://h:6\u{9f}&data", tmp()).unwrap_err().to_string();
        assert!(!e.chars().any(char::is_control) && e.contains("control character"), "{e}");
        // A short secret is hidden where it stands alone, not inside the message's words.
        assert_eq!(hide_secrets("redis://u:x@h/d", "known: prefix; \"u:x@/d\" x"), "known: prefix; \"u:***@/d\" ***");
        // Pieces of a secret that look like the mask do not multiply it (found by fuzz/mask_secrets:
        // the message grew exponentially).
        let e = parse("seed[]=:,,a,:,:,,:hunter2*/*//*/*/*/Z/*/*//*/*/*@,&x=a,:,:,,a", tmp()).unwrap_err().to_string();
        assert!(e.len() < 4096 && !e.contains("hunter2"), "{}", &e[..e.len().min(300)]);
        let e = parse("redis://:hunter2@127.0.0.1?auth=x", tmp()).unwrap_err().to_string();
        assert!(e.contains("prefix") && !e.contains("hunter2"), "{e}");
        // Nor may the reason quote it (found by fuzz/mask_secrets).
        for dsn in [
            "redis://u:hunter2@h?bogus=1",
            "redis://u:hunter2@h?auth=hunter2%zz",
            "sqlite://u:hunter2@/x.db",
            "files://u:hunter2@/d?mode=9",
            "tcp://h?x=1&password=hunter%32",
            "sqlite:///x.db?auth=hunter2&auth=hunter2",
            "redis-sentinel://s:1/m?sentinel_password=hunter2&bogus=1",
            "redis-sentinel://s:1/m?sentinel_password=hunter2&sentinel_password=hunter2",
            "rediss-sentinel://:hunter2@s:1/m?verify=maybe",
            "seed[]=h:1&auth=hunter2&colour=blue",
            "seed[]=h:1&auth[]=a&auth[]=hunter2&auth[]=c",
            "seed[]=u:hunter2@h:1",
            // A secret cut by the server-list separator (found by fuzz/mask_secrets).
            "tcp://a:,Zq:hunter2@tc/?x=",
            "tcp://a:x,hunter2@h:1",
            "redis://9:hunter2:qa%9@q9as/@?x=",
            "tcp://::,,:hunter2_;%///@hos/t?x=",
            // memcached:// has no userinfo; a server entry holding one was quoted (found by fuzz/mask_secrets).
            "memcached://Zq:9,Z:9:hunter2*a$f:OG@///J",
            "memcached://u:hunter2@h:1",
        ] {
            let e = parse(dsn, tmp()).unwrap_err().to_string();
            assert!(!e.contains("hunter2") && e.contains("***"), "{dsn}: {e}");
        }
    }
}
