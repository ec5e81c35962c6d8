//! Locks held in the kernel, and waiting for their release with a deadline.
//!
//! The local engines hold kernel locks: the files engine `flock`s the session file (as PHP's handler
//! does), and the SQLite engine holds an open-file-description (OFD) byte-range lock on a lock file
//! for as long as it holds a session's lock row. The kernel frees both when the holder's process dies,
//! and wakes blocked waiters the moment a lock is released. Neither `flock(LOCK_EX)` nor `F_OFD_SETLKW`
//! takes a timeout, so a waiter blocks in a helper thread of its own, on a descriptor of its own, and
//! the request waits for that thread's word or its deadline, whichever comes first. The thread drops
//! the lock as soon as it has it: it only tells that the holder let go. A thread whose waiter gave up
//! stays blocked until the lock is released, then ends; a process keeps at most one such thread per
//! lock, shared by every wait for it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// Which kernel lock a wait is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `flock` on the whole file.
    Flock,
    /// An exclusive OFD lock on the one byte at this offset.
    Byte(u64),
}

fn ofd(f: &File, cmd: libc::c_int, kind: libc::c_int, at: u64) -> io::Result<libc::flock> {
    ofd_range(f, cmd, kind, at, 1)
}

fn ofd_range(f: &File, cmd: libc::c_int, kind: libc::c_int, at: u64, len: u64) -> io::Result<libc::flock> {
    // SAFETY: a zeroed flock is a valid value; every field the kernel reads is set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = at as libc::off_t;
    fl.l_len = len as libc::off_t;
    // SAFETY: a valid descriptor and a valid flock (l_pid 0, as OFD locks require).
    if unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl)
}

/// Takes the exclusive OFD lock on byte `at` of `f` if it is free: Ok(false) when another open file
/// description holds it.
pub fn try_lock_byte(f: &File, at: u64) -> io::Result<bool> {
    match ofd(f, libc::F_OFD_SETLK, libc::F_WRLCK, at) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn unlock_byte(f: &File, at: u64) -> io::Result<()> {
    ofd(f, libc::F_OFD_SETLK, libc::F_UNLCK, at).map(|_| ())
}

/// Whether another open file description holds a lock on byte `at` (one `f` holds does not count).
pub fn byte_is_locked(f: &File, at: u64) -> io::Result<bool> {
    Ok(ofd(f, libc::F_OFD_GETLK, libc::F_WRLCK, at)?.l_type != libc::F_UNLCK as libc::c_short)
}

/// The first byte of a lock another open file description holds in `[at, at + len)`, if any: a
/// holder can so tell a waiter a number (which byte of a range it locks) without writing anything.
pub fn locked_in_range(f: &File, at: u64, len: u64) -> io::Result<Option<u64>> {
    let fl = ofd_range(f, libc::F_OFD_GETLK, libc::F_WRLCK, at, len)?;
    Ok((fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_start as u64))
}

/// Blocks for a shared lock on a descriptor of its own (waiters do not exclude each other, holders
/// take exclusive ones), then drops it at once: released explicitly, then the descriptor closed (a
/// lock belongs to the open file, which a process forked meanwhile shares until its exec: closing
/// alone could leave it held, and a holder's next try busy, for that while).
fn block_until_free(path: &Path, kind: Kind) -> io::Result<()> {
    let f = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)?;
    loop {
        let r = match kind {
            // SAFETY: a valid open descriptor.
            Kind::Flock => unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH) },
            Kind::Byte(at) => match ofd(&f, libc::F_OFD_SETLKW, libc::F_RDLCK, at) {
                Ok(_) => 0,
                Err(e) => {
                    if e.raw_os_error() == Some(libc::EINTR) {
                        continue;
                    }
                    return Err(e);
                }
            },
        };
        if r == 0 {
            match kind {
                // SAFETY: a valid open descriptor.
                Kind::Flock => unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) },
                Kind::Byte(at) => ofd(&f, libc::F_OFD_SETLK, libc::F_UNLCK, at).map_or(-1, |_| 0),
            };
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

#[derive(Default)]
struct Pending {
    done: Mutex<bool>,
    cv: Condvar,
}

type Key = (u32, PathBuf, Kind);

fn pending() -> &'static Mutex<HashMap<Key, Arc<Pending>>> {
    static P: OnceLock<Mutex<HashMap<Key, Arc<Pending>>>> = OnceLock::new();
    P.get_or_init(Default::default)
}

/// Returns once the lock `kind` on `path` is (or was for a moment) free, or at `deadline`. Ok(true)
/// when it was seen free, Ok(false) at the deadline. A missing file counts as free: whatever held it
/// removed it.
pub fn wait_until_free(path: &Path, kind: Kind, deadline: Instant) -> io::Result<bool> {
    // The pid is part of the key: a forked child has none of its parent's threads.
    let key: Key = (crate::lock::pid(), path.to_path_buf(), kind);
    let p = {
        let mut map = pending().lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(Pending::default());
                let (thread_p, thread_key) = (p.clone(), key.clone());
                std::thread::Builder::new()
                    .name("session_proxy-lock-wait".into())
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        // An error (the file gone, a descriptor limit) also ends the wait: the
                        // waiter then simply tries again.
                        let _ = block_until_free(&thread_key.1, thread_key.2);
                        pending().lock().unwrap_or_else(|e| e.into_inner()).remove(&thread_key);
                        *thread_p.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
                        thread_p.cv.notify_all();
                    })?;
                map.insert(key, p.clone());
                p
            }
        }
    };
    let mut done = p.done.lock().unwrap_or_else(|e| e.into_inner());
    while !*done {
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        done = p.cv.wait_timeout(done, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;
    use std::time::Duration;

    fn open_lock_file(path: &Path) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
    }

    #[test]
    fn byte_locks_exclude_other_descriptors_only() {
        let dir = TempDir::new("kwait-byte");
        let p = dir.path().join("l");
        let (a, b) = (open_lock_file(&p).unwrap(), open_lock_file(&p).unwrap());
        assert!(try_lock_byte(&a, 7).unwrap());
        assert!(try_lock_byte(&a, 7).unwrap(), "its own lock again");
        assert!(!try_lock_byte(&b, 7).unwrap());
        assert!(try_lock_byte(&b, 8).unwrap(), "another byte is another lock");
        assert!(byte_is_locked(&b, 7).unwrap() && !byte_is_locked(&a, 7).unwrap());
        unlock_byte(&a, 7).unwrap();
        assert!(!byte_is_locked(&b, 7).unwrap());
        assert!(try_lock_byte(&b, 7).unwrap());
        drop(b);
        assert!(!byte_is_locked(&a, 7).unwrap() && !byte_is_locked(&a, 8).unwrap(), "closing frees");
    }

    /// The waiter is told of the release itself, not by polling: measured here 0.05-0.3 ms after the
    /// unlock on an idle machine. The bound, 20 ms, is the slowest poll step a polling waiter would
    /// use (16 ms) plus margin for a loaded machine; the wait for a held lock is asserted to last at
    /// least as long as the holder holds it.
    #[test]
    fn waiters_wake_when_the_lock_is_released() {
        let dir = TempDir::new("kwait-wake");
        let p = dir.path().join("l");
        for kind in [Kind::Byte(42), Kind::Flock] {
            let holder = open_lock_file(&p).unwrap();
            match kind {
                Kind::Byte(at) => assert!(try_lock_byte(&holder, at).unwrap()),
                // SAFETY: a valid descriptor.
                Kind::Flock => assert_eq!(unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX) }, 0),
            }
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(60));
                let at = Instant::now();
                drop(holder);
                tx.send(at).unwrap();
            });
            let t0 = Instant::now();
            let waits: Vec<_> = (0..3)
                .map(|_| {
                    let p = p.clone();
                    std::thread::spawn(move || {
                        let ok = wait_until_free(&p, kind, Instant::now() + Duration::from_secs(5)).unwrap();
                        (ok, Instant::now())
                    })
                })
                .collect();
            let woke: Vec<_> = waits.into_iter().map(|w| w.join().unwrap()).collect();
            let released = rx.recv().unwrap();
            t.join().unwrap();
            for (ok, at) in woke {
                assert!(ok, "{kind:?}");
                assert!(at >= released && at.duration_since(t0) >= Duration::from_millis(60), "{kind:?}");
                let late = at.duration_since(released);
                assert!(late < Duration::from_millis(20), "{kind:?}: woke {late:?} after the release");
            }
        }
    }

    #[test]
    fn waits_end_at_the_deadline_and_a_missing_file_is_free() {
        let dir = TempDir::new("kwait-deadline");
        let p = dir.path().join("l");
        let holder = open_lock_file(&p).unwrap();
        assert!(try_lock_byte(&holder, 1).unwrap());
        let t0 = Instant::now();
        assert!(!wait_until_free(&p, Kind::Byte(1), t0 + Duration::from_millis(100)).unwrap());
        assert!(t0.elapsed() >= Duration::from_millis(100));
        // A second wait shares the thread still blocked for the first.
        assert!(!wait_until_free(&p, Kind::Byte(1), Instant::now() + Duration::from_millis(20)).unwrap());
        drop(holder);
        assert!(wait_until_free(&p, Kind::Byte(1), Instant::now() + Duration::from_secs(5)).unwrap());
        assert!(wait_until_free(&dir.path().join("missing"), Kind::Flock, Instant::now() + Duration::from_secs(5)).unwrap());
    }
}
