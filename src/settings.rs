//! The `session_proxy.*` directives: names, defaults, validation. The PHP skin registers these and
//! calls `validate` from its on-modify hook, so a bad value is rejected with this module's message.

use std::ffi::CStr;
use std::time::Duration;

use crate::grammar::{self, Bools};
use crate::serial::{Format, OnConflict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutAction {
    /// `session_start()` fails with a warning.
    Fail,
    /// The session opens read-only with a notice; its changes are refused with a notice.
    ReadOnly,
}

/// `session_proxy.locking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// A per-session lock from read to write (the default).
    On,
    /// No lock: the last writer wins.
    Off,
    /// No lock and no wait: the write is a compare-and-swap against the version read, and a
    /// concurrent change is merged key by key (`session_proxy.merge_conflict` settles a key changed
    /// on both sides).
    Optimistic,
}

/// Effective behaviour for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub locking: Locking,
    pub lock_wait: Duration,
    pub lock_expire: Duration,
    pub on_timeout: TimeoutAction,
    /// Optimistic mode: which side keeps a key that both requests changed.
    pub merge_conflict: OnConflict,
    /// Optimistic mode: the format of the session data (`session.serialize_handler`; None: one we
    /// cannot take apart, merged as one unit).
    pub format: Option<Format>,
    /// `session_proxy.user_key`: the top-level `$_SESSION` key whose value binds the session to a
    /// user in the per-user index (None: only `SessionProxy\set_user` binds).
    pub user_key: Option<String>,
    /// `session_proxy.track_client`: record the client's IP address and user agent with a binding.
    pub track_client: bool,
    /// `session_proxy.migrate_from`: the old store's DSN (None: no migration). Parsed by the skin
    /// (`crate::dsn`, which this leaf module cannot use).
    pub migrate_from: Option<String>,
    /// The at-rest layers' directives, as given (keys are read at open: `Layers::at_rest`).
    pub at_rest: AtRest,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            locking: Locking::On,
            lock_wait: Duration::from_millis(30_000),
            lock_expire: Duration::from_secs(30),
            on_timeout: TimeoutAction::Fail,
            merge_conflict: OnConflict::Last,
            format: Some(Format::Php),
            user_key: None,
            track_client: false,
            migrate_from: None,
            at_rest: AtRest { compression_threshold: DEFAULT_COMPRESSION_THRESHOLD, ..AtRest::default() },
        }
    }
}

/// One directive: name, default, and what it means (shown by phpinfo and in the README).
pub struct Directive {
    pub name: &'static CStr,
    pub default: &'static CStr,
    pub help: &'static str,
    /// An On/Off directive: shown as On/Off by phpinfo and `php --ri`.
    pub boolean: bool,
}

pub const LOCKING: &str = "session_proxy.locking";
pub const LOCK_WAIT_TIMEOUT: &str = "session_proxy.lock_wait_timeout";
pub const LOCK_EXPIRE: &str = "session_proxy.lock_expire";
pub const LOCK_TIMEOUT_ACTION: &str = "session_proxy.lock_timeout_action";
pub const MERGE_CONFLICT: &str = "session_proxy.merge_conflict";
pub const USER_KEY: &str = "session_proxy.user_key";
pub const TRACK_CLIENT: &str = "session_proxy.track_client";
pub const MIGRATE_FROM: &str = "session_proxy.migrate_from";
pub const ENCRYPTION_KEY: &str = "session_proxy.encryption_key";
pub const ENCRYPTION_KEYS_OLD: &str = "session_proxy.encryption_keys_old";
pub const HASH_IDS: &str = "session_proxy.hash_ids";
pub const HASH_KEY: &str = "session_proxy.hash_key";
/// The largest compression_threshold (and the largest session the compression layer compresses).
pub const MAX_DATA_LEN: usize = 256 << 20;

/// A compression codec (`session_proxy.compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Zstd,
    Lz4,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }
}

/// Where a key is read from: an absolute file path, or an environment variable (`env:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(std::path::PathBuf),
    Env(String),
}

/// One key source, as written in a key directive; None: neither form.
pub fn key_source(v: &str) -> Option<KeySource> {
    let v = v.trim();
    if let Some(name) = v.strip_prefix("env:") {
        (!name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')).then(|| KeySource::Env(name.to_string()))
    } else {
        v.starts_with('/').then(|| KeySource::File(v.into()))
    }
}

/// The at-rest layers' directives, as given (the keys are read at open, `Layers::at_rest`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AtRest {
    pub encryption_key: String,
    pub encryption_keys_old: String,
    pub hash_ids: bool,
    pub hash_key: String,
    pub compression: Option<Codec>,
    pub compression_threshold: usize,
}
pub const COMPRESSION: &str = "session_proxy.compression";
pub const COMPRESSION_THRESHOLD: &str = "session_proxy.compression_threshold";
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 1024;

/// Upper bounds, so that a typo cannot make a wait effectively unbounded.
pub const MAX_LOCK_WAIT_MS: u64 = 3_600_000;
pub const MAX_LOCK_EXPIRE_S: u64 = 86_400;
/// lock_expire when both it and max_execution_time are 0.
pub const FALLBACK_LOCK_EXPIRE_S: u64 = 30;

pub const DIRECTIVES: &[Directive] = &[
    Directive {
        name: c"session_proxy.locking",
        default: c"1",
        help: "On: a per-session lock held from read to write/close; Off: no lock, the last writer wins; optimistic: no lock and no wait, writes compare-and-swap and merge concurrent changes key by key",
        boolean: true,
    },
    Directive {
        name: c"session_proxy.lock_wait_timeout",
        default: c"30000",
        help: "Milliseconds a request waits for another request's lock (0 to 3600000)",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.lock_expire",
        default: c"0",
        help: "Seconds after which a lock whose holder vanished may be taken over; 0 = max_execution_time, or 30 when that is 0 (0 to 86400)",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.lock_timeout_action",
        default: c"fail",
        help: "On lock wait timeout: fail (session_start() returns false) or readonly (open without lock with a notice, refuse writes)",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.merge_conflict",
        default: c"last",
        help: "locking=optimistic, a key changed by two requests at once: last (this request's value wins) or first (the stored value wins, with a notice)",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.user_key",
        default: c"",
        help: "The top-level $_SESSION key whose value (a string or an int) binds the session to a user in the per-user index; empty: only SessionProxy\\set_user() binds",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.track_client",
        default: c"0",
        help: "Record the client's IP address and user agent with a session's user binding (listed by SessionProxy\\user_sessions()); Off by default: personal data",
        boolean: true,
    },
    Directive {
        name: c"session_proxy.migrate_from",
        default: c"",
        help: "Read-through migration: the old store's DSN (any session.save_path form); sessions the store lacks are read from it and moved at their first write; empty: off",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.encryption_key",
        default: c"",
        help: "Encrypt sessions at rest (XChaCha20-Poly1305) with the 32-byte key in this file (absolute path) or environment variable (env:NAME): 32 raw bytes or 64 hex digits; never the key itself. Empty: off",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.encryption_keys_old",
        default: c"",
        help: "Comma-separated old keys (same forms as encryption_key) still accepted for reading; sessions are re-encrypted with encryption_key at their next write",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.hash_ids",
        default: c"0",
        help: "On: engines store and lock sessions under HMAC-SHA256(key, id), never the id; sessions stored under the id are moved at their first read",
        boolean: true,
    },
    Directive {
        name: c"session_proxy.hash_key",
        default: c"",
        help: "The hash_ids key (same forms as encryption_key); empty: derived from encryption_key by HKDF-SHA256",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.compression",
        default: c"off",
        help: "Compress sessions at rest: off, zstd or lz4 (sessions of at least compression_threshold bytes that shrink)",
        boolean: false,
    },
    Directive {
        name: c"session_proxy.compression_threshold",
        default: c"1024",
        help: "Sessions shorter than this many bytes are stored uncompressed (0 to 268435456)",
        boolean: false,
    },
];

/// A refused `session_proxy.*` value: the directive, the value as given, and what is accepted.
/// `Display` is the INI message; [`SettingError::for_option`] the one for `SessionProxy\Handler`'s
/// options array.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value \"{}\" for {name}: {expected}; the previous value stays", value.escape_debug())]
pub struct SettingError {
    pub name: String,
    pub value: String,
    /// What is accepted ("expected On/Off, …"), or that `name` is no directive of ours.
    pub expected: String,
}

impl SettingError {
    /// The message for the same value given as option `key` (the directive without its prefix) of
    /// `new SessionProxy\Handler($dsn, [key => value])`: no previous value stays there.
    pub fn for_option(&self, key: &str) -> String {
        format!("invalid value \"{}\" for option \"{key}\": {}", self.value.escape_debug(), self.expected)
    }
}

/// Checks a value for directive `name`; the error says what is accepted.
pub fn check(name: &str, value: &str) -> Result<(), SettingError> {
    let v = value.trim();
    let r = match name {
        LOCKING => parse_locking(v).map(|_| ()),
        LOCK_WAIT_TIMEOUT => parse_uint(v, MAX_LOCK_WAIT_MS).map(|_| ()),
        LOCK_EXPIRE => parse_uint(v, MAX_LOCK_EXPIRE_S).map(|_| ()),
        LOCK_TIMEOUT_ACTION => parse_action(v).map(|_| ()),
        MERGE_CONFLICT => parse_merge_conflict(v).map(|_| ()),
        USER_KEY => parse_user_key(v).map(|_| ()),
        TRACK_CLIENT => parse_bool(v).map(|_| ()),
        // A DSN: checked by the skin with `crate::dsn::parse` (this module is a leaf).
        MIGRATE_FROM => Ok(()),
        ENCRYPTION_KEY | HASH_KEY => parse_key_source(name, v),
        ENCRYPTION_KEYS_OLD => v.split(',').map(str::trim).filter(|s| !s.is_empty()).try_for_each(|s| key_source(s).map(|_| ()).ok_or(KEY_FORMS.to_string())),
        HASH_IDS => parse_bool(v).map(|_| ()),
        COMPRESSION => parse_compression(v).map(|_| ()),
        COMPRESSION_THRESHOLD => parse_uint(v, MAX_DATA_LEN as u64).map(|_| ()),
        _ => Err("is not a session_proxy directive".to_string()),
    };
    r.map_err(|expected| SettingError { name: name.to_string(), value: value.to_string(), expected })
}

/// [`check`], as the INI message.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    check(name, value).map_err(|e| e.to_string())
}

/// An On/Off directive: PHP's spellings (the grammar's), and empty is Off as in PHP's INI.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "" => Ok(false),
        v => grammar::bool(v, Bools::Php).ok_or_else(|| "expected On/Off, 1/0, true/false or yes/no".into()),
    }
}

pub fn parse_locking(v: &str) -> Result<Locking, String> {
    if v.eq_ignore_ascii_case("optimistic") {
        return Ok(Locking::Optimistic);
    }
    match parse_bool(v) {
        Ok(true) => Ok(Locking::On),
        Ok(false) => Ok(Locking::Off),
        Err(_) => Err("expected On/Off, 1/0, true/false, yes/no or optimistic".into()),
    }
}

/// A whole number from 0 to `max`.
pub fn parse_uint(v: &str, max: u64) -> Result<u64, String> {
    grammar::int(v, 0, max).ok_or_else(|| format!("expected a whole number from 0 to {max}"))
}

pub fn parse_merge_conflict(v: &str) -> Result<OnConflict, String> {
    match v.to_ascii_lowercase().as_str() {
        "last" => Ok(OnConflict::Last),
        "first" => Ok(OnConflict::First),
        _ => Err("expected last or first".into()),
    }
}

/// A top-level session key (empty: none): letters, digits and `_ . : -`, at most 127 bytes (the
/// php_binary serializer's limit; PHP's own serializer cannot store a key with `|` or `!`).
pub fn parse_user_key(v: &str) -> Result<Option<String>, String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"_.:-".contains(&b);
    match v {
        "" => Ok(None),
        v if v.len() <= 127 && v.bytes().all(ok) => Ok(Some(v.to_string())),
        _ => Err("expected a session key of at most 127 letters, digits, '_', '.', ':' or '-' (empty: none)".into()),
    }
}

pub fn parse_action(v: &str) -> Result<TimeoutAction, String> {
    match v.to_ascii_lowercase().as_str() {
        "fail" => Ok(TimeoutAction::Fail),
        "readonly" => Ok(TimeoutAction::ReadOnly),
        _ => Err("expected fail or readonly".into()),
    }
}

/// A key directive whose php.ini value is refused at startup is still set (not left at its empty
/// default): opening a session then fails naming it, instead of running without the encryption or
/// hashing it asked for.
pub fn kept_when_invalid(name: &str) -> bool {
    matches!(name, ENCRYPTION_KEY | ENCRYPTION_KEYS_OLD | HASH_KEY)
}

const KEY_FORMS: &str = "expected an absolute file path or env:NAME (the key itself never goes into php.ini)";

/// A key directive: empty (off) or one source.
fn parse_key_source(name: &str, v: &str) -> Result<(), String> {
    match v {
        "" => Ok(()),
        v => key_source(v).map(|_| ()).ok_or_else(|| if name == ENCRYPTION_KEY && v.contains(',') { format!("{KEY_FORMS}; one key (old ones go into {ENCRYPTION_KEYS_OLD})") } else { KEY_FORMS.to_string() }),
    }
}

pub fn parse_compression(v: &str) -> Result<Option<Codec>, String> {
    match v.to_ascii_lowercase().as_str() {
        "" | "off" | "0" | "none" => Ok(None),
        "zstd" => Ok(Some(Codec::Zstd)),
        "lz4" => Ok(Some(Codec::Lz4)),
        _ => Err("expected off, zstd or lz4".into()),
    }
}

/// The raw values of the directives for one request, by name (from the INI, or from a Handler's
/// options over the INI), plus PHP's max_execution_time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings {
    pub locking: String,
    pub lock_wait_timeout: String,
    pub lock_expire: String,
    pub lock_timeout_action: String,
    pub merge_conflict: String,
    pub max_execution_time: i64,
    pub user_key: String,
    pub track_client: String,
    pub migrate_from: String,
    pub encryption_key: String,
    pub encryption_keys_old: String,
    pub hash_ids: String,
    pub hash_key: String,
    pub compression: String,
    pub compression_threshold: String,
}

impl RawSettings {
    /// Asks `value` for each directive by its full name (`session_proxy.locking`, …).
    pub fn read(mut value: impl FnMut(&'static str) -> String, max_execution_time: i64) -> Self {
        RawSettings {
            locking: value(LOCKING),
            lock_wait_timeout: value(LOCK_WAIT_TIMEOUT),
            lock_expire: value(LOCK_EXPIRE),
            lock_timeout_action: value(LOCK_TIMEOUT_ACTION),
            merge_conflict: value(MERGE_CONFLICT),
            max_execution_time,
            user_key: value(USER_KEY),
            track_client: value(TRACK_CLIENT),
            migrate_from: value(MIGRATE_FROM),
            encryption_key: value(ENCRYPTION_KEY),
            encryption_keys_old: value(ENCRYPTION_KEYS_OLD),
            hash_ids: value(HASH_IDS),
            hash_key: value(HASH_KEY),
            compression: value(COMPRESSION),
            compression_threshold: value(COMPRESSION_THRESHOLD),
        }
    }
}

impl Settings {
    /// Builds the effective settings from raw directive values (already validated, but parsed
    /// defensively: anything unreadable falls back to the default).
    pub fn from_raw(raw: &RawSettings) -> Self {
        let d = Settings::default();
        let expire = parse_uint(raw.lock_expire.trim(), MAX_LOCK_EXPIRE_S).unwrap_or(0);
        Settings {
            locking: parse_locking(raw.locking.trim()).unwrap_or(d.locking),
            lock_wait: parse_uint(raw.lock_wait_timeout.trim(), MAX_LOCK_WAIT_MS).map(Duration::from_millis).unwrap_or(d.lock_wait),
            lock_expire: Duration::from_secs(effective_lock_expire(expire, raw.max_execution_time)),
            on_timeout: parse_action(raw.lock_timeout_action.trim()).unwrap_or(d.on_timeout),
            merge_conflict: parse_merge_conflict(raw.merge_conflict.trim()).unwrap_or(d.merge_conflict),
            user_key: parse_user_key(raw.user_key.trim()).unwrap_or(None),
            track_client: parse_bool(raw.track_client.trim()).unwrap_or(false),
            migrate_from: Some(raw.migrate_from.trim()).filter(|v| !v.is_empty()).map(str::to_string),
            at_rest: AtRest {
                encryption_key: raw.encryption_key.trim().to_string(),
                encryption_keys_old: raw.encryption_keys_old.trim().to_string(),
                hash_ids: parse_bool(raw.hash_ids.trim()).unwrap_or(false),
                hash_key: raw.hash_key.trim().to_string(),
                compression: parse_compression(raw.compression.trim()).unwrap_or(None),
                compression_threshold: parse_uint(raw.compression_threshold.trim(), MAX_DATA_LEN as u64)
                    .map_or(DEFAULT_COMPRESSION_THRESHOLD, |n| n as usize),
            },
            ..d
        }
    }

    /// The format of the session data, from `session.serialize_handler` (for optimistic merges).
    pub fn with_serializer(mut self, handler: &str) -> Self {
        self.format = Format::from_handler(handler.trim());
        self
    }
}

/// lock_expire = 0 means max_execution_time, and 30 s when that is 0 too. Never unbounded.
pub fn effective_lock_expire(lock_expire_s: u64, max_execution_time: i64) -> u64 {
    match (lock_expire_s, max_execution_time) {
        (0, m) if m > 0 => (m as u64).min(MAX_LOCK_EXPIRE_S),
        (0, _) => FALLBACK_LOCK_EXPIRE_S,
        (s, _) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let ok = [
            (LOCKING, "On"),
            (LOCKING, "0"),
            (LOCKING, "yes"),
            (LOCKING, ""),
            (LOCKING, "Optimistic"),
            (LOCK_WAIT_TIMEOUT, "0"),
            (LOCK_WAIT_TIMEOUT, " 250 "),
            (LOCK_WAIT_TIMEOUT, "3600000"),
            (LOCK_EXPIRE, "86400"),
            (LOCK_TIMEOUT_ACTION, "readonly"),
            (LOCK_TIMEOUT_ACTION, "FAIL"),
            (MERGE_CONFLICT, "First"),
            (USER_KEY, "uid"),
            (USER_KEY, ""),
            (TRACK_CLIENT, "Off"),
            (ENCRYPTION_KEY, ""),
            (ENCRYPTION_KEY, "/etc/php/session.key"),
            (ENCRYPTION_KEY, "env:SESSION_KEY"),
            (ENCRYPTION_KEYS_OLD, "/k1, env:OLD_KEY"),
            (HASH_IDS, "On"),
            (HASH_KEY, "env:H"),
            (COMPRESSION, "ZSTD"),
            (COMPRESSION, "lz4"),
            (COMPRESSION_THRESHOLD, "0"),
        ];
        for (k, v) in ok {
            assert_eq!(validate(k, v), Ok(()), "{k}={v}");
        }
        let bad = [
            (LOCKING, "maybe", "On/Off"),
            (LOCKING, "optimist", "optimistic"),
            (LOCK_WAIT_TIMEOUT, "-1", "0 to 3600000"),
            (LOCK_WAIT_TIMEOUT, "abc", "whole number"),
            (LOCK_WAIT_TIMEOUT, "3600001", "0 to 3600000"),
            (LOCK_WAIT_TIMEOUT, "1.5", "whole number"),
            (LOCK_WAIT_TIMEOUT, "99999999999999999999999", "whole number"),
            (LOCK_EXPIRE, "86401", "0 to 86400"),
            (LOCK_TIMEOUT_ACTION, "wait", "fail or readonly"),
            (LOCK_TIMEOUT_ACTION, "", "fail or readonly"),
            (MERGE_CONFLICT, "both", "last or first"),
            (USER_KEY, "a|b", "at most 127 letters"),
            (USER_KEY, "a\nb", "at most 127 letters"),
            (TRACK_CLIENT, "sometimes", "On/Off"),
            (ENCRYPTION_KEY, "0123456789abcdef0123456789abcdef", "env:NAME"),
            (ENCRYPTION_KEY, "relative.key", "absolute file path"),
            (ENCRYPTION_KEY, "env:A,/b", "encryption_keys_old"),
            (ENCRYPTION_KEYS_OLD, "/a, raw", "env:NAME"),
            (HASH_IDS, "sometimes", "On/Off"),
            (HASH_KEY, "env:", "env:NAME"),
            (COMPRESSION, "gzip", "off, zstd or lz4"),
            (COMPRESSION_THRESHOLD, "-1", "whole number"),
        ];
        for (k, v, want) in bad {
            let e = validate(k, v).unwrap_err();
            assert!(e.contains(k) && e.contains(want) && e.contains("previous value stays"), "{e}");
        }
    }

    #[test]
    fn errors_are_typed_and_worded_for_the_ini_and_the_class() {
        let e = check(LOCK_WAIT_TIMEOUT, "abc").unwrap_err();
        assert_eq!(
            e,
            SettingError { name: LOCK_WAIT_TIMEOUT.into(), value: "abc".into(), expected: "expected a whole number from 0 to 3600000".into() }
        );
        assert_eq!(
            e.to_string(),
            "invalid value \"abc\" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays"
        );
        // SessionProxy\Handler's options: the option's own name, no previous value (php/class.rs).
        assert_eq!(e.for_option("lock_wait_timeout"), "invalid value \"abc\" for option \"lock_wait_timeout\": expected a whole number from 0 to 3600000");
        let e = check(LOCKING, "a\nb").unwrap_err();
        assert!(e.to_string().contains("\"a\\nb\"") && !e.for_option("locking").contains('\n'), "{e}");
    }

    #[test]
    fn directive_table_matches_the_names_and_defaults() {
        let names: Vec<&str> = DIRECTIVES.iter().map(|d| d.name.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                LOCKING,
                LOCK_WAIT_TIMEOUT,
                LOCK_EXPIRE,
                LOCK_TIMEOUT_ACTION,
                MERGE_CONFLICT,
                USER_KEY,
                TRACK_CLIENT,
                MIGRATE_FROM,
                ENCRYPTION_KEY,
                ENCRYPTION_KEYS_OLD,
                HASH_IDS,
                HASH_KEY,
                COMPRESSION,
                COMPRESSION_THRESHOLD,
            ]
        );
        for d in DIRECTIVES {
            let (name, default) = (d.name.to_str().unwrap(), d.default.to_str().unwrap());
            assert_eq!(validate(name, default), Ok(()), "{name}");
        }
        // Each directive's default, looked up by its name, gives the default settings.
        let default_of = |name: &str| DIRECTIVES.iter().find(|d| d.name.to_str() == Ok(name)).unwrap().default.to_str().unwrap().to_string();
        assert_eq!(Settings::from_raw(&RawSettings::read(default_of, 0)), Settings::default());
    }

    #[test]
    fn lock_expire_is_never_unbounded() {
        assert_eq!(effective_lock_expire(5, 0), 5);
        assert_eq!(effective_lock_expire(5, 100), 5);
        assert_eq!(effective_lock_expire(0, 100), 100);
        assert_eq!(effective_lock_expire(0, 0), 30);
        assert_eq!(effective_lock_expire(0, -1), 30);
        assert_eq!(effective_lock_expire(0, i64::MAX), MAX_LOCK_EXPIRE_S);
    }

    #[test]
    fn from_raw() {
        let values = [
            (LOCKING, "off"),
            (LOCK_WAIT_TIMEOUT, "250"),
            (LOCK_EXPIRE, "0"),
            (LOCK_TIMEOUT_ACTION, "readonly"),
            (MERGE_CONFLICT, "first"),
            (USER_KEY, "uid"),
            (TRACK_CLIENT, "on"),
            (MIGRATE_FROM, " files:///old "),
        ];
        let raw = RawSettings::read(|name| values.iter().find(|(n, _)| *n == name).map_or("", |v| v.1).to_string(), 0);
        assert_eq!(raw.lock_wait_timeout, "250");
        let s = Settings::from_raw(&raw);
        assert_eq!(
            s,
            Settings {
                locking: Locking::Off,
                lock_wait: Duration::from_millis(250),
                lock_expire: Duration::from_secs(30),
                on_timeout: TimeoutAction::ReadOnly,
                merge_conflict: OnConflict::First,
                user_key: Some("uid".into()),
                track_client: true,
                migrate_from: Some("files:///old".into()),
                ..Settings::default()
            }
        );
        let garbage = RawSettings::read(|name| format!("garbage for {name}"), 0);
        // The old store's DSN is parsed by the skin at open (a bad one fails the open, naming the
        // directive); a key source is kept as given: opening fails on it, naming the directive,
        // rather than running without the encryption it asked for.
        let mut parsed = Settings::from_raw(&garbage);
        assert_eq!(parsed.migrate_from, Some(format!("garbage for {MIGRATE_FROM}")));
        assert_eq!(parsed.at_rest.encryption_key, "garbage for session_proxy.encryption_key");
        parsed.migrate_from = None;
        parsed.at_rest = AtRest { compression_threshold: DEFAULT_COMPRESSION_THRESHOLD, ..AtRest::default() };
        assert_eq!(parsed, Settings::default());
        let raw = RawSettings { lock_expire: "7".into(), ..garbage };
        assert_eq!(Settings::from_raw(&raw).lock_expire, Duration::from_secs(7));
        let raw = RawSettings { lock_expire: "0".into(), max_execution_time: 12, ..raw };
        assert_eq!(Settings::from_raw(&raw).lock_expire, Duration::from_secs(12));
        assert_eq!(Settings::default().with_serializer("php_binary").format, Some(Format::PhpBinary));
        assert_eq!(Settings::default().with_serializer("igbinary").format, None);
    }
}
