//! `session-proxy check DSN`: connect, write, read, lock, delete a probe session, each timed; on a
//! failure, what is wrong in one word (DNS, refused, timeout, auth, TLS, permissions, schema, …) and
//! the engine's account (hosts and paths only, no password).

use std::time::{Duration, Instant};

use session_proxy::id::SessionId;
use session_proxy::lock::Token;
use session_proxy::store::{self, Acquire, ErrorKind, Expect, Expiry, StoreError, Written};

use super::{parse, Failure};

/// What is wrong, from the error's kind and, within a kind, the cause the engine reported.
pub fn diagnose(e: &StoreError) -> &'static str {
    let d = e.detail().to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| d.contains(w));
    if has(&["failed to lookup address", "name or service not known", "no address associated", "temporary failure in name resolution", "nodename nor servname", "could not resolve"]) {
        return "DNS: the host name does not resolve";
    }
    if has(&["noauth", "wrongpass", "invalid password", "invalid username-password", "authentication", "auth failed", "-auth"]) {
        return "auth: the server refused the credentials (or wants some)";
    }
    if has(&["tls", "ssl", "certificate", "handshake", "x509"]) {
        return "TLS: the secure connection failed (certificate, CA or a server that does not speak TLS)";
    }
    if has(&["permission denied", "read-only", "readonly", "operation not permitted", "not ours", "owned by", "gives access beyond", "chmod"]) {
        return "permissions: the path cannot be used by this user";
    }
    if has(&["no such table", "no such column", "not a database", "schema", "malformed"]) {
        return "schema: the database is not one session_proxy can use";
    }
    if has(&["connection refused"]) {
        return "refused: nothing listens at that address";
    }
    if has(&["connection reset", "broken pipe", "unexpected end of file", "eof"]) {
        return "reset: the server closed the connection (does it want TLS, or is it another kind of server?)";
    }
    match e.kind() {
        ErrorKind::Timeout => "timeout: no answer within the configured timeout",
        ErrorKind::Unavailable if has(&["no such file", "does not exist", "not a directory"]) => "path: the path does not exist",
        ErrorKind::Unavailable => "unreachable: the host, socket or path cannot be used",
        ErrorKind::TooLarge => "too large: the store refused the probe's size",
        ErrorKind::Corrupt => "corrupt: the store answered something malformed",
        _ => "the store reported an error",
    }
}

struct Step {
    name: &'static str,
    took: Duration,
    error: Option<String>,
}

pub fn run(dsn: &str, json: bool) -> Result<(), Failure> {
    let engine = parse("DSN", dsn)?;
    let mut steps: Vec<Step> = Vec::new();
    let mut cause = None;
    let mut step = |name, f: &mut dyn FnMut() -> Result<(), StoreError>| {
        let t = Instant::now();
        let r = f();
        let took = t.elapsed();
        let ok = r.is_ok();
        if let Err(e) = &r {
            cause.get_or_insert_with(|| (diagnose(e), e.to_string()));
        }
        steps.push(Step { name, took, error: r.err().map(|e| e.to_string()) });
        ok
    };
    let token = Token::new();
    let id = SessionId::parse(format!("spcheck{}", &token.as_str()[..32]).as_bytes()).expect("hex");
    let life = Expiry::new(Duration::from_secs(60));
    let probe = b"session_proxy|s:5:\"check\";";
    let mut store = None;
    let opened = step("connect", &mut || {
        store = Some(store::connect(&engine)?);
        Ok(())
    });
    if let (true, Some(s)) = (opened, store.as_mut()) {
        let at = s.describe();
        let bad = |what: String| StoreError::new(ErrorKind::Corrupt, at.clone(), what);
        let wrote = step("write", &mut || match s.save(&id, probe, Expect::Absent, None, life)? {
            Written::Done(_) => Ok(()),
            w => Err(bad(format!("the probe's write was refused: {w:?}"))),
        });
        if wrote {
            step("read", &mut || match s.load(&id, life)? {
                Some(l) if l.data == probe => Ok(()),
                other => Err(bad(format!("the probe read back as {:?}", other.map(|l| String::from_utf8_lossy(&l.data).into_owned())))),
            });
            step("lock", &mut || match s.lock_and_load(&id, &token, Duration::from_secs(10), life)? {
                Acquire::Locked(_) => s.unlock(&id, &token),
                Acquire::Busy(_) => Err(bad("the probe's lock was busy".into())),
            });
            step("delete", &mut || {
                s.destroy(&id, None)?;
                match s.exists(&id, life)? {
                    false => Ok(()),
                    true => Err(bad("the probe is still there after its delete".into())),
                }
            });
        }
    }
    let masked = session_proxy::dsn::mask_secrets(dsn);
    if json {
        let rows: Vec<_> = steps
            .iter()
            .map(|s| serde_json::json!({"step": s.name, "ms": (s.took.as_secs_f64() * 1e5).round() / 100.0, "error": s.error}))
            .collect();
        println!("{}", serde_json::json!({"dsn": masked, "ok": cause.is_none(), "steps": rows, "problem": cause.as_ref().map(|c| c.0)}));
    } else {
        println!("{masked}");
        for s in &steps {
            println!("  {:<8} {:>9.2} ms  {}", s.name, s.took.as_secs_f64() * 1000.0, s.error.as_deref().unwrap_or("ok"));
        }
    }
    match cause {
        None => Ok(()),
        Some((what, detail)) => Err(Failure::store(format!("{what}: {detail}"))),
    }
}
