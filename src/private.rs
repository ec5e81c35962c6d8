//! Session data is a secret, and a file another local user planted would let them read or forge it. So
//! every file an engine opens or creates (the SQLite database and its `-wal`/`-shm`, the files engine's
//! `sess_<id>` and journal files) is opened without following a symlink (`O_NOFOLLOW`), created 0600
//! (or the files engine's `mode`), and refused unless it is a regular file owned by the running user
//! (or root) with no permission bits beyond the allowed ones. PHP's own files handler refuses files of
//! another owner too; it does not check modes.
//!
//! Running as root: root's files are trusted like the running user's (root could read anything
//! anyway), and root is held to the same rule — a file of another owner is refused, also for root,
//! where PHP's handler would accept anything. Run CLI jobs as the web server's user.

use std::ffi::CStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The effective uid of this process (a php-fpm worker's pool user).
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// "uid 33 (www-data)", or "uid 1234" when the user has no name.
pub fn user(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: passwd is plain data; getpwuid_r writes into pw and buf (of the given length) only.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() && !pw.pw_name.is_null() {
        // SAFETY: getpwuid_r succeeded: pw_name points to a NUL-terminated string in buf.
        let name = unsafe { CStr::from_ptr(pw.pw_name) }.to_string_lossy();
        return format!("uid {uid} ({name})");
    }
    format!("uid {uid}")
}

fn refused(msg: String) -> io::Error {
    io::Error::new(ErrorKind::PermissionDenied, msg)
}

/// The check itself, on the metadata of a file already open (fstat: no race with a rename).
/// `allowed`: the permission bits the file may have (0600, or the files engine's `mode`).
pub fn check_file(path: &Path, md: &fs::Metadata, allowed: u32) -> io::Result<()> {
    let me = euid();
    let mode = md.mode() & 0o7777;
    let p = path.display();
    if !md.is_file() {
        return Err(refused(format!("refusing {p}: not a regular file")));
    }
    if md.uid() != me && md.uid() != 0 {
        return Err(refused(format!(
            "refusing {p}: it is owned by {}, mode {mode:04o}, and this process runs as {}; another user may have \
             planted it: remove it, or if it is yours, `chown {me} {p}` and `chmod {allowed:04o} {p}`",
            user(md.uid()),
            user(me)
        )));
    }
    if mode & !allowed & 0o7777 != 0 {
        return Err(refused(format!(
            "refusing {p}: mode {mode:04o} (owner {}) gives access beyond {allowed:04o}; session data is secret: \
             `chmod {allowed:04o} {p}`",
            user(md.uid())
        )));
    }
    Ok(())
}

/// Explains an open that failed: a symlink (ELOOP under O_NOFOLLOW), or a file we may not open (EACCES),
/// with its owner and mode. Other errors pass unchanged.
pub fn explain_open_error(path: &Path, e: io::Error) -> io::Error {
    // Only these errors are explained (a missing file, the common case, costs no stat).
    if !matches!(e.raw_os_error(), Some(libc::ELOOP | libc::EACCES | libc::EPERM)) {
        return e;
    }
    let p = path.display();
    match (e.raw_os_error(), fs::symlink_metadata(path)) {
        (Some(libc::ELOOP), Ok(md)) if md.file_type().is_symlink() => {
            let to = fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_else(|_| "?".into());
            refused(format!(
                "refusing {p}: it is a symbolic link (to {to}, owned by {}); symlinks are never followed: remove it",
                user(md.uid())
            ))
        }
        (Some(libc::EACCES | libc::EPERM), Ok(md)) if md.uid() != euid() => refused(format!(
            "{e}: {p} is owned by {}, mode {:04o}, and this process runs as {}: give the file to the user PHP runs \
             as (`chown`), or remove it",
            user(md.uid()),
            md.mode() & 0o7777,
            user(euid())
        )),
        _ => e,
    }
}

/// Checks `path` as `open` does, through an `O_PATH` descriptor: the one kind whose close leaves this
/// process's POSIX record locks on the file alone. SQLite holds such locks on a database and its
/// `-shm` for as long as a connection is open; closing any other descriptor of those files in the
/// same process would drop them silently, and another process would then take the database for
/// unused (checkpoint and delete its WAL under a live connection: a corrupt database, lost writes).
pub fn inspect(path: &Path, allowed: u32) -> io::Result<()> {
    let f = OpenOptions::new().read(true).custom_flags(libc::O_PATH | libc::O_NOFOLLOW).open(path)?;
    let md = f.metadata()?;
    if md.file_type().is_symlink() {
        return Err(explain_open_error(path, io::Error::from_raw_os_error(libc::ELOOP)));
    }
    // What `open` for reading would have met first: a file we may not read at all.
    if md.uid() != euid() {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
        // SAFETY: c is a valid NUL-terminated path; faccessat only reads it.
        if unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::R_OK, libc::AT_EACCESS) } != 0 {
            return Err(explain_open_error(path, io::Error::last_os_error()));
        }
    }
    check_file(path, &md, allowed)
}

/// Opens `path` with `opts` plus O_NOFOLLOW, then checks it (see `check_file`).
pub fn open(path: &Path, opts: &mut OpenOptions, allowed: u32) -> io::Result<File> {
    let f = opts.custom_flags(libc::O_NOFOLLOW).open(path).map_err(|e| explain_open_error(path, e))?;
    check_file(path, &f.metadata()?, allowed)?;
    Ok(f)
}

/// A directory only this user may enter: created 0700 when missing, then checked (not a symlink, a
/// directory, owned by the running user, no group/other bits). For the zero-config default in the
/// shared temp dir, where anyone could have made it first.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let md = fs::symlink_metadata(dir)?;
    let d = dir.display();
    let mode = md.mode() & 0o7777;
    if md.file_type().is_symlink() {
        return Err(refused(format!("refusing directory {d}: it is a symbolic link; another user may have planted it: remove it")));
    }
    if !md.is_dir() {
        return Err(refused(format!("refusing {d}: not a directory; remove it")));
    }
    if md.uid() != euid() {
        return Err(refused(format!(
            "refusing directory {d}: it is owned by {}, mode {mode:04o}, and this process runs as {}; another user may \
             have made it: remove it (or set session.save_path)",
            user(md.uid()),
            user(euid())
        )));
    }
    if mode & 0o077 != 0 {
        return Err(refused(format!("refusing directory {d}: mode {mode:04o} lets other users in: `chmod 0700 {d}`")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn symlinks_modes_and_private_dirs() {
        let dir = TempDir::new("private");
        let f = dir.path().join("f");
        fs::write(&f, b"x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let e = open(&f, OpenOptions::new().read(true), 0o600).unwrap_err();
        assert!(e.to_string().contains("mode 0644") && e.to_string().contains("chmod 0600"), "{e}");
        assert!(open(&f, OpenOptions::new().read(true), 0o644).is_ok());
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(open(&f, OpenOptions::new().read(true), 0o600).is_ok());

        let l = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let e = open(&l, OpenOptions::new().read(true), 0o600).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");

        let p = dir.path().join("priv");
        ensure_private_dir(&p).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o700);
        ensure_private_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure_private_dir(&p).unwrap_err().to_string().contains("mode 0777"));
        let pl = dir.path().join("privlink");
        std::os::unix::fs::symlink(&p, &pl).unwrap();
        assert!(ensure_private_dir(&pl).unwrap_err().to_string().contains("symbolic link"));
        assert!(user(0).contains("root"));
    }
}
