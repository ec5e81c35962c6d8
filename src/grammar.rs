//! The one grammar of `session.save_path` and of the `session_proxy.*` values: query splitting,
//! percent and form decoding with our strictness and control-character checks, integers, booleans,
//! durations, absolute paths, and the masking of secrets.
//!
//! A leaf: it imports nothing of this crate, so the dispatcher (`crate::dsn`), every engine's option
//! parser (`crate::store::*::options`, `crate::store::redis::dsn`), `crate::net` and
//! `crate::settings` all use it without importing each other (`scripts/imports.sh` checks it).
//!
//! Errors are a typed [`Reason`]; the words are made only by its `Display`, and the caller that knows
//! the save_path puts them into the whole operator-facing message (`crate::dsn::DsnError`).

use std::path::{Component, PathBuf};
use std::time::Duration;

/// Why a DSN (or a part of it) is refused. `Display` gives the reason's words, as they appear after
/// `invalid session.save_path "…": `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("it is {len} bytes long (at most {max})")]
    TooLong { len: usize, max: usize },
    #[error("it contains a control character")]
    ControlCharacter,
    #[error("it is not valid UTF-8")]
    NotUtf8,
    #[error("bad percent-escape in {0:?}")]
    BadEscape(String),
    #[error("{0:?} decodes to invalid UTF-8")]
    DecodesToInvalidUtf8(String),
    #[error("{0:?} decodes to a NUL byte")]
    DecodesToNul(String),
    #[error("{0:?} decodes to a control character")]
    DecodesToControl(String),
    #[error("option {0:?} has no value (write key=value)")]
    NoValue(String),
    #[error("option {0:?} has an empty value")]
    EmptyValue(String),
    #[error("option {0:?} is given twice")]
    GivenTwice(String),
    #[error("option {key}={value:?} must be an integer from {min} to {max}")]
    NotInRange { key: String, value: String, min: u64, max: u64 },
    /// `expected` completes "must be …": "0 or 1", "normal or full", "seconds from 0.001 to 3600 (e.g. 0.5)".
    #[error("option {key}={value:?} must be {expected}")]
    Invalid { key: String, value: String, expected: &'static str },
    /// `place` completes the sentence: "for sqlite://", "in phpredis' cluster save_path".
    #[error("unknown option {key:?} {place} (known: {known})")]
    UnknownOption { key: String, place: String, known: String },
    /// `what` names the path: "path", "unix socket path", "socket path".
    #[error("{what} {path:?} is not absolute")]
    NotAbsolute { what: &'static str, path: String },
    #[error("{what} {path:?} contains \"..\"")]
    DotDot { what: &'static str, path: String },
    /// A fixed rule of one engine's form, in its words ("no server given", "options cert and key go
    /// together …").
    #[error("{0}")]
    Rule(&'static str),
    #[error("{0} names a directory; sqlite:// takes a file path")]
    NamesADirectory(String),
    #[error("unknown scheme {0:?}")]
    UnknownScheme(String),
    /// `what`: "servers", "seeds", "Sentinels".
    #[error("{count} {what} given (at most {max})")]
    TooMany { what: &'static str, count: usize, max: usize },
    #[error("host {0:?} is not a host name or IP address")]
    BadHost(String),
    #[error("{0:?} is not a host name or IP address (write [v6]:port for IPv6)")]
    BadHostV6(String),
    #[error("port {0:?} must be an integer from 1 to 65535")]
    BadPort(String),
    #[error("unclosed '[' in host {0:?}")]
    UnclosedBracket(String),
    /// One entry of a server list, and what is wrong with it.
    #[error("server {server:?}: {reason}")]
    Server { server: String, reason: Box<Reason> },
    #[error("server {0} is listed twice")]
    ListedTwice(String),
    /// The scheme as written ("redis-cluster://").
    #[error("{0} takes no database (a cluster has only database 0)")]
    NoDatabase(String),
    #[error("{0} needs the master name: {0}host:port/<master-name>")]
    NoMasterName(String),
    #[error("master name {0:?} must be one non-empty word")]
    BadMasterName(String),
    #[error("seed {seed:?}: scheme {scheme:?} must be tcp or tls")]
    SeedScheme { seed: String, scheme: String },
    /// The seed, masked.
    #[error("seed {0:?} must be host:port")]
    SeedNotHostPort(String),
    #[error("option {0} is for TLS: write the seeds as seed[]=tls://host:port")]
    TlsOptionOnPlainSeeds(String),
    #[error("{0:?} in the server list is not a URL")]
    NotUrl(String),
    /// The host:port part, masked.
    #[error("tcp://{0} must be host:port (give the password as ?auth=…)")]
    TcpNotHostPort(String),
    #[error("{0}:// cannot be mixed into a tcp:// / unix:// server list")]
    MixedScheme(String),
    #[error("the database number {0:?} in the path must be an integer from 0 to 65535")]
    BadDatabase(String),
    #[error("option {key} is {len} bytes long (at most {max})")]
    OptionTooLong { key: &'static str, len: usize, max: usize },
    #[error("option {key}={value:?} needs more than one server (copies go to the next servers)")]
    NeedsServers { key: String, value: String },
    #[error("option weights={value:?} must give one weight per server ({servers} servers)")]
    WeightsCount { value: String, servers: usize },
    /// The SQL engines' forms; the scheme as written ("pgsql", "mysql").
    #[error("no database name given; write {0}://host/dbname")]
    SqlNoDatabase(String),
    #[error("database name {0:?} contains '/'")]
    DatabaseSlash(String),
    #[error("no server given; write {0}://host[:port]/dbname")]
    SqlNoServer(String),
    #[error("server {server:?} is not host[:port]; write {scheme}://host[:port][,host[:port]]/dbname")]
    SqlServer { server: String, scheme: String },
    #[error("port {port:?} of server {server:?} must be an integer from 1 to 65535")]
    ServerPort { port: String, server: String },
}

/// The longest save_path accepted.
pub const MAX_DSN_LEN: usize = 4096;

/// The checks on the raw text, before anything is decoded: its length and no control character.
pub fn check_raw(s: &str) -> Result<(), Reason> {
    if s.len() > MAX_DSN_LEN {
        return Err(Reason::TooLong { len: s.len(), max: MAX_DSN_LEN });
    }
    if s.chars().any(char::is_control) {
        return Err(Reason::ControlCharacter);
    }
    Ok(())
}

/// How a query's keys and values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// RFC 3986 percent-encoding (our URL forms): `+` is a plus.
    Percent,
    /// `application/x-www-form-urlencoded`, as PHP's `parse_str` reads it (phpredis' cluster
    /// save_path): `+` is a space.
    Form,
}

/// Strict percent-decoding: every `%` starts two hex digits, the bytes are UTF-8, and no NUL or other
/// control character comes out (the raw DSN is checked for them; an escaped one, `%0A`, must not slip
/// into a file name or a message).
pub fn percent_decode(s: &str) -> Result<String, Reason> {
    let b = s.as_bytes();
    let well_formed = b
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b'%')
        .all(|(i, _)| b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if !well_formed {
        return Err(Reason::BadEscape(s.to_string()));
    }
    let out = percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| Reason::DecodesToInvalidUtf8(s.to_string()))?;
    if out.contains('\0') {
        return Err(Reason::DecodesToNul(s.to_string()));
    }
    if out.chars().any(char::is_control) {
        return Err(Reason::DecodesToControl(s.to_string()));
    }
    Ok(out.into_owned())
}

/// Form decoding (`+` is a space), with the strictness of [`percent_decode`].
pub fn form_decode(s: &str) -> Result<String, Reason> {
    percent_decode(&s.replace('+', " "))
}

/// Decodes one part in `encoding`.
pub fn decode(s: &str, encoding: Encoding) -> Result<String, Reason> {
    match encoding {
        Encoding::Percent => percent_decode(s),
        Encoding::Form => form_decode(s),
    }
}

/// `s` cut at its first `?`: the part before and the query.
pub fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (s, None),
    }
}

/// The `key=value` pairs of a query, decoded, keys lowercased, in order; empty pairs (`a=1&&b=2`)
/// are skipped and a pair without `=` is refused. No rule on empty or repeated values: see
/// [`parse_query`] for ours.
pub fn decode_pairs(query: &str, encoding: Encoding) -> Result<Vec<(String, String)>, Reason> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            // A form-encoded key is named decoded (phpredis' `seed%5B%5D` is `seed[]`).
            let named = || match encoding {
                Encoding::Percent => pair.to_string(),
                Encoding::Form => form_decode(pair).unwrap_or_else(|_| pair.to_string()),
            };
            let (k, v) = pair.split_once('=').ok_or_else(|| Reason::NoValue(named()))?;
            Ok((decode(k, encoding)?.to_ascii_lowercase(), decode(v, encoding)?))
        })
        .collect()
}

/// The options of our URL forms: percent-decoded, no empty value, no key given twice.
pub fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, Reason> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in decode_pairs(query.unwrap_or(""), Encoding::Percent)? {
        if v.is_empty() {
            return Err(Reason::EmptyValue(k));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(Reason::GivenTwice(k));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// A whole number from `min` to `max` in decimal digits (a leading `+` is taken, as PHP's INI takes
/// it; no `-`, no blanks).
pub fn int(v: &str, min: u64, max: u64) -> Option<u64> {
    v.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
}

/// Option `key`'s value as an integer from `min` to `max`.
pub fn option_int(key: &str, v: &str, min: u64, max: u64) -> Result<u64, Reason> {
    int(v, min, max).ok_or_else(|| Reason::NotInRange { key: key.to_string(), value: v.to_string(), min, max })
}

/// Option `key` in milliseconds, `min` to `max`.
pub fn option_millis(key: &str, v: &str, min: u64, max: u64) -> Result<Duration, Reason> {
    option_int(key, v, min, max).map(Duration::from_millis)
}

/// Option `key` in microseconds, `min` to `max`.
pub fn option_micros(key: &str, v: &str, min: u64, max: u64) -> Result<Duration, Reason> {
    option_int(key, v, min, max).map(Duration::from_micros)
}

/// Option `key` in seconds with a fraction (phpredis' `timeout=2.5`): 0.001 to 3600.
pub fn option_secs(key: &str, v: &str) -> Result<Duration, Reason> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.001 && *s <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| invalid(key, v, "seconds from 0.001 to 3600 (e.g. 0.5)"))
}

/// Which spellings of a boolean are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bools {
    /// `0` or `1` only (our DSN options).
    Digits,
    /// PHP's spellings too, any case: on/off, true/false, yes/no (INI values, phpredis' options).
    Php,
}

/// A boolean in `spelling`; None for anything else (the empty string included).
pub fn bool(v: &str, spelling: Bools) -> Option<bool> {
    match (v, spelling) {
        ("1", _) => Some(true),
        ("0", _) => Some(false),
        (_, Bools::Digits) => None,
        (v, Bools::Php) => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            _ => None,
        },
    }
}

/// Option `key`'s value as a flag (the message asks for 0 or 1 whatever else `spelling` takes).
pub fn option_bool(key: &str, v: &str, spelling: Bools) -> Result<bool, Reason> {
    bool(v, spelling).ok_or_else(|| invalid(key, v, "0 or 1"))
}

/// `Reason::Invalid` for option `key`.
pub fn invalid(key: &str, v: &str, expected: &'static str) -> Reason {
    Reason::Invalid { key: key.to_string(), value: v.to_string(), expected }
}

/// An absolute path without `..`; `what` names it in the reason ("path", "unix socket path").
pub fn abs_path(what: &'static str, p: &str) -> Result<PathBuf, Reason> {
    let path = PathBuf::from(p);
    if p.is_empty() || !path.is_absolute() {
        return Err(Reason::NotAbsolute { what, path: p.to_string() });
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Reason::DotDot { what, path: p.to_string() });
    }
    Ok(path)
}

/// Whether `s` is a query-only form whose keys include `key` or `key[…]` (phpredis' cluster
/// save_path, `seed[]=host:port&…`): no `scheme://` before it.
pub fn is_query_form(s: &str, key: &str) -> bool {
    let s = s.trim_start();
    if s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    }) {
        return false;
    }
    s.split('&').any(|kv| {
        let k = form_decode(kv.split('=').next().unwrap_or("")).unwrap_or_default().to_ascii_lowercase();
        k == key || k.strip_prefix(key).is_some_and(|rest| rest.starts_with('['))
    })
}

/// The option keys whose values are secrets, also as arrays (`auth[]`, `auth[pass]`) or inside one
/// (`stream[passphrase]`); matched case-insensitively after decoding.
pub const SECRET_KEYS: [&str; 6] = ["auth", "password", "pass", "secret", "sentinel_password", "passphrase"];

/// Whether a query key names a secret (see [`SECRET_KEYS`]).
pub fn is_secret_key(k: &str) -> bool {
    let k = form_decode(k).unwrap_or_else(|_| k.to_string()).to_ascii_lowercase();
    let (base, inner) = match k.split_once('[') {
        Some((b, i)) => (b, i.trim_end_matches(']')),
        None => (k.as_str(), ""),
    };
    SECRET_KEYS.contains(&base) || SECRET_KEYS.contains(&inner)
}

/// How a DSN is laid out, for masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `scheme://[userinfo@]rest[?query]` (or a plain path).
    Url,
    /// All of it is a query (phpredis' cluster form); a value may hold `user:password@host`.
    Query,
}

/// The DSN with its secrets replaced by `***`, and the secrets it hid: `user:secret@` (all of the
/// userinfo when it is one word) and the values of the [`SECRET_KEYS`] options.
pub fn mask(dsn: &str, layout: Layout) -> (String, Vec<String>) {
    let mut out = String::with_capacity(dsn.len());
    let mut secrets = Vec::new();
    let query_only = layout == Layout::Query;
    // userinfo: between "://" and the last '@' before the query. A password may hold '/' unencoded
    // (base64), so the path does not end it; a DSN whose part after "://" starts with '/' has no
    // host, hence no userinfo (sqlite:///dir@x/file).
    let mut rest = dsn;
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
    let (before, query) = if query_only { ("", Some(dsn)) } else { split_query(rest) };
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

/// Replaces every one of `secrets` (as written and percent-decoded, and the pieces a reason may quote)
/// in `text` by `***`. Occurrences are found in `text` as given and replaced in one pass, so a piece of
/// a secret that looks like the mask (`*`) cannot multiply it (found by fuzz/mask_secrets: an
/// exponential blow-up).
pub fn hide(text: &str, secrets: &[String]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets {
        // A server list (phpredis' tcp://a,tcp://b) is cut at ',' and blanks, a URL at '@' and '/',
        // wherever they stand: a reason may quote a piece of a secret that held one (found by
        // fuzz/mask_secrets).
        let pieces: Vec<String> = secret
            .split(|c: char| matches!(c, ',' | '@' | '/') || c.is_ascii_whitespace())
            .filter(|p| !p.is_empty() && p.len() < secret.len())
            .map(str::to_string)
            .collect();
        forms.extend([percent_decode(secret).unwrap_or_default(), secret.clone()]);
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

/// `text` with every control character written as its escape (`\n`): one log line, whatever a
/// reason quotes.
pub fn escape_controls(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// For the engines' tests: a query's options as `parse_query` gives them.
#[cfg(test)]
pub(crate) fn options(query: &str) -> Vec<(String, String)> {
    parse_query(Some(query)).unwrap()
}

/// For the engines' test tables: each `(part, query, reason)` (what follows `scheme://`, and the
/// query) is refused with a message that contains `reason`; returns the messages.
#[cfg(test)]
pub(crate) fn assert_refused<T: std::fmt::Debug>(
    parse: impl Fn(&str, Vec<(String, String)>) -> Result<T, Reason>,
    cases: &[(&str, &str, &str)],
) -> Vec<String> {
    let messages = cases.iter().map(|(part, query, want)| {
        let e = parse(part, options(query)).unwrap_err().to_string();
        assert!(e.contains(want), "{part:?} {query:?}: {e}");
        e
    });
    messages.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn raw_checks() {
        assert_eq!(check_raw("redis://h"), Ok(()));
        assert_eq!(check_raw(&"a".repeat(MAX_DSN_LEN)), Ok(()));
        let e = check_raw(&"a".repeat(MAX_DSN_LEN + 1)).unwrap_err();
        assert_eq!(e.to_string(), "it is 4097 bytes long (at most 4096)");
        for bad in ["a\nb", "a\0b", "\u{7f}", "x\u{85}y", "tab\there"] {
            assert_eq!(check_raw(bad), Err(Reason::ControlCharacter), "{bad:?}");
        }
        assert_eq!(Reason::ControlCharacter.to_string(), "it contains a control character");
        assert_eq!(Reason::NotUtf8.to_string(), "it is not valid UTF-8");
    }

    #[test]
    fn percent_decoding() {
        let good = [
            ("", ""),
            ("plain", "plain"),
            ("a%20b", "a b"),
            ("%41%62", "Ab"),
            ("%c3%a9", "é"),
            ("%C3%A9", "é"),
            ("100%25", "100%"),
            ("a+b", "a+b"),
            ("%2B", "+"),
            ("é", "é"),
        ];
        for (input, want) in good {
            assert_eq!(percent_decode(input).as_deref(), Ok(want), "{input:?}");
        }
        let bad = [
            ("%", "bad percent-escape in \"%\""),
            ("a%2", "bad percent-escape in \"a%2\""),
            ("%zz", "bad percent-escape"),
            ("%+1", "bad percent-escape"),
            ("%%41", "bad percent-escape"),
            ("%ff", "\"%ff\" decodes to invalid UTF-8"),
            ("%c3", "decodes to invalid UTF-8"),
            ("a%00b", "\"a%00b\" decodes to a NUL byte"),
            ("%0a", "\"%0a\" decodes to a control character"),
            ("%09", "decodes to a control character"),
            ("%7f", "decodes to a control character"),
            // C1 controls (U+0080–U+009F) too.
            ("%c2%85", "decodes to a control character"),
        ];
        for (input, want) in bad {
            let e = percent_decode(input).unwrap_err().to_string();
            assert!(e.contains(want), "{input:?}: {e}");
        }
    }

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("p%40ss+word").as_deref(), Ok("p@ss word"));
        assert_eq!(form_decode("a%2Bb").as_deref(), Ok("a+b"));
        assert_eq!(form_decode("seed%5B%5D").as_deref(), Ok("seed[]"));
        assert_eq!(decode("a+b", Encoding::Percent).as_deref(), Ok("a+b"));
        assert_eq!(decode("a+b", Encoding::Form).as_deref(), Ok("a b"));
        assert!(form_decode("x%zz").unwrap_err().to_string().contains("bad percent-escape"));
        assert!(form_decode("x%0D").unwrap_err().to_string().contains("control character"));
    }

    #[test]
    fn queries() {
        assert_eq!(split_query("h/0?a=1?b"), ("h/0", Some("a=1?b")));
        assert_eq!(split_query("h/0"), ("h/0", None));
        assert_eq!(parse_query(None), Ok(vec![]));
        assert_eq!(parse_query(Some("")), Ok(vec![]));
        assert_eq!(
            parse_query(Some("A=1&&b=x%20y&c=a+b")),
            Ok(vec![(s("a"), s("1")), (s("b"), s("x y")), (s("c"), s("a+b"))])
        );
        assert_eq!(parse_query(Some("p%61ss=x")), Ok(vec![(s("pass"), s("x"))]));
        assert_eq!(decode_pairs("seed%5B%5D", Encoding::Form).unwrap_err().to_string(), "option \"seed[]\" has no value (write key=value)");
        assert_eq!(
            decode_pairs("seed[]=a&seed[]=b&prefix=&auth=p+w", Encoding::Form),
            Ok(vec![(s("seed[]"), s("a")), (s("seed[]"), s("b")), (s("prefix"), s("")), (s("auth"), s("p w"))])
        );
        let bad = [
            ("a", "option \"a\" has no value (write key=value)"),
            ("a=1&b", "option \"b\" has no value"),
            ("a%5B%5D", "option \"a%5B%5D\" has no value"),
            ("a=", "option \"a\" has an empty value"),
            ("a=%41&A=2", "option \"a\" is given twice"),
            ("a=%zz", "bad percent-escape in \"%zz\""),
            ("%zz=1", "bad percent-escape"),
            ("a=%0a", "decodes to a control character"),
        ];
        for (q, want) in bad {
            let e = parse_query(Some(q)).unwrap_err().to_string();
            assert!(e.contains(want), "{q:?}: {e}");
        }
    }

    #[test]
    fn integers_and_durations() {
        assert_eq!(int("0", 0, 8), Some(0));
        assert_eq!(int("8", 0, 8), Some(8));
        assert_eq!(int("+1", 0, 8), Some(1));
        for bad in ["9", "-1", "+-1", " 1", "1.0", "", "x", "99999999999999999999999"] {
            assert_eq!(int(bad, 0, 8), None, "{bad:?}");
        }
        assert_eq!(option_int("depth", "3", 0, 8), Ok(3));
        assert_eq!(option_int("depth", "9", 0, 8).unwrap_err().to_string(), "option depth=\"9\" must be an integer from 0 to 8");
        assert_eq!(option_millis("t", "250", 1, 1000), Ok(Duration::from_millis(250)));
        assert_eq!(option_micros("busy_poll", "50", 0, 1000), Ok(Duration::from_micros(50)));
        assert!(option_micros("busy_poll", "1001", 0, 1000).unwrap_err().to_string().contains("from 0 to 1000"));
        assert_eq!(option_secs("timeout", "2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(option_secs("timeout", "0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(option_secs("timeout", "3600"), Ok(Duration::from_secs(3600)));
        for bad in ["0", "-1", "3600.5", "inf", "NaN", "abc", ""] {
            let e = option_secs("timeout", bad).unwrap_err().to_string();
            assert_eq!(e, format!("option timeout={bad:?} must be seconds from 0.001 to 3600 (e.g. 0.5)"));
        }
    }

    #[test]
    fn booleans() {
        for (v, want) in [("1", true), ("0", false)] {
            assert_eq!(bool(v, Bools::Digits), Some(want));
            assert_eq!(bool(v, Bools::Php), Some(want));
        }
        for (v, want) in [("On", true), ("TRUE", true), ("yes", true), ("off", false), ("False", false), ("NO", false)] {
            assert_eq!(bool(v, Bools::Php), Some(want), "{v}");
            assert_eq!(bool(v, Bools::Digits), None, "{v}");
        }
        for v in ["", "2", "maybe", " 1", "01"] {
            assert_eq!(bool(v, Bools::Php), None, "{v:?}");
        }
        assert_eq!(option_bool("persistent", "yes", Bools::Digits).unwrap_err().to_string(), "option persistent=\"yes\" must be 0 or 1");
        assert_eq!(option_bool("persistent", "yes", Bools::Php), Ok(true));
    }

    #[test]
    fn paths() {
        assert_eq!(abs_path("path", "/a/b"), Ok(PathBuf::from("/a/b")));
        assert_eq!(abs_path("path", "/a/./b"), Ok(PathBuf::from("/a/b")));
        assert_eq!(abs_path("path", "rel").unwrap_err().to_string(), "path \"rel\" is not absolute");
        assert_eq!(abs_path("path", "").unwrap_err().to_string(), "path \"\" is not absolute");
        assert_eq!(abs_path("unix socket path", "/a/../b").unwrap_err().to_string(), "unix socket path \"/a/../b\" contains \"..\"");
        // A name that only starts with two dots is not a parent directory.
        assert_eq!(abs_path("path", "/a/..b"), Ok(PathBuf::from("/a/..b")));
    }

    #[test]
    fn query_forms() {
        assert!(is_query_form("seed[]=h:1", "seed"));
        assert!(is_query_form("timeout=2&seed[]=h:1", "seed"));
        assert!(is_query_form("seed%5B%5D=h:1", "seed"));
        assert!(is_query_form("SEED=h:1", "seed"));
        assert!(!is_query_form("seeds=h:1", "seed"));
        assert!(!is_query_form("redis://h?seed[]=x", "seed"));
        assert!(!is_query_form("/var/lib/php/sessions", "seed"));
    }

    #[test]
    fn masking() {
        assert!(is_secret_key("auth") && is_secret_key("AUTH") && is_secret_key("p%61ss") && is_secret_key("auth[]"));
        assert!(is_secret_key("stream[passphrase]") && is_secret_key("sentinel%5Fpassword"));
        assert!(!is_secret_key("prefix") && !is_secret_key("author") && !is_secret_key("sentinel_user"));
        let cases = [
            ("redis://u:pw@h/0?prefix=x", Layout::Url, "redis://u:***@h/0?prefix=x", vec!["pw"]),
            ("redis://pw@h", Layout::Url, "redis://***@h", vec!["pw"]),
            ("files:///a@b/c", Layout::Url, "files:///a@b/c", vec![]),
            ("tcp://h?auth=pw&db=1", Layout::Url, "tcp://h?auth=***&db=1", vec!["pw"]),
            ("seed[]=h:1&auth=pw", Layout::Query, "seed[]=h:1&auth=***", vec!["pw"]),
            ("seed[]=u:pw@h:1", Layout::Query, "seed[]=***@h:1", vec!["u:pw", "pw"]),
            // The same text read as a URL: no userinfo, nothing to hide.
            ("seed[]=u:pw@h:1", Layout::Url, "seed[]=u:pw@h:1", vec![]),
        ];
        for (dsn, layout, masked, secrets) in cases {
            let (m, sec) = mask(dsn, layout);
            assert_eq!(m, masked, "{dsn:?}");
            assert_eq!(sec, secrets, "{dsn:?}");
        }
        assert_eq!(hide("known: prefix; \"u:x@/d\" x", &[s("x")]), "known: prefix; \"u:***@/d\" ***");
        assert_eq!(hide("a p%40ss and p@ss", &[s("p%40ss")]), "a *** and ***");
        // Pieces of a secret: a server list is cut at ',' (a reason may quote one piece).
        assert_eq!(hide("host \"hunter2\" bad", &[s("a,hunter2")]), "host \"***\" bad");
        // A secret made of mask characters does not multiply the mask.
        assert_eq!(hide("***", &[s("*")]), "***");
        assert_eq!(escape_controls("a\nb\u{85}"), "a\\nb\\u{85}");
    }
}
