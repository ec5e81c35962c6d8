//! The hot path of standalone and Sentinel servers without Lua: WATCH at the read, a transaction
//! (MULTI … EXEC) at the write. A script call costs the server several times what its commands cost
//! (measured with `INFO commandstats` / `SLOWLOG` on Redis 7.0: ~14 µs for the lock script holding
//! one SET, ~30-50 µs for the commit script, against ~1-2 µs per plain command;
//! bench/results/redis-scripts-2026-12-01.md), so:
//! - locking on: the read sends `SET <lock> <token> NX PX <ms> GET` (the previous holder, nil when
//!   the lock was free), then `WATCH <lock>`, `GET <lock>` (ours after the WATCH: any later change
//!   of the lock, its expiry included, fails the EXEC), and the read (`read_cmds`), in one write;
//!   `PTTL <lock>` follows only when the lock is busy (for the wait). The write is
//!   `MULTI SET SET DEL LMOVE PEXPIRE PEXPIRETIME EXEC`, after a `PEXPIRE` of the user key unless
//!   the read found none (`known_unbound`).
//!   An EXEC refused (the lock was touched since: expired, broken) falls back to the COMMIT script,
//!   which checks the owner itself and answers LockLost.
//! - locking optimistic (`Event::OptimisticRead`): the read WATCHes the data and version keys, and
//!   a write expecting the version read is `MULTI SET SET PEXPIRETIME EXEC` — what locking Off
//!   sends. A refused EXEC means the session was touched since the read: it is read again (WATCHed
//!   again) and answered as a conflict with what is stored now; if it still is as read (a key that
//!   expired, a write of the same version), the transaction is tried again.
//!
//! The WATCH lives on the link, between two calls of the store, across the PHP code of a request:
//! - a WATCH counts only on the link it was sent on (`Conn::gen`), while nothing has cleared it
//!   (`exec_batch` forgets it at any EXEC, UNWATCH or DISCARD, or a new WATCH), for the session and
//!   the lock token or version it was sent for (`Watch`); otherwise the scripts decide as before;
//! - it never leaks into another write: a transaction sent on a link that may hold a WATCH
//!   (`Conn::watching`, never false while the server may hold one, errors included) is preceded by
//!   an UNWATCH in the same write (`exec_batch`), whichever request or step sends it;
//! - a transaction is never sent again (`Retry::Watched`): not after a lost link (it may have run),
//!   and not on the new master after a failover (the demoted master refused it, and a new link
//!   holds no WATCH): then the script decides.
//!
//! A Cluster keeps its scripts: redis-rs routes every command on its own and a MULTI names no key.

use std::time::Duration;

use redis::Value;

use super::{as_int, version, Acquire, Busy, Expect, Keys, Mode, RedisStore, Result, Retry, Touched, Version, Written};
use crate::id::SessionId;
use crate::lock::Token;

/// What a WATCH that the store sent covers.
pub(super) struct Watch {
    idx: usize,
    /// `Conn::gen` of the link it was sent on.
    gen: u64,
    id: SessionId,
    on: Watched,
}

#[derive(PartialEq, Eq)]
pub(super) enum Watched {
    /// The lock key, taken by this token.
    Lock(Token),
    /// The data and version keys, read at this version (None: absent).
    Read(Option<Version>),
}

/// How often a refused optimistic transaction is tried again while the session still is as read
/// (keys that expired meanwhile, a write that left the version as it was); then the script decides.
const SPURIOUS_TRIES: usize = 3;

impl RedisStore {
    /// Whether the WATCH of `on` on server `idx`'s current link still holds for `id`.
    fn watch_holds(&self, idx: usize, id: &SessionId, on: &Watched) -> bool {
        let c = &self.conns[idx];
        self.opts.mode != Mode::Cluster
            && c.conn.is_some()
            && c.watching
            && self.watch.as_ref().is_some_and(|w| w.idx == idx && w.gen == c.gen && &w.id == id && &w.on == on)
    }

    fn watched(&mut self, idx: usize, id: &SessionId, on: Watched) {
        self.watch = Some(Watch { idx, gen: self.conns[idx].gen, id: id.clone(), on });
    }

    /// `lock_and_load` of a standalone or Sentinel server: one round trip (two when the lock turns
    /// out to be ours already: a retry, a session_reset()).
    pub(super) fn lock_watched(&mut self, idx: usize, id: &SessionId, k: &Keys, owner: &Token, lock_ms: &[u8], user_ms: &[u8]) -> Result<Acquire> {
        let tok = owner.as_str().as_bytes();
        let cmds = super::read_cmds(k);
        let [a, b, c] = super::read_refs(&cmds);
        let batch: [&[&[u8]]; 7] = [
            &[b"GETEX", &k.user, b"PX", user_ms],
            &[b"SET", &k.lock, tok, b"NX", b"PX", lock_ms, b"GET"],
            &[b"WATCH", &k.lock],
            &[b"GET", &k.lock],
            a,
            b,
            c,
        ];
        // Safe to retry: a lock already holding our token is ours.
        let mut vals = self.exec_many(idx, Retry::Safe, &batch).map_err(|(e, _)| e)?;
        let read = self.loaded_from_pipeline(idx, &mut vals);
        let (holder, _watch, prev) = (vals.pop(), vals.pop(), vals.pop());
        self.saw_user(id, vals.pop());
        let bulk = |v: &Option<Value>| match v {
            Some(Value::BulkString(b)) => Some(b.clone()),
            _ => None,
        };
        let ours_now = bulk(&holder).as_deref() == Some(tok);
        match prev {
            Some(Value::Nil) => {
                if ours_now {
                    self.watched(idx, id, Watched::Lock(owner.clone()));
                }
                Ok(Acquire::Locked(read?))
            }
            Some(Value::BulkString(p)) if p == tok => {
                // Ours already: extend it, and WATCH it again after that change.
                let again: [&[&[u8]]; 3] = [&[b"PEXPIRE", &k.lock, lock_ms], &[b"WATCH", &k.lock], &[b"GET", &k.lock]];
                let v = self.exec_many(idx, Retry::Safe, &again).map_err(|(e, _)| e)?;
                if bulk(&v.into_iter().nth(2)).as_deref() == Some(tok) {
                    self.watched(idx, id, Watched::Lock(owner.clone()));
                }
                Ok(Acquire::Locked(read?))
            }
            Some(Value::BulkString(p)) => {
                // The holder's remaining life, for the wait: asked only now, so that a lock taken at
                // once costs the server no PTTL (a busy lock is waited for anyway).
                let pttl: i64 = self.simple(idx, &[b"PTTL", &k.lock])?;
                // phpredis' lock value is "host|pid".
                let foreign = p.contains(&b'|');
                let expires_in = match pttl {
                    // Released since: try again at once.
                    -2 => Some(Duration::ZERO),
                    // -1: a lock without an expiry (polled).
                    t => u64::try_from(t).ok().map(Duration::from_millis),
                };
                Ok(Acquire::Busy(Busy { expires_in, foreign }))
            }
            other => Err(self.unexpected(idx, &other, "the lock")),
        }
    }

    /// `load` for an optimistic request: the read WATCHes the data and version keys first.
    /// `with` goes before the read in the same write (its answers come first).
    pub(super) fn read_watched(&mut self, idx: usize, id: &SessionId, k: &Keys, with: &[&[&[u8]]]) -> Result<(Vec<Value>, Option<super::Loaded>)> {
        let cmds = super::read_cmds(k);
        let [a, b, c] = super::read_refs(&cmds);
        let watch: [&[u8]; 3] = [b"WATCH", &k.data, &k.ver];
        let mut batch: Vec<&[&[u8]]> = vec![&watch];
        batch.extend_from_slice(with);
        batch.extend_from_slice(&[a, b, c]);
        let mut vals = self.exec_many(idx, Retry::Safe, &batch).map_err(|(e, _)| e)?;
        let read = self.loaded_from_pipeline(idx, &mut vals)?;
        self.watched(idx, id, Watched::Read(read.as_ref().map(|l| l.version)));
        vals.remove(0);
        Ok((vals, read))
    }

    /// `save` in a transaction on what the read WATCHed, when that WATCH holds; None: the scripts
    /// decide (no such WATCH, or a lock whose transaction was refused).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn save_watched(
        &mut self,
        idx: usize,
        id: &SessionId,
        k: &Keys,
        data: &[u8],
        expect: Expect,
        owner: Option<&Token>,
        ttl: &[u8],
        wake_ms: &[u8],
        nonce: u64,
        keep_user: &[&[u8]],
    ) -> Result<Option<Written>> {
        let new = nonce.to_string();
        let set_data: &[&[u8]] = &[b"SET", &k.data, data, b"PX", ttl];
        let set_ver: &[&[u8]] = &[b"SET", &k.ver, new.as_bytes(), b"PX", ttl];
        let expiry: &[&[u8]] = &[b"PEXPIRETIME", &k.data];
        match (owner, expect) {
            (Some(t), Expect::Held(_) | Expect::Any) => {
                if !self.watch_holds(idx, id, &Watched::Lock(t.clone())) {
                    return Ok(None);
                }
                // The user key's refresh goes first, outside the transaction (it is not watched);
                // none when the lock's read found no user key.
                let skip = usize::from(self.known_unbound(id));
                let cmds: [&[&[u8]]; 9] = [
                    keep_user,
                    &[b"MULTI"],
                    set_data,
                    set_ver,
                    &[b"DEL", &k.lock],
                    &[b"LMOVE", &k.wait, &k.wake, b"LEFT", b"RIGHT"],
                    &[b"PEXPIRE", &k.wake, wake_ms],
                    expiry,
                    &[b"EXEC"],
                ];
                let Some(mut v) = self.watched_batch(idx, &cmds[skip..])? else { return Ok(None) };
                let v = v.pop();
                match v {
                    Some(Value::Array(items)) if items.len() == 6 => match as_int(&items[5]) {
                        Some(t) => Ok(Some(Written::Done(version(nonce, t)))),
                        None => Err(self.unexpected(idx, &items, "a write")),
                    },
                    // The lock changed since it was taken: the script says how.
                    Some(Value::Nil) => Ok(None),
                    other => Err(self.unexpected(idx, &other, "a write")),
                }
            }
            (None, Expect::Absent | Expect::Version(_)) => {
                let expected = match expect {
                    Expect::Version(v) => Some(v),
                    _ => None,
                };
                for _ in 0..SPURIOUS_TRIES {
                    if !self.watch_holds(idx, id, &Watched::Read(expected)) {
                        return Ok(None);
                    }
                    let cmds: [&[&[u8]]; 6] = [keep_user, &[b"MULTI"], set_data, set_ver, expiry, &[b"EXEC"]];
                    let Some(mut v) = self.watched_batch(idx, &cmds)? else { return Ok(None) };
                let v = v.pop();
                    match v {
                        Some(Value::Array(items)) if items.len() == 3 => {
                            return match as_int(&items[2]) {
                                Some(t) => Ok(Some(Written::Done(version(nonce, t)))),
                                None => Err(self.unexpected(idx, &items, "a write")),
                            }
                        }
                        Some(Value::Nil) => {
                            // Touched since the read: what is there now (WATCHed for the next try).
                            let (_, now) = self.read_watched(idx, id, k, &[])?;
                            if now.as_ref().map(|l| l.version) != expected {
                                return Ok(Some(Written::Conflict(now)));
                            }
                        }
                        other => return Err(self.unexpected(idx, &other, "a write")),
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Sends a transaction on a WATCH (`exec_batch`, never retried). None: a master demoted by a
    /// failover refused it, nothing ran (the WATCH went with the link): the scripts decide.
    fn watched_batch(&mut self, idx: usize, cmds: &[&[&[u8]]]) -> Result<Option<Vec<Value>>> {
        self.demoted = false;
        match self.exec_batch(idx, Retry::Watched, cmds, true) {
            Ok(v) => Ok(Some(v)),
            Err(_) if std::mem::take(&mut self.demoted) => Ok(None),
            Err((e, _)) => Err(e),
        }
    }

    /// `touch` under our lock in a transaction, when the lock's WATCH holds; None: the script decides.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn touch_watched(&mut self, idx: usize, id: &SessionId, k: &Keys, owner: &Token, ttl: &[u8], wake_ms: &[u8], user_ms: &[u8]) -> Result<Option<Touched>> {
        if !self.watch_holds(idx, id, &Watched::Lock(owner.clone())) {
            return Ok(None);
        }
        let skip = usize::from(self.known_unbound(id));
        let cmds: [&[&[u8]]; 8] = [
            &[b"PEXPIRE", &k.user, user_ms],
            &[b"MULTI"],
            &[b"PEXPIRE", &k.data, ttl],
            &[b"PEXPIRE", &k.ver, ttl],
            &[b"DEL", &k.lock],
            &[b"LMOVE", &k.wait, &k.wake, b"LEFT", b"RIGHT"],
            &[b"PEXPIRE", &k.wake, wake_ms],
            &[b"EXEC"],
        ];
        let Some(mut v) = self.watched_batch(idx, &cmds[skip..])? else { return Ok(None) };
        match v.pop() {
            Some(Value::Array(items)) if items.len() == 5 => Ok(Some(Touched::Done)),
            Some(Value::Nil) => Ok(None),
            other => Err(self.unexpected(idx, &other, "a touch")),
        }
    }
}
