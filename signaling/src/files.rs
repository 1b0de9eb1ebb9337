//! Opening the sidecar's private files (call journal, CDRs): mode 0600, never through a symbolic
//! link, only regular files. The journal's SDP copies carry SDES master keys; a link planted at
//! one of these paths must not make the sidecar (often root) read or overwrite another file.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of every file the sidecar creates.
pub const PRIVATE_MODE: u32 = 0o600;

/// An error naming `path` and what was refused.
fn refused(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: refusing {what} (expected a regular file; remove it)", path.display()),
    )
}

/// Names the path in an I/O error, and says "a symbolic link" for `ELOOP` (`O_NOFOLLOW`).
fn named(path: &Path, op: &str, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        refused(path, "a symbolic link")
    } else {
        io::Error::new(e.kind(), format!("{}: {op}: {e}", path.display()))
    }
}

/// Refuses anything but a regular file; makes it private (a file from an older build may be
/// world-readable).
fn check_regular(path: &Path, f: File) -> io::Result<File> {
    let md = f.metadata().map_err(|e| named(path, "stat", e))?;
    if !md.file_type().is_file() {
        return Err(refused(path, "something that is not a regular file"));
    }
    if md.permissions().mode() & 0o077 != 0 {
        f.set_permissions(Permissions::from_mode(PRIVATE_MODE)).map_err(|e| named(path, "chmod 0600", e))?;
    }
    Ok(f)
}

/// Opens `path` for appending, creating it with mode 0600.
pub fn open_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| named(path, "open", e))?;
    check_regular(path, f)
}

/// Opens an existing `path` for reading; `Ok(None)` if there is none.
pub fn open_read(path: &Path) -> io::Result<Option<File>> {
    match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => check_regular(path, f).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(named(path, "open", e)),
    }
}

/// Creates `path` afresh (mode 0600, `O_EXCL`) for writing, after removing whatever a crash left
/// there (a link is removed itself, never followed).
pub fn create_fresh(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(named(path, "remove stale file", e)),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| named(path, "create", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("xtrunk-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn created_private_and_links_refused() {
        let p = tmp("append");
        drop(open_append(&p).unwrap());
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        drop(open_append(&p).unwrap());
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "tightened");
        let victim = tmp("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = tmp("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_append(&link).unwrap_err().to_string();
        assert!(e.contains(&*link.to_string_lossy()) && e.contains("symbolic link"), "{e}");
        assert!(open_read(&link).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        drop(create_fresh(&link).unwrap());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "the link was replaced, not followed");
        assert!(open_read(&tmp("none")).unwrap().is_none());
        for f in [p, victim, link] {
            let _ = std::fs::remove_file(f);
        }
    }
}
