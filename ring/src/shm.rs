//! The shared-memory file holding the two rings, its header, and role ownership.
//!
//! # File layout
//!
//! ```text
//! 0       HeaderStatic: magic "XTRKRING", ABI version, size table, geometry (written once)
//! 256     Owners: datapath owner, signaling owner (atomics: pid | start-time << 32)
//! 4096    commands ring: RingControl (head, tail on separate cache lines), then slots
//! 4096·k  events ring (page aligned): RingControl, then slots
//! ```
//!
//! The header is validated on [`Shm::attach`]: magic, ABI version, then every entry of the size
//! table (header, control block, slot, each wire struct) against this build's sizes, then the
//! geometry (capacities powers of two, offsets and total size consistent with the file length).
//! A mismatch is an [`Error`] naming what differs — as rtpengine's kernel module refuses a daemon
//! whose message sizes differ.
//!
//! # Roles
//!
//! Each role (datapath, signaling) is owned by at most one live process. An owner word packs the
//! pid with the low 32 bits of the process start time (`/proc/<pid>/stat` field 22), so a pid
//! reused by another process (or by a restarted container whose pid is 1 again) is not mistaken
//! for the owner. A role whose owner is dead (`kill(pid, 0)` fails with `ESRCH`, or the start time
//! differs) is taken over with a compare-and-swap. The role is released when the last handle of
//! the mapping (the [`Shm`] and every end made from it) is dropped.
//!
//! # Safety
//!
//! Usage rules of this module (on top of those of [`crate::spsc`]):
//!
//! 1. The file is created by [`Shm::create`] on a temporary name, fully initialised (zeroed
//!    rings, header written with `pwrite` before mapping), then atomically renamed into place, so
//!    an attacher never maps a half-initialised file.
//! 2. The header is read with `pread` and validated before the file is mapped; the mapping is
//!    sized from the validated geometry and the file length is checked to match, so every pointer
//!    derived from it stays in bounds. Nothing in this crate truncates a mapped file; an outside
//!    process truncating it would make accesses fault (SIGBUS), which no mmap user can prevent.
//! 3. Ends are only handed out after the caller's process won the role's owner word, which
//!    upholds SPSC usage rule 1 across processes; [`Shm::datapath_end`] / [`Shm::signaling_end`]
//!    consume the [`Shm`], so one process cannot make two ends of the same role from it.
//! 4. Shared bytes are only touched through atomics (owner words, ring positions) or through the
//!    SPSC protocol (slots), never through `&`/`&mut` references to plain data.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use memmap2::MmapRaw;

use crate::ends::{CommandReceiver, CommandSender, EventReceiver, EventSender, Receiver, Sender};
use crate::spsc::{self, Backing, LayoutError, CONTROL_SIZE};
use crate::wire::{Slot, WIRE_SIZES};

mod files;

pub use files::FileWatch;
use files::{check_ours, open_existing, stale, verify};

/// The file's magic bytes.
pub const MAGIC: [u8; 8] = *b"XTRKRING";
/// ABI version; bump on any change of layout or semantics.
pub const ABI_VERSION: u32 = 5;
/// Bytes reserved for the header; the commands ring starts here.
pub const HEADER_REGION: usize = 4096;
/// Offset of the owner words.
const OWNERS_OFFSET: usize = 256;
/// Largest ring capacity accepted (slots).
pub const MAX_CAPACITY: usize = 1 << 20;
/// Default path of the shared-memory file.
pub const DEFAULT_PATH: &str = "/dev/shm/xtrunk";

/// The write-once part of the header. All integers: read with `pread` and validated.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct HeaderStatic {
    magic: [u8; 8],
    abi_version: u32,
    /// size_of::<HeaderStatic>()
    static_size: u32,
    /// HEADER_REGION
    header_region: u32,
    /// size_of::<RingControl>()
    control_size: u32,
    /// WIRE_SIZES, in order.
    wire_sizes: [u32; WIRE_SIZES.len()],
    commands_capacity: u32,
    events_capacity: u32,
    /// Zero; keeps the u64s aligned with an odd number of wire sizes.
    reserved: u32,
    commands_offset: u64,
    events_offset: u64,
    total_size: u64,
}

/// Owner words: `pid as u32 | (start_time as u32) << 32`, 0 = none.
#[repr(C)]
struct Owners {
    datapath: AtomicU64,
    signaling: AtomicU64,
}

const _: () = {
    assert!(std::mem::size_of::<HeaderStatic>() <= OWNERS_OFFSET);
    assert!(OWNERS_OFFSET + std::mem::size_of::<Owners>() <= HEADER_REGION);
    assert!(OWNERS_OFFSET.is_multiple_of(8));
};

/// Errors of creating, attaching and splitting the shared-memory file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No file at the path: the datapath (which creates it) is not running.
    #[error("ring not found at {} — is the datapath running?", path.display())]
    NotFound {
        /// The path tried.
        path: PathBuf,
    },
    /// A system call on the file failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is shorter than its header says (or than a header).
    #[error("{}: file is {len} bytes, expected {expected}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The length required.
        expected: u64,
    },
    /// The file does not start with the magic: not a ring file, or corrupt.
    #[error("{}: bad magic {found:02x?}, expected \"XTRKRING\"", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first 8 bytes found.
        found: [u8; 8],
    },
    /// The file was made by a build with another ABI version.
    #[error("{}: ABI version {theirs}, this build speaks {ours}", path.display())]
    AbiVersion {
        /// The file.
        path: PathBuf,
        /// Our version.
        ours: u32,
        /// The file's version.
        theirs: u32,
    },
    /// An entry of the size table differs: the two builds disagree on a struct's size.
    #[error("{}: size of {what} is {theirs} in the file, {ours} in this build", path.display())]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Which struct.
        what: &'static str,
        /// Our size.
        ours: u64,
        /// The file's size.
        theirs: u64,
    },
    /// Capacities, offsets or total size in the header are inconsistent.
    #[error("{}: bad geometry: {detail}", path.display())]
    Geometry {
        /// The file.
        path: PathBuf,
        /// What is inconsistent.
        detail: String,
    },
    /// A requested ring capacity is not a power of two in 1..=MAX_CAPACITY.
    #[error("ring capacity {0} must be a power of two between 1 and {MAX_CAPACITY}")]
    Capacity(usize),
    /// Another live process owns the role.
    #[error("{}: the {role} role is held by live process {pid}", path.display())]
    RoleTaken {
        /// The file.
        path: PathBuf,
        /// "datapath" or "signaling".
        role: &'static str,
        /// The owner's pid.
        pid: i32,
    },
    /// The file exists but the datapath that created it is gone.
    #[error("{}: the datapath that created it (pid {pid}) is not running", path.display())]
    DatapathNotRunning {
        /// The file.
        path: PathBuf,
        /// Its recorded pid (0 if none).
        pid: i32,
    },
    /// `datapath_end` on a handle from `attach`, or `signaling_end` on one from `create`.
    #[error("this handle holds the {have} role, not {want}")]
    WrongRole {
        /// The role held.
        have: &'static str,
        /// The role asked for.
        want: &'static str,
    },
    /// Something other than a regular file of ours is at the path (a symbolic link, a directory,
    /// a device, another user's file): never followed, opened or replaced.
    #[error("{}: refusing {what} at the session ring's path (expected a regular file created by xtrunk; remove it)", path.display())]
    NotOurs {
        /// The path.
        path: PathBuf,
        /// What is there.
        what: String,
    },
    /// The path now names another file than the one this process mapped.
    #[error("{}: replaced by another file", path.display())]
    Replaced {
        /// The path.
        path: PathBuf,
    },
    /// A ring does not fit the mapping (internal inconsistency).
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Datapath,
    Signaling,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Datapath => "datapath",
            Role::Signaling => "signaling",
        }
    }
}

/// Low 32 bits of a process's start time in clock ticks since boot, or 0 if unknown.
fn start_time(pid: i32) -> u32 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Field 2 (comm) may contain spaces and parentheses: skip past the last ')'.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    // After comm: field 3 (state) is index 0, so field 22 (starttime) is index 19.
    rest.split_whitespace().nth(19).and_then(|s| s.parse::<u64>().ok()).map_or(0, |t| t as u32)
}

fn my_owner_word() -> u64 {
    let pid = std::process::id() as i32;
    pack(pid, start_time(pid))
}

fn pack(pid: i32, start: u32) -> u64 {
    u64::from(pid as u32) | (u64::from(start) << 32)
}

fn owner_pid(word: u64) -> i32 {
    word as u32 as i32
}

/// Is the process recorded in `word` still running?
fn owner_alive(word: u64) -> bool {
    let pid = owner_pid(word);
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    if r != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EPERM) {
        return false; // ESRCH: no such process
    }
    let recorded = (word >> 32) as u32;
    let now = start_time(pid);
    // Unknown start times (no /proc) degrade to a pid-only check.
    recorded == 0 || now == 0 || recorded == now
}

/// Geometry derived from the capacities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    commands_capacity: usize,
    events_capacity: usize,
    commands_offset: usize,
    events_offset: usize,
    total_size: usize,
}

const PAGE: usize = 4096;

fn align_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

impl Geometry {
    fn new(commands_capacity: usize, events_capacity: usize) -> Result<Self, Error> {
        for c in [commands_capacity, events_capacity] {
            if c == 0 || !c.is_power_of_two() || c > MAX_CAPACITY {
                return Err(Error::Capacity(c));
            }
        }
        let commands_offset = HEADER_REGION;
        let events_offset = align_up(commands_offset + spsc::ring_bytes::<Slot>(commands_capacity), PAGE);
        let total_size = align_up(events_offset + spsc::ring_bytes::<Slot>(events_capacity), PAGE);
        Ok(Self { commands_capacity, events_capacity, commands_offset, events_offset, total_size })
    }

    fn header(&self) -> HeaderStatic {
        HeaderStatic {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            static_size: std::mem::size_of::<HeaderStatic>() as u32,
            header_region: HEADER_REGION as u32,
            control_size: CONTROL_SIZE as u32,
            wire_sizes: WIRE_SIZES.map(|(_, s)| s as u32),
            commands_capacity: self.commands_capacity as u32,
            events_capacity: self.events_capacity as u32,
            reserved: 0,
            commands_offset: self.commands_offset as u64,
            events_offset: self.events_offset as u64,
            total_size: self.total_size as u64,
        }
    }
}

/// Reads and validates the header of an open file; returns its geometry.
fn validate(path: &Path, file: &File) -> Result<Geometry, Error> {
    let io_err = |op| move |source| Error::Io { path: path.to_owned(), op, source };
    let len = file.metadata().map_err(io_err("stat"))?.len();
    let need = std::mem::size_of::<HeaderStatic>() as u64;
    if len < need {
        return Err(Error::Truncated { path: path.to_owned(), len, expected: need });
    }
    let mut h = HeaderStatic::zeroed();
    file.read_exact_at(bytemuck::bytes_of_mut(&mut h), 0).map_err(io_err("read header"))?;
    if h.magic != MAGIC {
        return Err(Error::BadMagic { path: path.to_owned(), found: h.magic });
    }
    if h.abi_version != ABI_VERSION {
        return Err(Error::AbiVersion { path: path.to_owned(), ours: ABI_VERSION, theirs: h.abi_version });
    }
    let mut table = vec![
        ("header", std::mem::size_of::<HeaderStatic>(), h.static_size),
        ("header region", HEADER_REGION, h.header_region),
        ("ring control block", CONTROL_SIZE, h.control_size),
    ];
    table.extend(WIRE_SIZES.iter().zip(h.wire_sizes).map(|(&(what, ours), theirs)| (what, ours, theirs)));
    for (what, ours, theirs) in table {
        if ours as u64 != u64::from(theirs) {
            return Err(Error::SizeMismatch { path: path.to_owned(), what, ours: ours as u64, theirs: theirs.into() });
        }
    }
    let geometry = Geometry::new(h.commands_capacity as usize, h.events_capacity as usize)
        .map_err(|e| Error::Geometry { path: path.to_owned(), detail: e.to_string() })?;
    let expected = geometry.header();
    if bytemuck::bytes_of(&expected) != bytemuck::bytes_of(&h) {
        return Err(Error::Geometry {
            path: path.to_owned(),
            detail: format!(
                "offsets/size ({}, {}, {}) do not match capacities {}/{} (expected {}, {}, {})",
                h.commands_offset,
                h.events_offset,
                h.total_size,
                h.commands_capacity,
                h.events_capacity,
                expected.commands_offset,
                expected.events_offset,
                expected.total_size
            ),
        });
    }
    if len != geometry.total_size as u64 {
        return Err(Error::Truncated { path: path.to_owned(), len, expected: geometry.total_size as u64 });
    }
    Ok(geometry)
}

/// The mapping of the file, shared by the [`Shm`] handle and the ends made from it. Releases its
/// role when dropped.
struct Mapping {
    map: MmapRaw,
    path: PathBuf,
    role: Role,
    me: u64,
    dev_ino: (u64, u64),
}

impl Mapping {
    fn map(path: &Path, file: &File, role: Role) -> Result<Self, Error> {
        let map = MmapRaw::map_raw(file).map_err(|source| Error::Io { path: path.to_owned(), op: "mmap", source })?;
        let md = file.metadata().map_err(|source| Error::Io { path: path.to_owned(), op: "stat", source })?;
        Ok(Self { map, path: path.to_owned(), role, me: 0, dev_ino: (md.dev(), md.ino()) })
    }

    fn owners(&self) -> &Owners {
        // SAFETY: the mapping is at least HEADER_REGION bytes (validated / created so), page
        // aligned, and OWNERS_OFFSET is 8-aligned, so the Owners (two AtomicU64, valid for any bit
        // pattern) are in bounds and aligned; they are only accessed atomically (rule 4); the
        // reference lives no longer than `self`, which keeps the mapping.
        unsafe { &*self.map.as_mut_ptr().add(OWNERS_OFFSET).cast::<Owners>() }
    }

    fn owner(&self, role: Role) -> &AtomicU64 {
        match role {
            Role::Datapath => &self.owners().datapath,
            Role::Signaling => &self.owners().signaling,
        }
    }

    /// Takes `role` if free or held by a dead process.
    fn claim(&mut self, role: Role) -> Result<(), Error> {
        let me = my_owner_word();
        let slot = self.owner(role);
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            if cur != 0 && (cur == me || owner_alive(cur)) {
                return Err(Error::RoleTaken { path: self.path.clone(), role: role.name(), pid: owner_pid(cur) });
            }
            // AcqRel: acquire whatever the predecessor published before dying (its ring
            // positions were already published with Release; this is belt and braces), release
            // our claim to later claimers.
            match slot.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.me = me;
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.me != 0 {
            // Release the role only if we still hold it (a successor may have taken it over if
            // we were wrongly considered dead).
            let _ = self.owner(self.role).compare_exchange(self.me, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

// SAFETY: MmapRaw's pointer is page aligned (≥ RING_ALIGN), valid for `len` bytes until the
// mapping is dropped, and never moves (rule 2).
unsafe impl Backing for Mapping {
    fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A handle on the shared-memory file, holding one role. Split it into that role's ends with
/// [`datapath_end`](Self::datapath_end) or [`signaling_end`](Self::signaling_end).
pub struct Shm {
    map: Arc<Mapping>,
    geometry: Geometry,
}

impl std::fmt::Debug for Shm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shm")
            .field("path", &self.map.path)
            .field("role", &self.map.role)
            .field("commands_capacity", &self.geometry.commands_capacity)
            .field("events_capacity", &self.geometry.events_capacity)
            .finish()
    }
}

impl Shm {
    /// Datapath side: creates the file at `path` with rings of the given capacities (powers of
    /// two, in slots) and takes the datapath role.
    ///
    /// An existing file is replaced by a fresh one (new inode, empty rings) unless it is a valid
    /// ring file whose datapath owner is alive, which is [`Error::RoleTaken`]. Sessions are not
    /// carried over a datapath restart: the datapath's session table died with it.
    ///
    /// The file is mode 0600 (its slots carry SDES master keys), created under a temporary name
    /// with `O_EXCL | O_NOFOLLOW` and renamed into place. Anything at `path` other than a regular
    /// file of ours (a symbolic link, a directory, another user's file) is [`Error::NotOurs`].
    pub fn create(path: impl AsRef<Path>, commands_capacity: usize, events_capacity: usize) -> Result<Self, Error> {
        let path = path.as_ref();
        let geometry = Geometry::new(commands_capacity, events_capacity)?;
        let io_err = |op| move |source| Error::Io { path: path.to_owned(), op, source };

        // A planted symbolic link or someone else's file is refused, not followed or replaced.
        if check_ours(path)? {
            if let Ok(file) = open_existing(path) {
                if validate(path, &file).is_ok() {
                    let old = Mapping::map(path, &file, Role::Datapath)?;
                    let word = old.owner(Role::Datapath).load(Ordering::Acquire);
                    if word != 0 && word != my_owner_word() && owner_alive(word) {
                        return Err(Error::RoleTaken { path: path.to_owned(), role: "datapath", pid: owner_pid(word) });
                    }
                }
            }
        }

        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        // The file carries SDES keys: 0600, and created here (O_EXCL, never through a link). A
        // temporary name of ours left by a crash is removed first (a link itself, not its target).
        match std::fs::symlink_metadata(&tmp) {
            Ok(_) => std::fs::remove_file(&tmp).map_err(io_err("remove stale temporary file"))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: tmp, op: "lstat", source }),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|source| Error::Io { path: tmp.clone(), op: "create", source })?;
        let result = (|| {
            file.set_len(geometry.total_size as u64).map_err(io_err("set_len"))?;
            file.write_all_at(bytemuck::bytes_of(&geometry.header()), 0).map_err(io_err("write header"))?;
            let mut map = Mapping::map(path, &file, Role::Datapath)?;
            map.claim(Role::Datapath)?;
            std::fs::rename(&tmp, path).map_err(io_err("rename into place"))?;
            Ok(map)
        })();
        match result {
            Ok(map) => Ok(Self { map: Arc::new(map), geometry }),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Signaling side: maps the existing file at `path`, validates its header and takes the
    /// signaling role (taking it over if the previous signaling process is dead).
    pub fn attach(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = open_existing(path)?;
        let geometry = validate(path, &file)?;
        let mut map = Mapping::map(path, &file, Role::Signaling)?;
        if map.len() != geometry.total_size {
            return Err(Error::Truncated {
                path: path.to_owned(),
                len: map.len() as u64,
                expected: geometry.total_size as u64,
            });
        }
        let dp = map.owner(Role::Datapath).load(Ordering::Acquire);
        if !owner_alive(dp) {
            return Err(Error::DatapathNotRunning { path: path.to_owned(), pid: owner_pid(dp) });
        }
        map.claim(Role::Signaling)?;
        Ok(Self { map: Arc::new(map), geometry })
    }

    /// Unlinks the file (datapath, on clean shutdown). Mappings stay valid until dropped.
    pub fn remove(path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        std::fs::remove_file(path).map_err(|source| Error::Io { path: path.to_owned(), op: "unlink", source })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.map.path
    }

    /// Capacity of the commands ring, in messages.
    pub fn commands_capacity(&self) -> usize {
        self.geometry.commands_capacity
    }

    /// Capacity of the events ring, in messages.
    pub fn events_capacity(&self) -> usize {
        self.geometry.events_capacity
    }

    /// Pid of the live datapath owner, if any.
    pub fn datapath_pid(&self) -> Option<i32> {
        self.live_owner(Role::Datapath)
    }

    /// Pid of the live signaling owner, if any.
    pub fn signaling_pid(&self) -> Option<i32> {
        self.live_owner(Role::Signaling)
    }

    fn live_owner(&self, role: Role) -> Option<i32> {
        let w = self.map.owner(role).load(Ordering::Acquire);
        owner_alive(w).then(|| owner_pid(w))
    }

    /// For the datapath: is the file at [`path`](Self::path) still this mapping's, with a valid
    /// header? `Err` says what is wrong ([`Error::NotFound`]: deleted; [`Error::Replaced`];
    /// [`Error::BadMagic`] and the other header errors). Attachers cannot use the file until
    /// the datapath [`create`](Self::create)s it again.
    pub fn verify(&self) -> Result<(), Error> {
        verify(&self.map)
    }

    /// A handle that keeps answering [`verify`](Self::verify) and [`is_stale`](Self::is_stale)
    /// after the `Shm` is split into its ends.
    pub fn watch(&self) -> FileWatch {
        FileWatch { map: Arc::clone(&self.map) }
    }

    /// For signaling: true if this mapping is no longer the datapath's live file (the datapath
    /// died, or restarted and replaced the file). Re-[`attach`](Self::attach) then.
    pub fn is_stale(&self) -> bool {
        stale(&self.map)
    }

    fn ends<A: crate::wire::Message, B: crate::wire::Message>(
        self,
        want: Role,
        rx_offset: usize,
        rx_capacity: usize,
        tx_offset: usize,
        tx_capacity: usize,
    ) -> Result<(Receiver<A>, Sender<B>), Error> {
        if self.map.role != want {
            return Err(Error::WrongRole { have: self.map.role.name(), want: want.name() });
        }
        let mem: Arc<dyn Backing> = self.map;
        // SAFETY: we own `want`'s role in the file (claimed in create/attach; the Shm is consumed
        // so this runs once per mapping), which makes us the only consumer of the rx ring and the
        // only producer of the tx ring (rule 3). The rings are zeroed (fresh file) or were used
        // with the same slot type and capacities (validated size table and geometry).
        let (rx, tx) = unsafe {
            (
                spsc::consumer::<Slot, _>(mem.clone(), rx_offset, rx_capacity)?,
                spsc::producer::<Slot, _>(mem, tx_offset, tx_capacity)?,
            )
        };
        Ok((Receiver::from_consumer(rx), Sender::from_producer(tx)))
    }

    /// The datapath's ends: receive commands, send events. Only on a handle from
    /// [`create`](Self::create).
    pub fn datapath_end(self) -> Result<(CommandReceiver, EventSender), Error> {
        let g = self.geometry;
        self.ends(Role::Datapath, g.commands_offset, g.commands_capacity, g.events_offset, g.events_capacity)
    }

    /// The signaling side's ends: send commands, receive events. Only on a handle from
    /// [`attach`](Self::attach).
    pub fn signaling_end(self) -> Result<(CommandSender, EventReceiver), Error> {
        let g = self.geometry;
        let (rx, tx) =
            self.ends(Role::Signaling, g.events_offset, g.events_capacity, g.commands_offset, g.commands_capacity)?;
        Ok((tx, rx))
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process on the machine, for
/// stamping messages whose one-way latency is measured across the ring (the bench does).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}
