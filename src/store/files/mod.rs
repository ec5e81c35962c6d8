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
//! A process killed during 3 leaves a complete journal: the next request that locks the session
//! replays it (the same bytes again) before reading, and a reader without the lock reads the journal's
//! bytes instead of the torn file. Steps 1–3 run under an OFD write lock (`F_OFD_SETLKW`, a second lock
//! kind that neither PHP's handler nor `flock` sees), which readers without the session lock take for
//! reading, so they never see a write in progress; it dies with its process like `flock`.
//!
//! Also unlike PHP: waits are bounded, files older than gc_maxlifetime read as expired, and a file
//! created only to lock a session is marked with an mtime of 0 (the epoch): it reads as absent, so
//! locking never creates a session, and it is left in place (a PHP request may be waiting on it) for gc.

pub mod options;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};

use super::legacy::{Acquire, Saved, Store};
pub use options::FilesOptions;
use crate::id::SessionId;
use crate::kwait::{self, Kind};
use crate::lock::{fnv64, Token};
use crate::private;

pub struct FilesStore {
    opts: FilesOptions,
    name: String,
    /// The session whose file we hold locked, and the open descriptor.
    held: Option<Held>,
}

struct Held {
    id: SessionId,
    file: File,
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

fn read_journal(path: &Path) -> std::io::Result<Journal> {
    let jp = journal_path(path);
    // A journal is trusted as the session: one planted by another user is refused like a planted file.
    let mut f = match private::open(&jp, OpenOptions::new().read(true), 0o600) {
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

/// Rewrites `file` in place with `data` (the space reserved, no journal): see the module comment.
fn apply(file: &File, data: &[u8]) -> std::io::Result<()> {
    file.write_all_at(data, 0)?;
    file.set_len(data.len() as u64)?;
    // Also for an unchanged length (a lock-only file written empty): the write makes the session live.
    file.set_modified(SystemTime::now())
}

/// Result of a write attempt on an open descriptor.
enum Wrote {
    Done,
    /// The path no longer names this descriptor's file (gc or a destroy removed it): nothing written.
    Gone,
}

impl FilesStore {
    pub fn open(o: &FilesOptions) -> anyhow::Result<Self> {
        let name = format!("files://{}", o.dir.display());
        let md = fs::metadata(&o.dir).with_context(|| format!("{name}: directory {} is not accessible", o.dir.display()))?;
        if !md.is_dir() {
            return Err(anyhow!("{name}: {} is not a directory", o.dir.display()));
        }
        let c = std::ffi::CString::new(o.dir.as_os_str().as_encoded_bytes())?;
        // SAFETY: c is a valid NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
            return Err(anyhow!("{name}: directory {} is not writable", o.dir.display()));
        }
        Ok(FilesStore { opts: o.clone(), name, held: None })
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

    /// Error context for an operation (the caller adds which store it is).
    fn ctx(&self, what: &str, p: &Path) -> String {
        format!("{what} {}", p.display())
    }

    fn ensure_dir(&self, id: &SessionId) -> anyhow::Result<()> {
        if self.opts.depth > 0 {
            let d = self.dir_for(id);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .with_context(|| self.ctx("cannot create directory", &d))?;
        }
        Ok(())
    }

    fn is_live(md: &fs::Metadata, max_lifetime: Duration) -> bool {
        let age = md.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default();
        !lock_only(md) && age <= max_lifetime
    }

    /// Opens the session file read-write, creating it (as a lock-only placeholder) when missing.
    /// Returns the file and whether we created it.
    fn open_or_create(&self, path: &Path) -> std::io::Result<(File, bool)> {
        loop {
            match private::open(path, OpenOptions::new().read(true).write(true), self.opts.mode) {
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

    /// Whether `path` still names the file open as `f`.
    fn is_current(path: &Path, f: &File) -> std::io::Result<bool> {
        let md = f.metadata()?;
        Ok(matches!(fs::symlink_metadata(path), Ok(cur) if same_file(&cur, &md)))
    }

    /// One attempt to flock the current session file without waiting; None when busy. An error comes
    /// with what failed ("cannot open", "cannot create", "cannot lock").
    fn try_lock(&self, path: &Path) -> Result<Option<(File, bool)>, (&'static str, std::io::Error)> {
        loop {
            let (file, created) =
                self.open_or_create(path).map_err(|e| (if path.exists() { "cannot open" } else { "cannot create" }, e))?;
            // SAFETY: a valid open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Ok(None);
                }
                return Err(("cannot lock", err));
            }
            // The file may have been removed (gc, a destroy) while we waited: a lock on an unlinked
            // inode locks nothing, so start again on the current file.
            if Self::is_current(path, &file).map_err(|e| ("cannot lock", e))? {
                return Ok(Some((file, created)));
            }
        }
    }

    /// Finishes (or discards) a journal a killed writer left, under `file`'s OFD write lock.
    fn recover(path: &Path, file: &File) -> std::io::Result<()> {
        match read_journal(path)? {
            Journal::None => return Ok(()),
            Journal::Torn => {}
            Journal::Complete(data, md) => {
                apply(file, &data)?;
                file.set_modified(md.modified()?)?;
            }
        }
        match fs::remove_file(journal_path(path)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes `data` into the open session file `file` in place, journaled (see the module comment).
    fn write_journaled(&self, path: &Path, file: &File, data: &[u8]) -> std::io::Result<Wrote> {
        ofd_lock(file, libc::F_WRLCK)?;
        let r = (|| {
            if !Self::is_current(path, file)? {
                return Ok(Wrote::Gone);
            }
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
            let jp = journal_path(path);
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
            apply(file, data)?;
            fs::remove_file(&jp)?;
            Ok(Wrote::Done)
        })();
        let _ = ofd_lock(file, libc::F_UNLCK);
        r
    }

    /// A write without the session lock (locking off): on the current file, under the OFD lock only.
    fn write_unlocked(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        loop {
            let (file, _) = self.open_or_create(path)?;
            if let Wrote::Done = self.write_journaled(path, &file, data)? {
                return Ok(());
            }
        }
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
        // SAFETY: a valid open descriptor; the lock ends when `f` is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return false;
        }
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

impl Store for FilesStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.path_for(id);
        let mut f = match private::open(&path, OpenOptions::new().read(true), self.opts.mode) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot open", &path)),
        };
        // Not while one of our writers is in the middle of a write; and a killed writer's complete
        // journal is the session, whatever the file holds.
        ofd_lock(&f, libc::F_RDLCK).with_context(|| self.ctx("cannot lock", &path))?;
        let r = (|| {
            if let Journal::Complete(data, jmd) = read_journal(&path)? {
                return Ok(Self::is_live(&jmd, max_lifetime).then_some(data));
            }
            let md = f.metadata()?;
            if !Self::is_live(&md, max_lifetime) {
                return Ok(None);
            }
            let mut buf = Vec::with_capacity(md.len() as usize);
            f.read_to_end(&mut buf)?;
            Ok::<_, std::io::Error>(Some(buf))
        })();
        r.with_context(|| self.ctx("cannot read", &path))
    }

    fn lock_and_load(
        &mut self,
        id: &SessionId,
        _owner: &Token,
        _expire: Duration,
        max_lifetime: Duration,
    ) -> anyhow::Result<Acquire> {
        if self.holds(id) {
            return Ok(Acquire::Locked(self.load(id, max_lifetime)?));
        }
        self.held = None;
        self.ensure_dir(id)?;
        let path = self.path_for(id);
        let locked = self.try_lock(&path).map_err(|(what, e)| anyhow!(e).context(self.ctx(what, &path)))?;
        let Some((mut file, _created)) = locked else { return Ok(Acquire::Busy) };
        let data = (|| {
            // Whether we created the file says nothing about what it holds now: between our create
            // and our flock another request may have locked, written and released it. A file nobody
            // wrote is lock-only (mtime 0) and reads as no session below.
            ofd_lock(&file, libc::F_WRLCK)?;
            let r = Self::recover(&path, &file);
            ofd_lock(&file, libc::F_UNLCK)?;
            r?;
            let md = file.metadata()?;
            if !Self::is_live(&md, max_lifetime) {
                return Ok(None);
            }
            let mut buf = Vec::with_capacity(md.len() as usize);
            file.read_to_end(&mut buf)?;
            Ok::<_, std::io::Error>(Some(buf))
        })()
        .with_context(|| self.ctx("cannot read", &path))?;
        self.held = Some(Held { id: id.clone(), file });
        Ok(Acquire::Locked(data))
    }

    /// Woken by the kernel when the holder's flock goes (ours or PHP's handler's), instead of polling.
    fn records_holders(&self) -> bool {
        false
    }

    fn wait_for_release(&mut self, id: &SessionId, deadline: Instant, _attempt: u32) -> anyhow::Result<()> {
        let path = self.path_for(id);
        kwait::wait_until_free(&path, Kind::Flock, deadline).with_context(|| self.ctx("cannot wait for the lock on", &path))?;
        Ok(())
    }

    fn save(&mut self, id: &SessionId, data: &[u8], _ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        let path = self.path_for(id);
        let Some(h) = self.release(id) else {
            if owner.is_some() {
                return Ok(Saved::LockLost);
            }
            self.ensure_dir(id)?;
            self.write_unlocked(&path, data).with_context(|| self.ctx("cannot write", &path))?;
            return Ok(Saved::Done);
        };
        let mut file = h.file;
        loop {
            match self.write_journaled(&path, &file, data).with_context(|| self.ctx("cannot write", &path))? {
                Wrote::Done => return Ok(Saved::Done),
                // Our file was removed under the lock (gc of an expired or lock-only file, a destroy by
                // PHP's handler): lock the current one, unless another request holds it by now.
                Wrote::Gone => match self.try_lock(&path).map_err(|(_, e)| anyhow!(e).context(self.ctx("cannot write", &path)))? {
                    Some((f, _)) => file = f,
                    None => return Ok(Saved::LockLost),
                },
            }
        }
    }

    fn touch(&mut self, id: &SessionId, _ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        if owner.is_some() && !self.holds(id) {
            return Ok(Saved::LockLost);
        }
        let path = self.path_for(id);
        match private::open(&path, File::options().write(true), self.opts.mode) {
            // A lock-only file stays one: touching it would create an empty session.
            Ok(f) if !f.metadata().map(|m| lock_only(&m)).unwrap_or(true) => {
                f.set_modified(SystemTime::now()).with_context(|| self.ctx("cannot update the time of", &path))?
            }
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot open", &path)),
        }
        self.release(id);
        Ok(Saved::Done)
    }

    fn unlock(&mut self, id: &SessionId, _owner: &Token) -> anyhow::Result<()> {
        self.release(id);
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId, _owner: Option<&Token>) -> anyhow::Result<()> {
        let path = self.path_for(id);
        // The session file is its lock: deleting a file another request holds would free that lock
        // (the next request creates a new file and locks it). Refuse instead, as loudly as any error.
        let _guard = match self.release(id) {
            Some(h) => Some(h.file),
            None => match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
                Ok(f) => {
                    // SAFETY: a valid open descriptor; the lock ends when `f` is closed, after the unlink.
                    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                        return Err(anyhow!("{} is locked by another request", path.display()));
                    }
                    Some(f)
                }
                Err(_) => None,
            },
        };
        for p in [&path, &journal_path(&path)] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot delete", p)),
            }
        }
        Ok(())
    }

    fn exists(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<bool> {
        Ok(match fs::symlink_metadata(self.path_for(id)) {
            Ok(md) => md.is_file() && Self::is_live(&md, max_lifetime),
            Err(_) => false,
        })
    }

    fn gc(&mut self, max_lifetime: Duration) -> anyhow::Result<u64> {
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
        walk(&self.opts.dir, self.opts.depth, max_lifetime, &mut n)
            .context("gc cannot scan the directory")?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{conformance, woken_at_release, TempDir};

    fn opts(dir: &Path, depth: u8) -> FilesOptions {
        FilesOptions { dir: dir.to_path_buf(), depth, mode: 0o600 }
    }

    /// Writes a file as PHP's handler creates them: 0600 (fs::write would give 0644 under umask 022).
    fn write_0600(p: &Path, data: &[u8]) {
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(p).unwrap().write_all(data).unwrap();
    }

    #[test]
    fn conforms() {
        for depth in [0, 2] {
            let dir = TempDir::new("files-conf");
            assert!(conformance(|| Box::new(crate::store::legacy::Legacy(FilesStore::open(&opts(dir.path(), depth)).unwrap())) as Box<dyn crate::store::Store>), "gc raced between scan and unlink");
        }
    }

    /// A waiter is woken by the holder's flock release (`woken_at_release`), and with nobody holding
    /// the lock a wait ends at once.
    #[test]
    fn waiters_wake_at_the_release() {
        let dir = TempDir::new("files-wake");
        let id = SessionId::parse(b"wakeme").unwrap();
        let open = || Box::new(crate::store::legacy::Legacy(FilesStore::open(&opts(dir.path(), 0)).unwrap())) as Box<dyn crate::store::Store>;
        let (_a, mut b, tb) = woken_at_release(open(), open(), &id);
        b.unlock(&id, &tb).unwrap();
        let t0 = Instant::now();
        crate::store::Store::wait_for_release(&mut *b, &id, &crate::store::Busy::default(), t0 + Duration::from_secs(5), 0).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn same_layout_as_php() {
        let dir = TempDir::new("files-layout");
        let mut s = FilesStore::open(&opts(dir.path(), 2)).unwrap();
        let id = SessionId::parse(b"abc123").unwrap();
        s.save(&id, b"a|i:1;", Duration::from_secs(60), None).unwrap();
        assert_eq!(fs::read(dir.path().join("a/b/sess_abc123")).unwrap(), b"a|i:1;");
        // And a file PHP wrote is read back.
        write_0600(&dir.path().join("a/b/sess_abc999"), b"php|s:1:\"x\";");
        let id2 = SessionId::parse(b"abc999").unwrap();
        assert_eq!(s.load(&id2, Duration::from_secs(60)).unwrap().unwrap(), b"php|s:1:\"x\";");
    }

    #[test]
    fn longest_storable_ids_are_written() {
        let dir = TempDir::new("files-longid");
        let mut s = FilesStore::open(&opts(dir.path(), 0)).unwrap();
        // NAME_MAX is 255: "sess_" + 250 characters is the longest file name PHP's handler can store.
        let id = SessionId::parse("L".repeat(250).as_bytes()).unwrap();
        let t = Token::new();
        assert_eq!(s.lock_and_load(&id, &t, Duration::from_secs(1), Duration::from_secs(60)).unwrap(), Acquire::Locked(None));
        assert_eq!(s.save(&id, b"x|i:1;", Duration::from_secs(60), Some(&t)).unwrap(), Saved::Done);
        assert_eq!(s.load(&id, Duration::from_secs(60)).unwrap().unwrap(), b"x|i:1;");
    }

    #[test]
    fn lock_only_file_reads_as_absent_and_stays_for_gc() {
        let dir = TempDir::new("files-unlock");
        let mut s = FilesStore::open(&opts(dir.path(), 0)).unwrap();
        let id = SessionId::parse(b"neverwritten").unwrap();
        let t = Token::new();
        let life = Duration::from_secs(60);
        assert_eq!(s.lock_and_load(&id, &t, Duration::from_secs(1), life).unwrap(), Acquire::Locked(None));
        // A lazy_write touch of the never-written session does not make it a session.
        assert_eq!(s.touch(&id, life, Some(&t)).unwrap(), Saved::Done);
        // Kept (a PHP request may be blocked in flock on it), but it is no session.
        let p = dir.path().join("sess_neverwritten");
        assert!(p.exists());
        assert_eq!(s.load(&id, life).unwrap(), None);
        assert!(!s.exists(&id, life).unwrap());
        assert_eq!(s.lock_and_load(&id, &t, Duration::from_secs(1), life).unwrap(), Acquire::Locked(None));
        s.unlock(&id, &t).unwrap();
        // gc judges it by when it was made, not by its mtime of 0: a fresh one stays.
        assert_eq!(s.gc(life).unwrap(), 0);
        assert!(p.exists());
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(s.gc(Duration::from_secs(1)).unwrap(), 0, "not counted as a session");
        assert!(!p.exists());
    }

    #[test]
    fn writes_keep_the_inode_a_waiter_holds() {
        let dir = TempDir::new("files-inode");
        let mut s = FilesStore::open(&opts(dir.path(), 0)).unwrap();
        let id = SessionId::parse(b"inode").unwrap();
        let life = Duration::from_secs(60);
        s.save(&id, b"a much longer first version", life, None).unwrap();
        let p = dir.path().join("sess_inode");
        // What PHP's handler does: open, then (later) flock on that descriptor.
        let waiter = File::open(&p).unwrap();
        let t = Token::new();
        assert!(matches!(s.lock_and_load(&id, &t, life, life).unwrap(), Acquire::Locked(Some(_))));
        assert_eq!(s.save(&id, b"short", life, Some(&t)).unwrap(), Saved::Done);
        s.save(&id, b"unlocked", life, None).unwrap();
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
        let mut s = FilesStore::open(&opts(dir.path(), 0)).unwrap();
        let id = SessionId::parse(b"torn").unwrap();
        let life = Duration::from_secs(60);
        s.save(&id, b"old|s:12:\"old contents\";", life, None).unwrap();
        let p = dir.path().join("sess_torn");
        // Killed after the journal was complete, in the middle of the in-place rewrite.
        let new = b"new|s:3:\"new\";";
        write_0600(&journal_path(&p), &journal_bytes(&p, new));
        fs::OpenOptions::new().write(true).open(&p).unwrap().write_all_at(b"new|s:", 0).unwrap();
        // A reader without the lock reads the journal's bytes, not the torn file.
        assert_eq!(s.load(&id, life).unwrap().as_deref(), Some(&new[..]));
        // The next lock holder replays it.
        let t = Token::new();
        assert_eq!(s.lock_and_load(&id, &t, life, life).unwrap(), Acquire::Locked(Some(new.to_vec())));
        assert_eq!(fs::read(&p).unwrap(), new);
        assert!(!journal_path(&p).exists());
        s.unlock(&id, &t).unwrap();

        // Killed while writing the journal: the file is untouched and the torn journal is dropped.
        let full = journal_bytes(&p, b"never|i:1;");
        write_0600(&journal_path(&p), &full[..full.len() - 3]);
        assert_eq!(s.load(&id, life).unwrap().as_deref(), Some(&new[..]));
        assert_eq!(s.lock_and_load(&id, &t, life, life).unwrap(), Acquire::Locked(Some(new.to_vec())));
        assert!(!journal_path(&p).exists());
        s.unlock(&id, &t).unwrap();
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = TempDir::new("files-symlink");
        let target = dir.path().join("target");
        fs::write(&target, b"secret").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("sess_evil")).unwrap();
        let mut s = FilesStore::open(&opts(dir.path(), 0)).unwrap();
        let id = SessionId::parse(b"evil").unwrap();
        assert!(s.load(&id, Duration::from_secs(60)).is_err());
        assert!(s.lock_and_load(&id, &Token::new(), Duration::from_secs(1), Duration::from_secs(60)).is_err());
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
