//! PHP's own on-disk format: one `sess_<id>` file per session holding the encoded bytes, in the same
//! directory layout (`depth` levels of one-character sub-directories), so a site can switch from the
//! `files` handler and back without logging anyone out.
//!
//! Locking is `flock(LOCK_EX)` on the session file, as PHP's handler does, so a lock dies with its
//! process, and the two handlers exclude each other: a PHP request blocked in `flock()` holds the same
//! inode we write, because writes happen in place (a file is never renamed over `sess_<id>`).
//!
//! A write must still never leave half a session for our readers, whether the disk fills up or the
//! process is killed in the middle:
//! 1. the space is reserved first (`fallocate(FALLOC_FL_KEEP_SIZE)`): ENOSPC hits there, before any
//!    byte changes;
//! 2. the new bytes are written to a redo journal beside the file (`.sp-redo-<hash of the file name>`,
//!    header with the file name and length, a trailer last): until the journal is complete the session
//!    file is untouched, and a torn journal is ignored;
//! 3. the session file is rewritten in place (`pwrite` + `ftruncate`), then the journal is removed.
//!
//! A process killed during 3 leaves a complete journal: the next request that locks the session
//! replays it (the same bytes again) before reading, and a reader without the lock reads the journal's
//! bytes instead of the torn file. Steps 1–3 run under an OFD write lock (`F_OFD_SETLKW`, a second lock
//! kind that neither PHP's handler nor `flock` sees), which readers without the session lock take for
//! reading, so they never see a write in progress; it dies with its process like `flock`.
//!
//! Also unlike PHP: waits are bounded, files older than gc_maxlifetime read as expired, and a file
//! created only to lock a session is marked with an mtime of 0 (the epoch): it reads as absent, so
//! locking never creates a session, and it is left in place (a PHP request may be waiting on it) for gc.
//!
//! A session's version is its file's size, mtime (ns) and inode, read under the lock (the file keeps
//! PHP's format: there is no room for a counter). The kernel stamps a write with a coarse clock (a
//! tick, ~4 ms), so two writes of one size within a tick would share a version: every write of ours
//! (and every touch) sets the mtime itself, to max(now, previous mtime + 1 ns), so it always moves the
//! version. Left: PHP's own handler writing the same size twice within one tick, between our read and
//! our write, is not seen (its writes are stamped by the kernel) — it ignores our CAS anyway. A write
//! that expects a version (or no session) checks it under the flock, in the same OFD-locked step as
//! the write: under the request's lock, or, without one (locking off), under a flock taken for it.

pub mod options;
mod users;
mod scan;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub use options::FilesOptions;
use super::{Acquire, Busy, Collect, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError, Touched, Version, Written};
use crate::id::SessionId;
use crate::kwait::{self, Kind};
use crate::lock::{fnv64, Token};
use crate::private;

/// How long a write that expects something, made without the session's lock (locking off), waits
/// for the flock it checks and writes under: a request holding the lock is done within
/// lock_expire-like times; beyond this the write fails as a timeout instead of hanging.
const UNLOCKED_CAS_WAIT: Duration = Duration::from_secs(10);

pub struct FilesStore {
    opts: FilesOptions,
    name: String,
    /// The session whose file we hold locked, and the open descriptor. The flocked descriptor IS the
    /// lock (closing it releases it, and the kernel releases it when the process dies), so it stays
    /// in the handle between calls; nothing else of a session is kept here (its version travels in
    /// `Loaded` and `Expect`).
    held: Option<Held>,
    /// Whether this directory's file system keeps the mtimes we set to the ns (a property of the
    /// file system, learnt at the first write; see `written_version`).
    exact_stamps: std::cell::Cell<bool>,
}

struct Held {
    id: SessionId,
    file: Flocked,
}

/// A session file whose flock we hold. Dropping it releases the lock explicitly (`File::unlock`)
/// before the descriptor closes: a flock belongs to the open file, which a process forked at that
/// moment (a PHP exec or proc_open, a test spawning a child) shares until its exec, so closing alone
/// could leave the lock held for that while.
struct Flocked(File);

impl Drop for Flocked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl std::ops::Deref for Flocked {
    type Target = File;
    fn deref(&self) -> &File {
        &self.0
    }
}

/// Start and end of a redo journal; a journal without both (or of the wrong length) is torn.
const JOURNAL_MAGIC: &[u8; 8] = b"SPREDO1\n";
const JOURNAL_END: &[u8; 8] = b"SPREDO.\n";
const JOURNAL_PREFIX: &str = ".sp-redo-";

/// Whether a file is a lock-only placeholder (created to lock a session that was never written).
fn lock_only(md: &fs::Metadata) -> bool {
    md.mtime() == 0 && md.mtime_nsec() == 0
}

/// Whether gc may remove a file: idle for longer than `max_lifetime`. A lock-only file's age is when
/// it was marked (its ctime): one a request holds right now (and a PHP request may wait on) stays.
fn expired(md: &fs::Metadata, max_lifetime: Duration) -> bool {
    let t = if lock_only(md) {
        SystemTime::UNIX_EPOCH + Duration::from_secs(md.ctime().max(0) as u64)
    } else {
        md.modified().unwrap_or(SystemTime::UNIX_EPOCH)
    };
    SystemTime::now().duration_since(t).unwrap_or_default() > max_lifetime
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.ino() == b.ino() && a.dev() == b.dev()
}

/// A file's mtime in ns since the epoch.
fn mtime_ns(md: &fs::Metadata) -> i128 {
    i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec())
}

fn at_ns(ns: i128) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

/// The mtime a write of ours gives the file whose mtime is now `prev`: never the same or earlier, so
/// that the write moves the version even within one tick of the kernel's clock.
fn next_mtime(prev: &fs::Metadata) -> SystemTime {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    at_ns(now.max(mtime_ns(prev) + 1))
}

/// The version of a session file of `len` bytes with mtime `mtime` (ns): with the inode (and device),
/// so that a file removed and created again is another version.
fn version(md: &fs::Metadata, len: u64, mtime: i128) -> Version {
    let id = [md.dev().to_le_bytes(), md.ino().to_le_bytes(), len.to_le_bytes()].concat();
    Version::new(((mtime as u64 as u128) << 64) | u128::from(fnv64(&id)))
}

fn version_of(md: &fs::Metadata) -> Version {
    version(md, md.len(), mtime_ns(md))
}

/// The mtime a killed writer's complete journal (`jmd`) gives the session file (`md`) when it is
/// finished: the journal's, moved past the file's as every write of ours is.
fn recovered_mtime(md: &fs::Metadata, jmd: &fs::Metadata) -> i128 {
    mtime_ns(jmd).max(mtime_ns(md) + 1)
}

/// A POSIX open-file-description lock over the whole file: `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
/// Blocks (the holders only hold it for one read or write); released too when the descriptor closes.
fn ofd_lock(f: &File, kind: libc::c_int) -> std::io::Result<()> {
    // SAFETY: flock is plain data; zeroed is a valid value (whole file from offset 0, l_pid must be 0).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    loop {
        // SAFETY: a valid descriptor and a valid flock struct.
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLKW, &fl) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The flock of `f` if it is free (std's `File::try_lock` is `flock(LOCK_EX | LOCK_NB)` on Linux, the
/// lock PHP's handler takes): Ok(false) when another descriptor holds it.
fn try_flock(f: &File) -> std::io::Result<bool> {
    match f.try_lock() {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The whole content of `f` from its start (whatever its cursor): `len` bytes (its size when it was
/// stat'ed), or what it holds by now if a writer that takes no lock of ours changed it since.
fn read_all(f: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut n = 0;
    while n < buf.len() {
        let r = f.read_at(&mut buf[n..], n as u64)?;
        if r == 0 {
            buf.truncate(n);
            return Ok(buf);
        }
        n += r;
    }
    let mut more = [0u8; 4096];
    loop {
        let r = f.read_at(&mut more, buf.len() as u64)?;
        if r == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&more[..r]);
    }
}

/// An I/O error about `p`: "`what` `p`: cause", classified by its kind.
fn io_error(what: &str, p: &Path, e: &std::io::Error) -> StoreError {
    StoreError::io(p.display().to_string(), e, format!("{what} {}: {e}", p.display()))
}

/// The journal beside `path` (same directory, so same file system), a fixed-length name whatever the id.
fn journal_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
    path.with_file_name(format!("{JOURNAL_PREFIX}{:016x}", fnv64(name)))
}

fn journal_bytes(path: &Path, data: &[u8]) -> Vec<u8> {
    let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default();
    let mut j = Vec::with_capacity(data.len() + name.len() + 32);
    j.extend_from_slice(JOURNAL_MAGIC);
    j.extend_from_slice(&(name.len() as u32).to_le_bytes());
    j.extend_from_slice(name);
    j.extend_from_slice(&(data.len() as u64).to_le_bytes());
    j.extend_from_slice(data);
    j.extend_from_slice(JOURNAL_END);
    j
}

/// The bytes of a complete journal for `path`; None for a torn one or one of another file.
fn parse_journal<'a>(path: &Path, j: &'a [u8]) -> Option<&'a [u8]> {
    let name = path.file_name()?.as_encoded_bytes();
    let rest = j.strip_prefix(JOURNAL_MAGIC)?.strip_suffix(JOURNAL_END)?;
    let (n, rest) = rest.split_at_checked(4)?;
    let (got, rest) = rest.split_at_checked(u32::from_le_bytes(n.try_into().ok()?) as usize)?;
    let (len, data) = rest.split_at_checked(8)?;
    (got == name && u64::from_le_bytes(len.try_into().ok()?) == data.len() as u64).then_some(data)
}

/// What a journal beside a session file holds.
enum Journal {
    None,
    /// Torn (its writer died before finishing it): the session file was not touched.
    Torn,
    /// Complete: these bytes are the session, whatever the file holds.
    Complete(Vec<u8>, fs::Metadata),
}

/// The journal `jp` (`journal_path(path)`) of the session file `path`.
fn read_journal(path: &Path, jp: &Path) -> std::io::Result<Journal> {
    // A journal is trusted as the session: one planted by another user is refused like a planted file.
    let mut f = match private::open(jp, OpenOptions::new().read(true), 0o600) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Journal::None),
        Err(e) => return Err(e),
    };
    let md = f.metadata()?;
    let mut buf = Vec::with_capacity(md.len() as usize);
    f.read_to_end(&mut buf)?;
    Ok(match parse_journal(path, &buf) {
        Some(d) => Journal::Complete(d.to_vec(), md),
        None if buf.starts_with(JOURNAL_MAGIC) || buf.is_empty() => Journal::Torn,
        // A hash collision with another session's journal: not ours to judge.
        None => Journal::None,
    })
}

/// Rewrites `file` in place with `data` (the space reserved, no journal), stamped `mtime`: see the
/// module comment.
fn apply(file: &File, data: &[u8], mtime: SystemTime) -> std::io::Result<()> {
    file.write_all_at(data, 0)?;
    file.set_len(data.len() as u64)?;
    // Also for an unchanged length (a lock-only file written empty): the write makes the session live.
    file.set_modified(mtime)
}

/// Result of a write attempt on an open descriptor.
enum Wrote {
    Done(Version),
    /// The path no longer names this descriptor's file (gc or a destroy removed it): nothing written.
    Gone,
    /// The expectation failed: nothing written; what is stored now.
    Conflict(Option<Loaded>),
}

impl FilesStore {
    pub fn open(o: &FilesOptions) -> Result<Self> {
        let name = format!("files://{}", o.dir.display());
        let at = o.dir.display().to_string();
        let unavailable = |detail: String| StoreError::new(super::ErrorKind::Unavailable, at.clone(), detail);
        let md = fs::metadata(&o.dir)
            .map_err(|e| StoreError::io(at.clone(), &e, format!("{name}: directory {} is not accessible: {e}", o.dir.display())))?;
        if !md.is_dir() {
            return Err(unavailable(format!("{name}: {} is not a directory", o.dir.display())));
        }
        let c = std::ffi::CString::new(o.dir.as_os_str().as_encoded_bytes()).map_err(|e| unavailable(format!("{name}: {e}")))?;
        // SAFETY: c is a valid NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
            return Err(unavailable(format!("{name}: directory {} is not writable", o.dir.display())));
        }
        Ok(FilesStore { opts: o.clone(), name, held: None, exact_stamps: std::cell::Cell::new(false) })
    }

    fn dir_for(&self, id: &SessionId) -> PathBuf {
        let mut d = self.opts.dir.clone();
        for c in id.as_str().chars().take(self.opts.depth as usize) {
            d.push(c.to_string());
        }
        d
    }

    /// `sess_<id>` as PHP's handler names it; an id too long for a 255-byte file name (251-256
    /// characters) is named by its hash instead (`SessionId::name_within`).
    fn path_for(&self, id: &SessionId) -> PathBuf {
        self.dir_for(id).join(format!("sess_{}", id.name_within(255 - "sess_".len())))
    }

    fn ensure_dir(&self, id: &SessionId) -> Result<()> {
        if self.opts.depth > 0 {
            let d = self.dir_for(id);
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&d).map_err(|e| io_error("cannot create directory", &d, &e))?;
        }
        Ok(())
    }

    fn is_live(md: &fs::Metadata, max_lifetime: Duration) -> bool {
        let age = md.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default();
        !lock_only(md) && age <= max_lifetime
    }

    /// The session an open file holds (None: lock-only or expired), read under its OFD lock, with a
    /// complete journal of a killed writer read as the session.
    /// `recovered`: the caller has just finished or dropped the journal under the same OFD write lock
    /// (`recover`), so there is none to look for.
    fn read_session(path: &Path, f: &File, exp: Expiry, recovered: bool) -> std::io::Result<Option<Loaded>> {
        let md = f.metadata()?;
        let journal = if recovered { Journal::None } else { read_journal(path, &journal_path(path))? };
        if let Journal::Complete(data, jmd) = journal {
            // At the version the next lock holder gives it when it finishes the journal (`recover`).
            let version = version(&md, data.len() as u64, recovered_mtime(&md, &jmd));
            return Ok(Self::is_live(&jmd, exp.lifetime).then_some(Loaded { data, version }));
        }
        if !Self::is_live(&md, exp.lifetime) {
            return Ok(None);
        }
        Ok(Some(Loaded { data: read_all(f, md.len())?, version: version_of(&md) }))
    }

    /// Opens the existing session file read-write.
    fn open_existing(&self, path: &Path) -> std::io::Result<File> {
        private::open(path, OpenOptions::new().read(true).write(true), self.opts.mode)
    }

    /// Opens the session file read-write, creating it (as a lock-only placeholder) when missing.
    /// Returns the file and whether we created it.
    fn open_or_create(&self, path: &Path) -> std::io::Result<(File, bool)> {
        loop {
            match self.open_existing(path) {
                Ok(f) => return Ok((f, false)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            // Made under a name of its own and marked lock-only (mtime 0) there, then linked into place:
            // nobody can open, lock and write the session file before it is marked (a mark made after
            // another request's write would erase that write).
            let tmp = path.with_file_name(format!(".sp-new-{}", Token::new().as_str()));
            let f = private::open(&tmp, OpenOptions::new().read(true).write(true).create_new(true).mode(self.opts.mode), self.opts.mode)?;
            let linked = f.set_modified(SystemTime::UNIX_EPOCH).and_then(|()| fs::hard_link(&tmp, path));
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Ok((f, true)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `path` still names the file open as `f`: then `f`'s metadata.
    fn current(path: &Path, f: &File) -> std::io::Result<Option<fs::Metadata>> {
        let md = f.metadata()?;
        Ok(matches!(fs::symlink_metadata(path), Ok(cur) if same_file(&cur, &md)).then_some(md))
    }

    fn is_current(path: &Path, f: &File) -> std::io::Result<bool> {
        Self::current(path, f).map(|md| md.is_some())
    }

    /// One attempt to flock the current session file without waiting; None when busy. An error comes
    /// with what failed ("cannot open", "cannot create", "cannot lock"), for a caller that says so.
    fn try_lock(&self, path: &Path) -> std::result::Result<Option<(Flocked, bool)>, (&'static str, std::io::Error)> {
        loop {
            let (file, created) =
                self.open_or_create(path).map_err(|e| (if path.exists() { "cannot open" } else { "cannot create" }, e))?;
            if !try_flock(&file).map_err(|e| ("cannot lock", e))? {
                return Ok(None);
            }
            let file = Flocked(file);
            // The file may have been removed (gc, a destroy) while we waited: a lock on an unlinked
            // inode locks nothing, so start again on the current file.
            if Self::is_current(path, &file).map_err(|e| ("cannot lock", e))? {
                return Ok(Some((file, created)));
            }
        }
    }

    /// The flock for a write that expects something without the session's lock (locking off),
    /// waited for up to UNLOCKED_CAS_WAIT. None: a version was expected and there is no file at all
    /// (a conflict; nothing is created for it).
    ///
    /// Not checked here to be the current file: the write that follows checks that under its OFD
    /// lock anyway (`write_journaled` answers Gone, and the caller locks again), so a check here
    /// would only repeat its two system calls.
    fn lock_for_check(&self, path: &Path, expect: Expect) -> Result<Option<Flocked>> {
        let deadline = Instant::now() + UNLOCKED_CAS_WAIT;
        loop {
            let file = if matches!(expect, Expect::Version(_)) {
                // No file: no version to match, and nothing is created for a refusal.
                match self.open_existing(path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_error("cannot write", path, &e)),
                }
            } else {
                self.open_or_create(path).map_err(|e| io_error("cannot write", path, &e))?.0
            };
            if try_flock(&file).map_err(|e| io_error("cannot write", path, &e))? {
                return Ok(Some(Flocked(file)));
            }
            drop(file);
            if Instant::now() >= deadline {
                return Err(StoreError::new(
                    super::ErrorKind::Timeout,
                    path.display().to_string(),
                    format!("{} stayed locked by another request for {} s", path.display(), UNLOCKED_CAS_WAIT.as_secs()),
                ));
            }
            kwait::wait_until_free(path, Kind::Flock, deadline).map_err(|e| io_error("cannot wait for the lock on", path, &e))?;
        }
    }

    /// Finishes (or discards) a journal a killed writer left, under `file`'s OFD write lock: whether
    /// there was one (then the file's metadata changed).
    /// `jp` is `journal_path(path)`.
    fn recover(path: &Path, jp: &Path, file: &File) -> std::io::Result<bool> {
        match read_journal(path, jp)? {
            Journal::None => return Ok(false),
            Journal::Torn => {}
            Journal::Complete(data, jmd) => {
                let mtime = recovered_mtime(&file.metadata()?, &jmd);
                apply(file, &data, at_ns(mtime))?;
            }
        }
        match fs::remove_file(jp) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(true),
        }
    }

    /// Writes `data` into the open session file `file` in place, journaled (see the module comment),
    /// if what it holds is as `expect` says (checked under the same OFD write lock as the write).
    fn write_journaled(&self, path: &Path, file: &File, data: &[u8], expect: Expect, exp: Expiry) -> std::io::Result<Wrote> {
        ofd_lock(file, libc::F_WRLCK)?;
        let jp = journal_path(path);
        let r = (|| {
            let Some(mut md) = Self::current(path, file)? else { return Ok(Wrote::Gone) };
            // Under our flock the lock decides (Held): a locking-off writer is overwritten, as before.
            if !matches!(expect, Expect::Any | Expect::Held(_)) {
                // The version a reader would find now (a killed writer's journal finished first); the
                // data is read only for a refusal.
                if Self::recover(path, &jp, file)? {
                    md = file.metadata()?;
                }
                let now = Self::is_live(&md, exp.lifetime).then(|| version_of(&md));
                let ok = match expect {
                    Expect::Absent => now.is_none(),
                    Expect::Version(v) => now == Some(v),
                    Expect::Any | Expect::Held(_) => true,
                };
                if !ok {
                    let current = now.map(|version| read_all(file, md.len()).map(|data| Loaded { data, version }));
                    return Ok(Wrote::Conflict(current.transpose()?));
                }
            }
            let mtime = next_mtime(&md);
            if !data.is_empty() {
                // SAFETY: a valid descriptor.
                if unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, data.len() as libc::off_t) } != 0 {
                    let e = std::io::Error::last_os_error();
                    // A file system without fallocate: written without the reservation (the journal
                    // still covers a failure in the middle).
                    if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                        return Err(e);
                    }
                }
            }
            let journaled = (|| {
                // Checked before a byte of the session goes in (one planted beside it is refused).
                let mut j = private::open(&jp, OpenOptions::new().write(true).create(true).truncate(true).mode(0o600), 0o600)?;
                j.write_all(&journal_bytes(path, data))
            })();
            if let Err(e) = journaled {
                let _ = fs::remove_file(&jp);
                return Err(e);
            }
            // From here the journal holds the session: a failure below is finished by the next request.
            apply(file, data, mtime)?;
            fs::remove_file(&jp)?;
            Ok(Wrote::Done(self.written_version(file, &md, data.len(), mtime)?))
        })();
        let _ = ofd_lock(file, libc::F_UNLCK);
        r
    }

    /// The version of `file` (metadata `md` before the write) just written with `len` bytes and
    /// stamped `mtime`: computed when this file system is known to keep our stamps to the ns (learnt
    /// from the first write, by reading it back), else read back (a coarser clock rounds them).
    fn written_version(&self, file: &File, md: &fs::Metadata, len: usize, mtime: SystemTime) -> std::io::Result<Version> {
        let ns = mtime.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        let computed = version(md, len as u64, ns);
        if self.exact_stamps.get() {
            return Ok(computed);
        }
        let read = version_of(&file.metadata()?);
        self.exact_stamps.set(read == computed);
        Ok(read)
    }

    /// gc's delete of a file its scan found idle. Between the scan and now a request may have locked
    /// the file or renamed a fresh write over it, so the delete happens only under the file's lock, if
    /// the path still names the locked file and that file is still idle. A file a request holds is
    /// left to it (unlike PHP's handler, which deletes it): that request writes or releases it next.
    /// An unlocked write (locking off) made between the final check and the unlink can still
    /// be lost, as with PHP's handler.
    fn remove_if_idle(path: &Path, max_lifetime: Duration) -> bool {
        let Ok(f) = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) else {
            return false;
        };
        if !try_flock(&f).unwrap_or(false) {
            return false;
        }
        let f = Flocked(f);
        let (Ok(md), Ok(cur)) = (f.metadata(), fs::symlink_metadata(path)) else {
            return false;
        };
        same_file(&cur, &md) && expired(&md, max_lifetime) && fs::remove_file(path).is_ok()
    }

    /// Drops our lock on `id` (closing the descriptor releases the flock).
    fn release(&mut self, id: &SessionId) -> Option<Held> {
        match &self.held {
            Some(h) if &h.id == id => self.held.take(),
            _ => None,
        }
    }

    fn holds(&self, id: &SessionId) -> bool {
        self.held.as_ref().is_some_and(|h| &h.id == id)
    }
}

impl Pooled for FilesStore {}

impl Collect for FilesStore {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        fn walk(dir: &Path, depth: u8, max_lifetime: Duration, n: &mut u64) -> std::io::Result<()> {
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let md = entry.metadata()?;
                if depth > 0 && md.is_dir() && name.len() == 1 {
                    walk(&entry.path(), depth - 1, max_lifetime, n)?;
                } else if md.is_file()
                    && (name.starts_with("sess_")
                        || name.starts_with(JOURNAL_PREFIX)
                        || name.starts_with(".sp-new-")
                        || (name.starts_with(".sess_") && name.ends_with(".tmp")))
                    && expired(&md, max_lifetime)
                {
                    #[cfg(test)]
                    crate::store::tests::gc_window(&name);
                    // Not while a request holds it (checked under its flock): a held lock and a
                    // session rewritten since the scan stay.
                    if FilesStore::remove_if_idle(&entry.path(), max_lifetime) && name.starts_with("sess_") && !lock_only(&md) {
                        *n += 1;
                    }
                }
            }
            Ok(())
        }
        let mut n = 0;
        let dir = &self.opts.dir;
        walk(dir, self.opts.depth, exp.lifetime, &mut n)
            .map_err(|e| StoreError::io(dir.display().to_string(), &e, format!("gc cannot scan the directory: {e}")))?;
        self.sweep(exp);
        Ok(n)
    }
}

impl Store for FilesStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let path = self.path_for(id);
        let f = match private::open(&path, OpenOptions::new().read(true), self.opts.mode) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot open", &path, &e)),
        };
        // Not while one of our writers is in the middle of a write; and a killed writer's complete
        // journal is the session, whatever the file holds.
        ofd_lock(&f, libc::F_RDLCK).map_err(|e| io_error("cannot lock", &path, &e))?;
        let r = Self::read_session(&path, &f, exp, false);
        let _ = ofd_lock(&f, libc::F_UNLCK);
        r.map_err(|e| io_error("cannot read", &path, &e))
    }

    fn lock_and_load(&mut self, id: &SessionId, _owner: &Token, _lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        if self.holds(id) {
            return Ok(Acquire::Locked(self.load(id, exp)?));
        }
        self.held = None;
        self.ensure_dir(id)?;
        let path = self.path_for(id);
        // The holder may be PHP's handler as well as one of ours; nobody tells when it ends, but the
        // kernel wakes the waiter (`wait_for_release`).
        let locked = self.try_lock(&path).map_err(|(what, e)| io_error(what, &path, &e))?;
        let Some((file, _created)) = locked else { return Ok(Acquire::Busy(Busy::default())) };
        let data = (|| {
            // Whether we created the file says nothing about what it holds now: between our create
            // and our flock another request may have locked, written and released it. A file nobody
            // wrote is lock-only (mtime 0) and reads as no session below.
            ofd_lock(&file, libc::F_WRLCK)?;
            let r = Self::recover(&path, &journal_path(&path), &file).and_then(|_| Self::read_session(&path, &file, exp, true));
            ofd_lock(&file, libc::F_UNLCK)?;
            r
        })()
        .map_err(|e| io_error("cannot read", &path, &e))?;
        self.held = Some(Held { id: id.clone(), file });
        Ok(Acquire::Locked(data))
    }

    /// Woken by the kernel when the holder's flock goes (ours or PHP's handler's), instead of polling.
    fn wait_for_release(&mut self, id: &SessionId, _busy: &Busy, deadline: Instant, _attempt: u32) -> Result<()> {
        let path = self.path_for(id);
        kwait::wait_until_free(&path, Kind::Flock, deadline).map_err(|e| io_error("cannot wait for the lock on", &path, &e))?;
        Ok(())
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        let path = self.path_for(id);
        let mut file = match self.release(id) {
            Some(h) => h.file,
            None if owner.is_some() => return Ok(Written::LockLost),
            None => {
                self.ensure_dir(id)?;
                if expect == Expect::Any {
                    // Locking off, last writer wins: on the current file, under the OFD lock only.
                    loop {
                        let (file, _) = self.open_or_create(&path).map_err(|e| io_error("cannot write", &path, &e))?;
                        match self.write_journaled(&path, &file, data, expect, exp).map_err(|e| io_error("cannot write", &path, &e))? {
                            Wrote::Done(v) => return Ok(Written::Done(v)),
                            Wrote::Conflict(now) => return Ok(Written::Conflict(now)),
                            Wrote::Gone => {}
                        }
                    }
                }
                match self.lock_for_check(&path, expect)? {
                    Some(f) => f,
                    None => return Ok(Written::Conflict(None)),
                }
            }
        };
        loop {
            // The descriptor (and its flock) is closed when this returns: the lock is released with the
            // write, or with its refusal.
            match self.write_journaled(&path, &file, data, expect, exp).map_err(|e| io_error("cannot write", &path, &e))? {
                Wrote::Done(v) => return Ok(Written::Done(v)),
                Wrote::Conflict(now) => return Ok(Written::Conflict(now)),
                // The session this lock read was removed under it (ended by destroy_user_sessions, or
                // a logout through PHP's handler): a late write never brings it back. (Its whole
                // directory gone is a storage fault: the write below says so.)
                Wrote::Gone if owner.is_some() && matches!(expect, Expect::Held(Some(_))) && path.parent().is_some_and(Path::is_dir) => {
                    return Ok(Written::LockLost)
                }
                // Our file was removed under the lock (gc of an expired or lock-only file, a destroy by
                // PHP's handler): lock the current one, unless another request holds it by now.
                Wrote::Gone => {
                    file = match owner {
                        // Under the request's lock: the current file, unless another request holds it by now.
                        Some(_) => match self.try_lock(&path).map_err(|(_, e)| io_error("cannot write", &path, &e))? {
                            Some((f, _)) => f,
                            None => return Ok(Written::LockLost),
                        },
                        // Under a flock taken for the check: taken again on the current file.
                        None => match self.lock_for_check(&path, expect)? {
                            Some(f) => f,
                            None => return Ok(Written::Conflict(None)),
                        },
                    };
                }
            }
        }
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, _exp: Expiry) -> Result<Touched> {
        if owner.is_some() && !self.holds(id) {
            return Ok(Touched::LockLost);
        }
        let path = self.path_for(id);
        match private::open(&path, File::options().write(true), self.opts.mode) {
            // A lock-only file stays one: touching it would create an empty session.
            Ok(f) => match f.metadata() {
                Ok(md) if !lock_only(&md) => f.set_modified(next_mtime(&md)).map_err(|e| io_error("cannot update the time of", &path, &e))?,
                _ => {}
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("cannot open", &path, &e)),
        }
        self.release(id);
        Ok(Touched::Done)
    }

    fn unlock(&mut self, id: &SessionId, _owner: &Token) -> Result<()> {
        self.release(id);
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId, _owner: Option<&Token>) -> Result<()> {
        let path = self.path_for(id);
        // The session file is its lock: deleting a file another request holds would free that lock
        // (the next request creates a new file and locks it). Refuse instead, as loudly as any error.
        let _guard = match self.release(id) {
            Some(h) => Some(h.file),
            None => match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
                // The lock ends when `_guard` is dropped, after the unlink.
                Ok(f) => match try_flock(&f) {
                    Ok(true) => Some(Flocked(f)),
                    Ok(false) => {
                        let detail = format!("{} is locked by another request", path.display());
                        return Err(StoreError::new(super::ErrorKind::Backend, path.display().to_string(), detail));
                    }
                    Err(e) => return Err(io_error("cannot lock", &path, &e)),
                },
                Err(_) => None,
            },
        };
        for p in [&path, &journal_path(&path)] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("cannot delete", p, &e)),
            }
        }
        self.forget_binding(id);
        Ok(())
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        Ok(match fs::symlink_metadata(self.path_for(id)) {
            Ok(md) => md.is_file() && Self::is_live(&md, exp.lifetime),
            Err(_) => false,
        })
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        Some(self)
    }

    fn users(&mut self) -> Option<&mut dyn super::users::Users> {
        Some(self)
    }

    fn scanner(&mut self) -> Option<&mut dyn super::Scan> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{conformance, woken_at_release, Got, Ops, TempDir, W};

    fn opts(dir: &Path, depth: u8) -> FilesOptions {
        FilesOptions { dir: dir.to_path_buf(), depth, mode: 0o600 }
    }

    fn boxed(dir: &Path, depth: u8) -> Box<dyn Store> {
        Box::new(FilesStore::open(&opts(dir, depth)).unwrap())
    }

    /// Writes a file as PHP's handler creates them: 0600 (fs::write would give 0644 under umask 022).
    fn write_0600(p: &Path, data: &[u8]) {
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(p).unwrap().write_all(data).unwrap();
    }

    #[test]
    fn keeps_a_user_index() {
        for depth in [0u8, 2] {
            let dir = crate::store::tests::TempDir::new("files-users");
            crate::store::users_tests::users_conformance(|| boxed(dir.path(), depth), "fi", false);
        }
    }

    #[test]
    fn conforms() {
        for depth in [0, 2] {
            let dir = TempDir::new("files-conf");
            assert!(conformance(|| boxed(dir.path(), depth)), "gc raced between scan and unlink");
        }
    }

    /// A write that expects a version, made without the lock while another request holds it, waits for
    /// that request (the flock) and is then checked against what it wrote: refused, with its data.
    #[test]
    fn unlocked_cas_writes_wait_for_the_lock_holder() {
        let dir = TempDir::new("files-cas-wait");
        let (mut a, mut b) = (boxed(dir.path(), 0), boxed(dir.path(), 0));
        let id = SessionId::parse(b"caswait").unwrap();
        let exp = Expiry::new(Duration::from_secs(60));
        let Written::Done(v0) = a.save(&id, b"base", Expect::Any, None, exp).unwrap() else { panic!("written") };
        let ta = Token::new();
        let Acquire::Locked(Some(l)) = a.lock_and_load(&id, &ta, Duration::from_secs(30), exp).unwrap() else { panic!("locked") };
        assert_eq!(l.version, v0);
        let id2 = id.clone();
        let other = std::thread::spawn(move || {
            let w = b.save(&id2, b"other", Expect::Version(v0), None, exp).unwrap();
            (w, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(100));
        // Taken before the holder's write: the waiter may return before the holder's save does (the
        // flock is released inside it), but never before the write began.
        let writing = Instant::now();
        let Written::Done(v1) = a.save(&id, b"holder", Expect::Version(v0), Some(&ta), exp).unwrap() else { panic!("the holder writes") };
        let (w, returned) = other.join().unwrap();
        // Had it not waited, its write at v0 would have been Done.
        assert_eq!(w, Written::Conflict(Some(Loaded { data: b"holder".to_vec(), version: v1 })));
        assert!(returned >= writing, "the unlocked write waited for the holder");
    }

    /// Writes of one size in quick succession (within one tick of the kernel's clock) each move the
    /// version, so a write at any earlier one is refused; and a file whose mtime is ahead of the clock
    /// (a clock stepped back) is still moved forward.
    #[test]
    fn every_write_moves_the_version() {
        let dir = TempDir::new("files-versions");
        let mut s = boxed(dir.path(), 0);
        let id = SessionId::parse(b"ticks").unwrap();
        let exp = Expiry::new(Duration::from_secs(3600));
        let Written::Done(mut v) = s.save(&id, b"same size 000", Expect::Absent, None, exp).unwrap() else { panic!("created") };
        let mut seen = vec![v];
        for i in 1..=100 {
            let data = format!("same size {i:03}");
            let Written::Done(next) = s.save(&id, data.as_bytes(), Expect::Version(v), None, exp).unwrap() else { panic!("write {i}") };
            assert!(!seen.contains(&next), "write {i} reused a version");
            let stale = s.save(&id, b"stale size 00", Expect::Version(v), None, exp).unwrap();
            assert_eq!(stale, Written::Conflict(Some(Loaded { data: data.into_bytes(), version: next })), "write {i}");
            seen.push(next);
            v = next;
        }
        let p = dir.path().join("sess_ticks");
        let ahead = SystemTime::now() + Duration::from_secs(600);
        File::options().write(true).open(&p).unwrap().set_modified(ahead).unwrap();
        let md = fs::metadata(&p).unwrap();
        assert_eq!(next_mtime(&md), ahead + Duration::from_nanos(1));
        let v = version_of(&md);
        let Written::Done(after) = s.save(&id, b"same size 101", Expect::Version(v), None, exp).unwrap() else { panic!("written") };
        assert_ne!(after, v);
        assert!(fs::metadata(&p).unwrap().modified().unwrap() > ahead);
    }

    /// A waiter is woken by the holder's flock release (`woken_at_release`), and with nobody holding
    /// the lock a wait ends at once.
    #[test]
    fn waiters_wake_at_the_release() {
        let dir = TempDir::new("files-wake");
        let id = SessionId::parse(b"wakeme").unwrap();
        let open = || boxed(dir.path(), 0);
        let (_a, mut b, tb) = woken_at_release(open(), open(), &id);
        b.unlock(&id, &tb).unwrap();
        let t0 = Instant::now();
        crate::store::Store::wait_for_release(&mut *b, &id, &crate::store::Busy::default(), t0 + Duration::from_secs(5), 0).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn same_layout_as_php() {
        let dir = TempDir::new("files-layout");
        let mut s = boxed(dir.path(), 2);
        let id = SessionId::parse(b"abc123").unwrap();
        s.put(&id, b"a|i:1;", Duration::from_secs(60), None).unwrap();
        assert_eq!(fs::read(dir.path().join("a/b/sess_abc123")).unwrap(), b"a|i:1;");
        // And a file PHP wrote is read back.
        write_0600(&dir.path().join("a/b/sess_abc999"), b"php|s:1:\"x\";");
        let id2 = SessionId::parse(b"abc999").unwrap();
        assert_eq!(s.get(&id2, Duration::from_secs(60)).unwrap().unwrap(), b"php|s:1:\"x\";");
    }

    #[test]
    fn longest_storable_ids_are_written() {
        let dir = TempDir::new("files-longid");
        let mut s = boxed(dir.path(), 0);
        // NAME_MAX is 255: "sess_" + 250 characters is the longest file name PHP's handler can store.
        let id = SessionId::parse("L".repeat(250).as_bytes()).unwrap();
        let t = Token::new();
        assert_eq!(s.lock(&id, &t, Duration::from_secs(1), Duration::from_secs(60)).unwrap(), Got::Locked(None));
        assert_eq!(s.put(&id, b"x|i:1;", Duration::from_secs(60), Some(&t)).unwrap(), W::Done);
        assert_eq!(s.get(&id, Duration::from_secs(60)).unwrap().unwrap(), b"x|i:1;");
    }

    #[test]
    fn lock_only_file_reads_as_absent_and_stays_for_gc() {
        let dir = TempDir::new("files-unlock");
        let mut s = boxed(dir.path(), 0);
        let id = SessionId::parse(b"neverwritten").unwrap();
        let t = Token::new();
        let life = Duration::from_secs(60);
        assert_eq!(s.lock(&id, &t, Duration::from_secs(1), life).unwrap(), Got::Locked(None));
        // A lazy_write touch of the never-written session does not make it a session.
        assert_eq!(s.tch(&id, life, Some(&t)).unwrap(), W::Done);
        // Kept (a PHP request may be blocked in flock on it), but it is no session.
        let p = dir.path().join("sess_neverwritten");
        assert!(p.exists());
        assert_eq!(s.get(&id, life).unwrap(), None);
        assert!(!s.has(&id, life).unwrap());
        assert_eq!(s.lock(&id, &t, Duration::from_secs(1), life).unwrap(), Got::Locked(None));
        s.unlock(&id, &t).unwrap();
        // gc judges it by when it was made, not by its mtime of 0: a fresh one stays.
        let mut gc = |life| s.collector().expect("files collects").gc(Expiry::new(life)).unwrap();
        assert_eq!(gc(life), 0);
        assert!(p.exists());
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(gc(Duration::from_secs(1)), 0, "not counted as a session");
        assert!(!p.exists());
    }

    #[test]
    fn writes_keep_the_inode_a_waiter_holds() {
        let dir = TempDir::new("files-inode");
        let mut s = boxed(dir.path(), 0);
        let id = SessionId::parse(b"inode").unwrap();
        let life = Duration::from_secs(60);
        s.put(&id, b"a much longer first version", life, None).unwrap();
        let p = dir.path().join("sess_inode");
        // What PHP's handler does: open, then (later) flock on that descriptor.
        let waiter = File::open(&p).unwrap();
        let t = Token::new();
        assert!(matches!(s.lock(&id, &t, life, life).unwrap(), Got::Locked(Some(_))));
        assert_eq!(s.put(&id, b"short", life, Some(&t)).unwrap(), W::Done);
        s.put(&id, b"unlocked", life, None).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().ino(), waiter.metadata().unwrap().ino());
        let mut got = Vec::new();
        (&waiter).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"unlocked");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["sess_inode"], "no journal or temp file left");
    }

    #[test]
    fn a_write_killed_midway_is_completed_from_its_journal() {
        let dir = TempDir::new("files-journal");
        let mut s = boxed(dir.path(), 0);
        let id = SessionId::parse(b"torn").unwrap();
        let life = Duration::from_secs(60);
        s.put(&id, b"old|s:12:\"old contents\";", life, None).unwrap();
        let p = dir.path().join("sess_torn");
        // Killed after the journal was complete, in the middle of the in-place rewrite.
        let new = b"new|s:3:\"new\";";
        write_0600(&journal_path(&p), &journal_bytes(&p, new));
        fs::OpenOptions::new().write(true).open(&p).unwrap().write_all_at(b"new|s:", 0).unwrap();
        // A reader without the lock reads the journal's bytes, not the torn file.
        let read = s.load(&id, Expiry::new(life)).unwrap().expect("the journal's session");
        assert_eq!(read.data, new);
        // The next lock holder replays it, and reads it at the version the reader was told.
        let t = Token::new();
        let Acquire::Locked(locked) = s.lock_and_load(&id, &t, life, Expiry::new(life)).unwrap() else { panic!("free") };
        assert_eq!(locked, Some(read));
        assert_eq!(fs::read(&p).unwrap(), new);
        assert!(!journal_path(&p).exists());
        s.unlock(&id, &t).unwrap();

        // Killed while writing the journal: the file is untouched and the torn journal is dropped.
        let full = journal_bytes(&p, b"never|i:1;");
        write_0600(&journal_path(&p), &full[..full.len() - 3]);
        assert_eq!(s.get(&id, life).unwrap().as_deref(), Some(&new[..]));
        assert_eq!(s.lock(&id, &t, life, life).unwrap(), Got::Locked(Some(new.to_vec())));
        assert!(!journal_path(&p).exists());
        s.unlock(&id, &t).unwrap();
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = TempDir::new("files-symlink");
        let target = dir.path().join("target");
        fs::write(&target, b"secret").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("sess_evil")).unwrap();
        let mut s = boxed(dir.path(), 0);
        let id = SessionId::parse(b"evil").unwrap();
        assert!(s.get(&id, Duration::from_secs(60)).is_err());
        assert!(s.lock(&id, &Token::new(), Duration::from_secs(1), Duration::from_secs(60)).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"secret");
    }

    #[test]
    fn bad_directories_are_named() {
        let e = FilesStore::open(&opts(Path::new("/nonexistent-sp-dir"), 0)).err().unwrap();
        assert!(format!("{e:#}").contains("/nonexistent-sp-dir"), "{e:#}");
        let dir = TempDir::new("files-notdir");
        let f = dir.path().join("plain");
        fs::write(&f, b"").unwrap();
        let e = FilesStore::open(&opts(&f, 0)).err().unwrap();
        assert!(format!("{e:#}").contains("not a directory"), "{e:#}");
    }
}
