//! PHP's own on-disk format: one `sess_<id>` file per session holding the encoded bytes, in the same
//! directory layout (`depth` levels of one-character sub-directories), so a site can switch from the
//! `files` handler and back without logging anyone out.
//!
//! Locking is `flock(LOCK_EX)` on the session file, as PHP's handler does, so a lock dies with its
//! process. Unlike PHP, waits are bounded, writes are atomic (temp file + rename: a crash never leaves
//! half a session), files older than gc_maxlifetime read as expired, and a file created only to lock a
//! session that was never written is removed again.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};

use super::{Acquire, Saved, Store};
use crate::dsn::FilesOptions;
use crate::id::SessionId;
use crate::lock::Token;

pub struct FilesStore {
    opts: FilesOptions,
    name: String,
    /// The session whose file we hold locked, the open descriptor, and whether we created the file.
    held: Option<Held>,
}

struct Held {
    id: SessionId,
    file: File,
    created: bool,
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
        age <= max_lifetime
    }

    /// Atomically replaces the session file: write a temp file beside it, then rename over.
    fn replace(&self, id: &SessionId, data: &[u8]) -> anyhow::Result<()> {
        self.ensure_dir(id)?;
        let path = self.path_for(id);
        // Not named after the id: ".sess_" + a 250-character id + a token would pass NAME_MAX.
        let tmp = self.dir_for(id).join(format!(".sess_{}.tmp", Token::new().as_str()));
        let r = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(self.opts.mode)
                .open(&tmp)?;
            f.write_all(data)?;
            drop(f);
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            return Err(anyhow!(e)).with_context(|| self.ctx("cannot write", &path));
        }
        Ok(())
    }

    /// Releases the lock on a session this request did not write. A file we created only to lock it is
    /// removed while we still hold the lock (waiters notice the unlinked inode and retry on a fresh
    /// file), so locking never creates a session.
    fn release_unwritten(&mut self, id: &SessionId) {
        if let Some(h) = self.release(id) {
            if h.created && h.file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
                let _ = fs::remove_file(self.path_for(id));
            }
        }
    }

    /// Drops our lock on `id` (closing the descriptor releases the flock).
    fn release(&mut self, id: &SessionId) -> Option<Held> {
        match &self.held {
            Some(h) if &h.id == id => self.held.take(),
            _ => None,
        }
    }
}

impl Store for FilesStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.path_for(id);
        let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot open", &path)),
        };
        let md = f.metadata()?;
        if !md.is_file() || !Self::is_live(&md, max_lifetime) {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(md.len() as usize);
        f.read_to_end(&mut buf).with_context(|| self.ctx("cannot read", &path))?;
        Ok(Some(buf))
    }

    fn lock_and_load(
        &mut self,
        id: &SessionId,
        _owner: &Token,
        _expire: Duration,
        max_lifetime: Duration,
    ) -> anyhow::Result<Acquire> {
        if self.held.as_ref().is_some_and(|h| &h.id == id) {
            return Ok(Acquire::Locked(self.load(id, max_lifetime)?));
        }
        self.held = None;
        self.ensure_dir(id)?;
        let path = self.path_for(id);
        loop {
            let (mut file, created) = match OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(f) => (f, false),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    match OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .mode(self.opts.mode)
                        .open(&path)
                    {
                        Ok(f) => (f, true),
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot create", &path)),
                    }
                }
                Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot open", &path)),
            };
            // SAFETY: a valid open descriptor.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Ok(Acquire::Busy);
                }
                return Err(anyhow!(err)).with_context(|| self.ctx("cannot lock", &path));
            }
            // The file may have been replaced (a write renames over it) or removed while we waited:
            // a lock on a stale inode locks nothing, so start again on the current file.
            let md = file.metadata()?;
            match fs::symlink_metadata(&path) {
                Ok(cur) if cur.ino() == md.ino() && cur.dev() == md.dev() => {}
                _ => continue,
            }
            let data = if created || !Self::is_live(&md, max_lifetime) {
                None
            } else {
                let mut buf = Vec::with_capacity(md.len() as usize);
                file.read_to_end(&mut buf).with_context(|| self.ctx("cannot read", &path))?;
                Some(buf)
            };
            self.held = Some(Held { id: id.clone(), file, created });
            return Ok(Acquire::Locked(data));
        }
    }

    fn save(&mut self, id: &SessionId, data: &[u8], _ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        if owner.is_some() && !self.held.as_ref().is_some_and(|h| &h.id == id) {
            return Ok(Saved::LockLost);
        }
        self.replace(id, data)?;
        self.release(id);
        Ok(Saved::Done)
    }

    fn touch(&mut self, id: &SessionId, _ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        if owner.is_some() && !self.held.as_ref().is_some_and(|h| &h.id == id) {
            return Ok(Saved::LockLost);
        }
        let path = self.path_for(id);
        match File::options().write(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f.set_modified(SystemTime::now()).with_context(|| self.ctx("cannot update the time of", &path))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot open", &path)),
        }
        self.release_unwritten(id);
        Ok(Saved::Done)
    }

    fn unlock(&mut self, id: &SessionId, _owner: &Token) -> anyhow::Result<()> {
        self.release_unwritten(id);
        Ok(())
    }

    fn destroy(&mut self, id: &SessionId, _owner: Option<&Token>) -> anyhow::Result<()> {
        let path = self.path_for(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!(e)).with_context(|| self.ctx("cannot delete", &path)),
        }
        self.release(id);
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
                    && (name.starts_with("sess_") || (name.starts_with(".sess_") && name.ends_with(".tmp")))
                    && !FilesStore::is_live(&md, max_lifetime)
                {
                    // Like PHP's handler: an expired file goes even if a request still holds it.
                    if fs::remove_file(entry.path()).is_ok() {
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
    use crate::store::tests::{conformance, TempDir};

    fn opts(dir: &Path, depth: u8) -> FilesOptions {
        FilesOptions { dir: dir.to_path_buf(), depth, mode: 0o600 }
    }

    #[test]
    fn conforms() {
        for depth in [0, 2] {
            let dir = TempDir::new("files-conf");
            conformance(|| Box::new(FilesStore::open(&opts(dir.path(), depth)).unwrap()));
        }
    }

    #[test]
    fn same_layout_as_php() {
        let dir = TempDir::new("files-layout");
        let mut s = FilesStore::open(&opts(dir.path(), 2)).unwrap();
        let id = SessionId::parse(b"abc123").unwrap();
        s.save(&id, b"a|i:1;", Duration::from_secs(60), None).unwrap();
        assert_eq!(fs::read(dir.path().join("a/b/sess_abc123")).unwrap(), b"a|i:1;");
        // And a file PHP wrote is read back.
        fs::write(dir.path().join("a/b/sess_abc999"), b"php|s:1:\"x\";").unwrap();
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
    fn lock_only_file_is_removed_on_unlock() {
        let dir = TempDir::new("files-unlock");
        let mut s = FilesStore::open(&opts(dir.path(), 0)).unwrap();
        let id = SessionId::parse(b"neverwritten").unwrap();
        let t = Token::new();
        assert_eq!(s.lock_and_load(&id, &t, Duration::from_secs(1), Duration::from_secs(60)).unwrap(), Acquire::Locked(None));
        assert!(dir.path().join("sess_neverwritten").exists());
        s.unlock(&id, &t).unwrap();
        assert!(!dir.path().join("sess_neverwritten").exists());
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
