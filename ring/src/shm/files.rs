//! The ring file on disk: refusing what is not ours at its path, and watching it for the
//! datapath (deleted, replaced, corrupt header) and for signaling (stale).
//!
//! # Safety
//!
//! One `unsafe` call, `geteuid(2)`, which has no arguments and no failure mode.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{owner_alive, validate, Error, Mapping, Role};

/// What is at `path`, if anything, provided it is a regular file owned by us (checked without
/// following a symbolic link); anything else is [`Error::NotOurs`].
pub(super) fn check_ours(path: &Path) -> Result<bool, Error> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(Error::Io { path: path.to_owned(), op: "lstat", source }),
    };
    let t = md.file_type();
    let what = if t.is_symlink() {
        "a symbolic link".to_string()
    } else if t.is_dir() {
        "a directory".to_string()
    } else if t.is_fifo() || t.is_socket() || t.is_block_device() || t.is_char_device() {
        "a special file".to_string()
    } else {
        // SAFETY: geteuid(2) takes no arguments, touches no memory and cannot fail.
        let me = unsafe { libc::geteuid() };
        if md.uid() == me {
            return Ok(true);
        }
        format!("a file owned by uid {} (we are uid {me})", md.uid())
    };
    Err(Error::NotOurs { path: path.to_owned(), what })
}

/// Opens an existing ring file for reading and writing, never through a symbolic link, and only
/// if it is a regular file of ours.
pub(super) fn open_existing(path: &Path) -> Result<File, Error> {
    if !check_ours(path)? {
        return Err(Error::NotFound { path: path.to_owned() });
    }
    match OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound { path: path.to_owned() }),
        // Swapped for a symbolic link since the check.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Err(Error::NotOurs { path: path.to_owned(), what: "a symbolic link".into() })
        }
        Err(source) => Err(Error::Io { path: path.to_owned(), op: "open", source }),
    }
}

/// [`Shm::verify`] and [`Shm::is_stale`] for a split `Shm` (it keeps the mapping alive).
pub struct FileWatch {
    pub(super) map: Arc<Mapping>,
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatch").field("path", &self.map.path).finish()
    }
}

impl FileWatch {
    /// See [`Shm::verify`].
    pub fn verify(&self) -> Result<(), Error> {
        verify(&self.map)
    }

    /// See [`Shm::is_stale`].
    pub fn is_stale(&self) -> bool {
        stale(&self.map)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.map.path
    }
}

pub(super) fn verify(map: &Mapping) -> Result<(), Error> {
    let path = &map.path;
    let file = open_existing(path)?;
    let md = file.metadata().map_err(|source| Error::Io { path: path.clone(), op: "stat", source })?;
    if (md.dev(), md.ino()) != map.dev_ino {
        return Err(Error::Replaced { path: path.clone() });
    }
    validate(path, &file).map(|_| ())
}

pub(super) fn stale(map: &Mapping) -> bool {
    let word = map.owner(Role::Datapath).load(Ordering::Acquire);
    if !owner_alive(word) {
        return true;
    }
    match std::fs::symlink_metadata(&map.path) {
        Ok(md) => (md.dev(), md.ino()) != map.dev_ino,
        Err(_) => true,
    }
}
