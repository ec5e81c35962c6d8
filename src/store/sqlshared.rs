//! What the SQL server engines (`pgsql`, `mysql`) share beyond their DSN options (`sqlopts`): the
//! version column's mapping, the test CA file read for `sslrootcert`, and how a contract write becomes
//! a step of their write procedures.

use super::{ErrorKind, Expect, Loaded, Result, StoreError, Version, Written};

/// A version as the engines' BIGINT column holds it.
pub fn version_of(v: i64) -> Version {
    Version::new(v as u64 as u128)
}

/// The BIGINT of a version read from this engine (None: not one of ours, no row can have it).
pub fn sql_version(v: Version) -> Option<i64> {
    u64::try_from(v.get()).ok().map(|u| u as i64)
}

/// The PEM certificate(s) of `sslrootcert`, checked: errors name the file (its path is the `at`).
pub fn read_root_cert(p: &std::path::Path) -> Result<(Vec<u8>, native_tls::Certificate)> {
    let pem = std::fs::read(p).map_err(|e| StoreError::io(p.display().to_string(), &e, format!("cannot read sslrootcert {}: {e}", p.display())))?;
    let cert = native_tls::Certificate::from_pem(&pem)
        .map_err(|e| StoreError::new(ErrorKind::Unavailable, p.display().to_string(), format!("sslrootcert {} is not a PEM certificate: {e}", p.display())))?;
    Ok((pem, cert))
}

/// What a write step does (the `op` argument of the write procedures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Whatever is there.
    Put = 0,
    /// Only when no live session is stored.
    Create = 1,
    /// Only at this version.
    AtVersion = 2,
    /// The timestamps only.
    Touch = 3,
    Destroy = 4,
    /// Under our lock, which read a session: only while a row exists (at any version), so that a
    /// session ended meanwhile (`Users::end`, whose lock a server-side advisory lock cannot take from
    /// its holder) is not brought back by the holder's late write.
    Update = 5,
}

/// The step and the version it expects for a contract write.
pub fn op_of(expect: Expect) -> (Op, i64) {
    match expect {
        Expect::Any | Expect::Held(None) => (Op::Put, 0),
        Expect::Held(Some(_)) => (Op::Update, 0),
        Expect::Absent => (Op::Create, 0),
        // A version that is not ours: no row can have it, refused with what is there.
        Expect::Version(v) => (Op::AtVersion, sql_version(v).unwrap_or(i64::MIN)),
    }
}

/// What a write step answered: applied, the new version, and (refused) what is stored now.
pub struct Step {
    pub ok: bool,
    pub version: Option<i64>,
    pub now: Option<Loaded>,
}

impl Step {
    /// The contract's answer (None: the lock was not ours).
    pub fn written(step: Option<Step>) -> Written {
        match step {
            None => Written::LockLost,
            Some(Step { ok: true, version: Some(v), .. }) => Written::Done(version_of(v)),
            Some(s) => Written::Conflict(s.now),
        }
    }
}

/// A stored row as data and version, when both are there.
pub fn loaded(data: Option<Vec<u8>>, version: Option<i64>) -> Option<Loaded> {
    match (data, version) {
        (Some(data), Some(v)) => Some(Loaded { data, version: version_of(v) }),
        _ => None,
    }
}

/// The prefix of a table's helper functions or procedures: `<table>_<tag>`, `<table>_<tag>s` over
/// Symfony's table.
pub fn fn_prefix(table: &str, schema: super::sqlopts::Schema, tag: &str) -> String {
    match schema {
        super::sqlopts::Schema::Native => format!("{table}_{tag}"),
        super::sqlopts::Schema::Symfony => format!("{table}_{tag}s"),
    }
}

/// The schema check's answer: Ok when nothing is `missing`, else the error naming it (`created`:
/// after create=auto made what it could).
pub fn schema_checked(at: &str, missing: Vec<String>, created: bool) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    let when = if created { "after creating the schema," } else { "create=never and" };
    Err(StoreError::new(
        ErrorKind::Unavailable,
        at,
        format!("{when} the database lacks {} (create it with the DDL in the README, or use create=auto)", missing.join(", ")),
    ))
}
