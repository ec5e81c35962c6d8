//! Stores kept open across requests in one worker process, keyed by their engine (the parsed DSN) and
//! the layers over it.
//!
//! php-fpm forks its workers after MINIT; a connection must never be used on both sides of a fork.
//! The pool remembers the pid that filled it and, in a child, never reuses what it inherited:
//! - a network connection is abandoned (leaked, never closed): closing it could send the server a
//!   goodbye on the socket the parent still uses (PostgreSQL's Terminate, MySQL's COM_QUIT);
//! - SQLite databases are closed, before the child opens any of its own (`take`). SQLite keeps one
//!   record per file and process of the locks it holds, and a child inherits its parent's, though
//!   not the parent's kernel locks: a connection the child opened beside an inherited one took none
//!   in the kernel (the record said they were held). Once the parent had exited, the next program
//!   to close the database took itself for its last user and deleted its `-wal` and `-shm`, and the
//!   child's later commits went into a deleted file (`sqlite_fork_parent_exits.phpt`). Closing
//!   takes none of the parent's locks with it: POSIX locks are the process's own, and the lock
//!   file's OFD locks stay while the parent holds its descriptor.

use parking_lot::Mutex;

use crate::store::layer::Stack;
use crate::store::{self, Store};

/// Idle stores kept per DSN (more than one only under ZTS, one per concurrent request).
const MAX_IDLE: usize = 8;

/// DSNs (stacks: DSN and layers) whose idle stores a worker keeps: the most recently used. Each idle
/// store holds a server connection or open files, so without a bound a worker that serves many DSNs
/// (a save_path per site or per tenant) kept one for every DSN it ever served, until the server's
/// connection limit or the process's file limit ran out (seen: 196 idle PostgreSQL connections from
/// the test suite's 10 workers, and "remaining connection slots are reserved" for everyone else).
pub const MAX_STACKS: usize = 8;

struct Pool {
    pid: u32,
    /// A list, not a map: a worker keeps one or two stacks, and comparing a stack costs far less
    /// than SipHash over its strings did on every take and give (callgrind). Least recently given
    /// first; at most MAX_STACKS.
    idle: Vec<(Stack, Vec<Box<dyn Store>>)>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// Pools inherited across a fork: never closed (see above), but kept referenced, so that leak
/// checkers (valgrind) see them as still reachable rather than as lost memory.
static ABANDONED: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

fn with_pool<T>(f: impl FnOnce(&mut Pool) -> T) -> T {
    let mut guard = POOL.lock();
    let pid = crate::lock::pid();
    let mut closing = Vec::new();
    if guard.as_ref().is_some_and(|p| p.pid != pid) {
        if let Some(mut inherited) = guard.take() {
            for (stack, stores) in &mut inherited.idle {
                if local_only(stack) {
                    closing.append(stores);
                }
            }
            ABANDONED.lock().push(inherited);
        }
    }
    let r = f(guard.get_or_insert_with(|| Pool { pid, idle: Vec::new() }));
    drop(guard);
    drop(closing);
    r
}

/// A stack of local files only (a SQLite database, maybe migrating from another or from a files
/// directory), which a forked child closes rather than abandons (see the module's comment).
fn local_only(stack: &Stack) -> bool {
    use crate::dsn::Engine;
    matches!(stack.engine, Engine::Sqlite(_))
        && stack.layers.migrate_from.as_deref().is_none_or(|old| matches!(old, Engine::Sqlite(_) | Engine::Files(_)))
}

/// An idle store for `stack`, or a new connection.
pub fn take(stack: &Stack) -> store::Result<Box<dyn Store>> {
    while let Some(mut s) = with_pool(|p| p.idle_store(stack)) {
        if s.still_valid() {
            return Ok(s);
        }
    }
    store::open(stack)
}

/// Returns a store after a request; stores that saw errors are closed instead.
pub fn give(stack: &Stack, s: Box<dyn Store>) {
    if !s.reusable() {
        return;
    }
    // Closed after the pool's lock is released (a Memcached store reads its last answers first).
    let closing = with_pool(|p| p.keep(stack, s));
    drop(closing);
}

impl Pool {
    /// An idle store of `stack`'s, if one is kept.
    fn idle_store(&mut self, stack: &Stack) -> Option<Box<dyn Store>> {
        self.idle.iter_mut().find(|(k, _)| k == stack).and_then(|(_, v)| v.pop())
    }

    /// Keeps `s` idle for `stack`, which becomes the most recently used; returns the stores to close:
    /// `s` when `stack` has MAX_IDLE already, and those of the least recently used stack beyond
    /// MAX_STACKS.
    fn keep(&mut self, stack: &Stack, s: Box<dyn Store>) -> Vec<Box<dyn Store>> {
        match self.idle.iter().position(|(k, _)| k == stack) {
            Some(i) => self.idle[i..].rotate_left(1),
            None => self.idle.push((stack.clone(), Vec::new())),
        }
        let mut closing = if self.idle.len() > MAX_STACKS { self.idle.remove(0).1 } else { Vec::new() };
        let v = &mut self.idle.last_mut().expect("just pushed or moved last").1;
        if v.len() < MAX_IDLE {
            v.push(s);
        } else {
            closing.push(s);
        }
        closing
    }
}

/// At the process's end (MSHUTDOWN): closes this process's idle Memcached stores, each of which first
/// reads the answers to the releases it sent without waiting (`Drop for MemcachedStore`). The other
/// stores are left to the process's exit, as before: closing SQLite's last connection would
/// checkpoint and delete the `-wal`/`-shm` files, which a read-only directory cannot make again.
/// Stores inherited across a fork stay abandoned.
pub fn close_memcached() {
    let closing: Vec<Box<dyn Store>> = {
        let mut guard = POOL.lock();
        match guard.as_mut() {
            Some(p) if p.pid == crate::lock::pid() => p
                .idle
                .iter_mut()
                .filter(|(k, _)| matches!(k.engine, crate::dsn::Engine::Memcached(_)))
                .flat_map(|(_, v)| std::mem::take(v))
                .collect(),
            _ => Vec::new(),
        }
    };
    drop(closing);
}

/// Number of idle stores, for phpinfo.
pub fn idle_count() -> usize {
    with_pool(|p| p.idle.iter().map(|(_, v)| v.len()).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsn::{Engine, SqliteOptions};
    use crate::id::SessionId;
    use crate::store::{Expect, Expiry, Written};
    use crate::store::tests::TempDir;
    use std::time::Duration;

    /// A pooled MySQL connection that the server killed while idle is replaced, not failed.
    #[test]
    fn a_mysql_connection_the_server_closed_is_replaced() {
        crate::store::mysql::tests::pooled_connection_killed(|o| {
            let stack = Stack::bare(Engine::Mysql(o));
            let again = stack.clone();
            (move || take(&stack), move |s| give(&again, s))
        });
    }

    fn sqlite_stack(path: std::path::PathBuf) -> Stack {
        Stack::bare(Engine::Sqlite(SqliteOptions { path, busy_timeout: Duration::from_secs(5), synchronous_full: false, private_dir: false }))
    }

    /// A worker that serves more DSNs than MAX_STACKS keeps the most recently used ones' stores and
    /// closes the others' (their files are no longer open), instead of one per DSN it ever served.
    /// On a pool of its own: the process's pool is shared with the tests running alongside.
    #[test]
    fn keeps_the_stores_of_the_most_recently_used_dsns_only() {
        let dir = TempDir::new("pool-bound");
        let stacks: Vec<Stack> = (0..MAX_STACKS + 3).map(|i| sqlite_stack(dir.path().join(format!("d{i}.sqlite")))).collect();
        let mut pool = Pool { pid: crate::lock::pid(), idle: Vec::new() };
        let cycle = |pool: &mut Pool, t: &Stack| {
            let st = match pool.idle_store(t) {
                Some(st) => st,
                None => crate::store::open(t).unwrap(),
            };
            drop(pool.keep(t, st));
        };
        let open_dbs = || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|t| t.starts_with(dir.path()) && t.extension().is_some_and(|x| x == "sqlite"))
                .count()
        };
        // The first one is used again after each of the others: it stays among the most recent.
        for s in &stacks {
            cycle(&mut pool, s);
            cycle(&mut pool, &stacks[0]);
        }
        let kept = |pool: &Pool| -> Vec<usize> {
            (0..stacks.len()).filter(|&i| pool.idle.iter().any(|(k, v)| k == &stacks[i] && v.len() == 1)).collect()
        };
        let newest: Vec<usize> = std::iter::once(0).chain(stacks.len() - (MAX_STACKS - 1)..stacks.len()).collect();
        assert_eq!(kept(&pool), newest, "the {MAX_STACKS} most recently used DSNs are kept");
        assert_eq!(pool.idle.len(), MAX_STACKS);
        assert_eq!(open_dbs(), MAX_STACKS, "the evicted stores' databases are closed");
        // An evicted DSN connects again; the least recently used one (not the first) makes room.
        cycle(&mut pool, &stacks[1]);
        assert!(kept(&pool).contains(&1) && kept(&pool).contains(&0));
        assert_eq!(kept(&pool).len(), MAX_STACKS);
        assert_eq!(open_dbs(), MAX_STACKS);
    }

    #[test]
    fn reuses_connections_and_reconnects_when_the_file_is_gone() {
        let dir = TempDir::new("pool-reconnect");
        let path = dir.path().join("p.sqlite");
        let engine = Stack::bare(Engine::Sqlite(SqliteOptions {
            path: path.clone(),
            busy_timeout: Duration::from_secs(5),
            synchronous_full: false,
            private_dir: false,
        }));
        let id = SessionId::parse(b"pooled").unwrap();
        let life = Expiry::new(Duration::from_secs(60));
        let put = |s: &mut Box<dyn Store>, d: &[u8]| {
            assert!(matches!(s.save(&id, d, Expect::Any, None, life).unwrap(), Written::Done(_)));
        };

        let mut s = take(&engine).unwrap();
        put(&mut s, b"one");
        give(&engine, s);
        let idle = || with_pool(|p| p.idle.iter().find(|(k, _)| k == &engine).map_or(0, |(_, v)| v.len()));
        assert_eq!(idle(), 1);
        let mut s = take(&engine).unwrap();
        assert_eq!(idle(), 0, "the idle connection is reused");
        give(&engine, s);

        // The database is removed between requests: the pooled handle must not write into the
        // orphaned file; the next request gets a fresh database at the configured path.
        std::fs::remove_file(&path).unwrap();
        s = take(&engine).unwrap();
        assert_eq!(s.load(&id, life).unwrap(), None);
        put(&mut s, b"two");
        give(&engine, s);
        assert!(path.exists());
        let mut check = crate::store::open(&engine).unwrap();
        assert_eq!(check.load(&id, life).unwrap().map(|l| l.data).as_deref(), Some(&b"two"[..]));
    }
}
