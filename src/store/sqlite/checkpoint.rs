//! Checkpoints off the request's path: a thread of this process copies the log into the database.
//!
//! A checkpoint syncs the log and the database (with `synchronous=NORMAL` they are the only syncs
//! there are), so the commit whose hook ran it waited for both: through php-fpm that set the p99
//! of new sessions (7.2 ms, against 5.2–5.5 ms with no syncs at all, `synchronous=OFF`). Now a
//! commit that finds the log past `CHECKPOINT_FRAMES` only wakes its process's checkpointer, which
//! checkpoints on a connection of its own, as SQLite's documentation suggests ("in a separate
//! thread"): the p99 is 5.4 ms (`bench/results/fpm-sqlite-checkpoint-thread-2026-12-04.txt`).
//! What is committed and how durable it is do not change, only who waits for the syncs.
//!
//! One checkpointer per database file and process, its thread started at the first commit that
//! asks, so in a php-fpm worker and never in the master that forks them. A commit checkpoints
//! inline, as before, when there is no checkpointer for it: in a forked child for its parent's
//! (whose thread did not follow it), after MSHUTDOWN, past `MAX_THREADS` databases, for a file that
//! was replaced, or when the thread could not start or open the database.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use super::{busy_backoff, checkpoint_due, Patience, CHECKPOINT_WAIT, WAL_LIMIT_BYTES};

/// Databases per process whose checkpoints a thread runs; the commits of any further ones
/// checkpoint inline (a worker that serves many `save_path`s keeps a bounded number of threads).
/// The test process writes hundreds of databases past CHECKPOINT_FRAMES, in any order.
const MAX_THREADS: usize = if cfg!(test) { 1024 } else { 8 };

/// The checkpointer of one database in this process.
pub(super) struct Checkpointer {
    pid: u32,
    path: PathBuf,
    /// (device, inode) of the database the stores opened: a file put in its place gets another.
    identity: (u64, u64),
    synchronous_full: bool,
    /// Its thread was started and not ended (counted against MAX_THREADS without taking `state`).
    started: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
    /// The thread's connection, used and taken only under `IN_SQLITE`: so never held at a fork, and
    /// a forked child closes its parent's (`close_inherited`).
    conn: parking_lot::Mutex<Option<Connection>>,
}

#[derive(Default)]
struct State {
    /// The log's size at the latest commit that asked for a checkpoint, until the thread takes it.
    due: Option<i32>,
    /// The thread is checkpointing (it looks at `due` again before it waits).
    busy: bool,
    /// The log's size when its last checkpoint gave up (`checkpoint_due`).
    failed_at: Option<i32>,
    thread: Option<JoinHandle<()>>,
    /// The thread is gone or will not start (MSHUTDOWN, spawn or open failed): commits checkpoint inline.
    ended: bool,
    /// Checkpoints the thread completed (for the tests).
    done: u64,
}

/// This process's checkpointers (a forked child finds its parent's here, and ignores them).
static ALL: parking_lot::Mutex<Vec<Arc<Checkpointer>>> = parking_lot::Mutex::new(Vec::new());

/// `ALL`, which a fork never copies while another thread holds it (`guard_forks`).
fn all() -> parking_lot::MutexGuard<'static, Vec<Arc<Checkpointer>>> {
    guard_forks();
    ALL.lock()
}

/// Held by a checkpointer thread while it is inside SQLite (opening, checkpointing), and by a
/// fork (`guard_forks`): a child must not be made while the thread holds one of SQLite's own
/// mutexes (its file and lock tables), which the child's connections would then wait on forever.
/// A fork waits for a checkpoint under way.
static IN_SQLITE: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn in_sqlite() -> parking_lot::MutexGuard<'static, ()> {
    guard_forks();
    IN_SQLITE.lock()
}

/// Registers, once, `pthread_atfork` handlers that take `IN_SQLITE` and then `ALL` for a fork and
/// give both back on both sides, so a child always finds them free. (Nothing waits for
/// `IN_SQLITE` while holding `ALL`.)
fn guard_forks() {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    extern "C" fn prepare() {
        std::mem::forget(IN_SQLITE.lock());
        std::mem::forget(ALL.lock());
    }
    extern "C" fn after() {
        // SAFETY: `prepare` took both in this thread, and their guards were forgotten.
        unsafe {
            ALL.force_unlock();
            IN_SQLITE.force_unlock();
        }
    }
    AT_FORK.call_once(|| {
        // SAFETY: registers handlers that only take and give back locks; glibc drops them when
        // the extension is unloaded.
        unsafe { libc::pthread_atfork(Some(prepare), Some(after), Some(after)) };
    });
}

/// Takes this process's parent's entries out of `all` (a forked child's inheritance). They are
/// never used: a lock their thread held at the fork stays held in the child.
fn inherited(all: &mut Vec<Arc<Checkpointer>>) -> Vec<Arc<Checkpointer>> {
    let pid = crate::lock::pid();
    let (mine, theirs) = std::mem::take(all).into_iter().partition(|c| c.pid == pid);
    *all = mine;
    theirs
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Checkpointer {
    /// The checkpointer for the database at `path`, the file `identity`, in this process; its
    /// thread starts at its first request. One for a file that was at `path` before is ended (its
    /// connection reaches only the old file).
    pub(super) fn for_database(path: &Path, identity: (u64, u64), synchronous_full: bool) -> Arc<Checkpointer> {
        let pid = crate::lock::pid();
        let mut all = all();
        // Their memory is left to the process (`close_inherited` closes their connections first).
        std::mem::forget(inherited(&mut all));
        if let Some(c) = all.iter().find(|c| c.path == path && c.identity == identity && c.synchronous_full == synchronous_full) {
            return c.clone();
        }
        for old in all.iter().filter(|c| c.path == path && c.identity != identity) {
            old.retire();
        }
        let c = Arc::new(Checkpointer {
            pid,
            path: path.to_path_buf(),
            identity,
            synchronous_full,
            started: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            conn: parking_lot::Mutex::new(None),
        });
        all.push(c.clone());
        c
    }

    /// Asks for a checkpoint of a log of `frames` frames; false when the caller must run it itself.
    pub(super) fn request(self: &Arc<Self>, frames: i32) -> bool {
        if self.pid != crate::lock::pid() {
            return false;
        }
        let mut s = lock(&self.state);
        if s.ended {
            return false;
        }
        if s.thread.is_none() {
            // Counted with `state` let go: `ALL` is never waited for while holding a `state`.
            drop(s);
            let started = all().iter().filter(|c| c.pid == self.pid && c.started.load(Ordering::Relaxed)).count();
            s = lock(&self.state);
            if s.ended {
                return false;
            }
            if s.thread.is_none() {
                if started >= MAX_THREADS {
                    s.ended = true;
                    return false;
                }
                // Before the thread runs: one that can not open the database clears it again.
                self.started.store(true, Ordering::Relaxed);
                let me = self.clone();
                match std::thread::Builder::new().name("sp-checkpoint".into()).spawn(move || me.run()) {
                    Ok(t) => s.thread = Some(t),
                    Err(_) => {
                        self.started.store(false, Ordering::Relaxed);
                        s.ended = true;
                        return false;
                    }
                }
            }
        }
        // After the thread's checkpoint gave up (a long reader, or writers that left it no gap: a
        // tight loop of this very process), the commits wait for the log to grow CHECKPOINT_FRAMES
        // more, and the one that finds it so checkpoints itself, between its own writes, as before
        // the thread; a log restarted since (by that commit, `restarted`, or smaller than then: by
        // another process) goes back to the thread.
        match s.failed_at {
            Some(at) if frames < at => s.failed_at = None,
            Some(_) if checkpoint_due(frames, s.failed_at) => return false,
            Some(_) => return true,
            None => {}
        }
        // Commits that find the thread at work or already woken leave it be: no wake-up each.
        let asleep = s.due.is_none() && !s.busy;
        s.due = Some(frames);
        drop(s);
        if asleep {
            self.wake.notify_one();
        }
        true
    }

    /// A commit's own checkpoint restarted the log: the next ones go to the thread again.
    pub(super) fn restarted(&self) {
        if self.pid == crate::lock::pid() {
            lock(&self.state).failed_at = None;
        }
    }

    fn run(&self) {
        let opened = {
            let _g = in_sqlite();
            match open(&self.path, self.synchronous_full) {
                // The file it opened is the stores' (not one put in its place since).
                Ok(c) if super::file_identity(&self.path) == Some(self.identity) => {
                    *self.conn.lock() = Some(c);
                    true
                }
                Ok(c) => {
                    std::mem::forget(c);
                    false
                }
                Err(_) => false,
            }
        };
        if !opened {
            self.retire();
            return;
        }
        let mut s = lock(&self.state);
        loop {
            // A checkpoint asked for is run even when the thread is ended (at MSHUTDOWN, which
            // waits for it): the process's last commits leave the log copied.
            let Some(frames) = s.due.take() else {
                if s.ended {
                    break;
                }
                s = self.wake.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            // Asked for before the last checkpoint gave up, with the log not grown enough since.
            if !checkpoint_due(frames, s.failed_at) {
                continue;
            }
            s.busy = true;
            drop(s);
            let done = {
                let _g = in_sqlite();
                self.conn.lock().as_ref().is_some_and(checkpoint)
            };
            s = lock(&self.state);
            s.busy = false;
            s.failed_at = (!done).then_some(frames);
            if done {
                s.done += 1;
                // Commits that asked while it ran counted the log it restarted.
                s.due = None;
            }
        }
        drop(s);
        // Not closed: closing the last connection to a database checkpoints it and deletes its
        // `-wal` and `-shm`, which a directory we may not write to can not give back (see
        // `pool::close_memcached`). The process is ending.
        let _g = in_sqlite();
        std::mem::forget(self.conn.lock().take());
    }

    /// Ends its thread without waiting for it; commits checkpoint inline from then on.
    fn retire(&self) -> Option<JoinHandle<()>> {
        let thread = {
            let mut s = lock(&self.state);
            s.ended = true;
            s.thread.take()
        };
        self.started.store(false, Ordering::Relaxed);
        self.wake.notify_one();
        thread
    }

    /// Ends its thread and waits for it (a checkpoint asked for is finished first). Called by
    /// PHP's thread, never by the checkpointer's own (which only retires).
    pub(super) fn end(&self) {
        if let Some(t) = self.retire() {
            let _ = t.join();
        }
    }

    /// Checkpoints the thread completed.
    #[cfg(test)]
    pub(super) fn completed(&self) -> u64 {
        lock(&self.state).done
    }

    /// Whether its thread is inside a checkpoint now (holding `IN_SQLITE`, which only the thread
    /// and a fork take).
    #[cfg(test)]
    pub(super) fn checkpointing(&self) -> bool {
        lock(&self.state).busy && IN_SQLITE.is_locked()
    }

    /// Whether this process's thread for it runs.
    #[cfg(test)]
    pub(super) fn running(&self) -> bool {
        let s = lock(&self.state);
        !s.ended && s.thread.is_some()
    }
}

/// The checkpointer's own connection: the database as the store opened it, never created.
fn open(path: &Path, synchronous_full: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_handler(Some(busy_backoff(Patience::new(CHECKPOINT_WAIT))))?;
    // A checkpoint syncs as its connection's `synchronous` says: the store's.
    conn.execute_batch(if synchronous_full { "PRAGMA synchronous=FULL" } else { "PRAGMA synchronous=NORMAL" })?;
    conn.execute_batch(&format!("PRAGMA journal_size_limit={WAL_LIMIT_BYTES}"))?;
    Ok(conn)
}

/// A PASSIVE pass first copies the log without holding writers back (it gives up at once when
/// another connection checkpoints); the RESTART then holds them only for what was committed
/// meanwhile, the syncs and the restart. Whether both completed.
pub(super) fn checkpoint(conn: &Connection) -> bool {
    let pass = |mode: &str| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(0)).is_ok_and(|busy| busy == 0)
    };
    pass("PASSIVE") && pass("RESTART")
}

/// This process's checkpointer threads that run (for phpinfo).
pub fn threads() -> usize {
    let pid = crate::lock::pid();
    all().iter().filter(|c| c.pid == pid && c.started.load(Ordering::Relaxed)).count()
}

/// How phpinfo describes the checkpoints.
pub fn describe() -> String {
    format!(
        "at {} WAL frames, on a thread per database and process (sp-checkpoint, at most {MAX_THREADS}); running in this process: {}",
        super::CHECKPOINT_FRAMES,
        threads()
    )
}

/// In a forked child, before it opens a database: closes the connections of its parent's
/// checkpointers (whose threads did not follow it), and forgets them. SQLite keeps one record per
/// file and process of the locks it holds; while a parent's connection stays open in it, the
/// child's own connections to that file take no locks in the kernel (see `crate::pool`).
pub(super) fn close_inherited() {
    let theirs = inherited(&mut all());
    if theirs.is_empty() {
        return;
    }
    let _g = in_sqlite();
    for c in theirs {
        // Free at the fork (taken only under IN_SQLITE, which the fork holds).
        if let Some(mut conn) = c.conn.try_lock() {
            drop(conn.take());
        }
        // A parent's lock held at the fork stays held here: its memory is left to the process.
        std::mem::forget(c);
    }
}

/// At MSHUTDOWN: ends this process's checkpointer threads and waits for them (a checkpoint under
/// way finishes), before PHP unloads the code they run. Later commits checkpoint inline.
pub fn stop_all() {
    let pid = crate::lock::pid();
    let mine: Vec<Arc<Checkpointer>> = all().iter().filter(|c| c.pid == pid).cloned().collect();
    for c in mine {
        c.end();
    }
}
