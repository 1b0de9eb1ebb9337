//! Loads the XDP program of `xtrunk-ebpf` with aya 0.14, attaches it to the media interfaces and
//! gives typed access to its maps.
//!
//! Attachment uses a `bpf_link` where the kernel has it, so a crashed run leaves nothing behind
//! (the link dies with the process). A program attached the legacy way (netlink, e.g. an older
//! run or `ip link set xdp`) is detached and replaced, not reported as an error.
//!
//! # Safety
//!
//! Two shims here are `unsafe`: `if_nametoindex` on a `CString` that outlives the call, and the
//! `BPF_MAP_LOOKUP_BATCH` syscall of [`XdpProgram::fast_stats_range`], whose attribute points
//! only at buffers owned by the caller's frame and sized for `count` keys and per-CPU values
//! (the kernel writes at most `count` of each); the map fd is borrowed from the loaded object.

use std::{collections::HashMap, ffi::CString, os::fd::BorrowedFd};

use aya::{
    maps::{Array, HashMap as BpfHashMap, MapError, PerCpuArray, XskMap},
    programs::{ProgramError, Xdp, XdpMode},
    Ebpf,
};
use xtrunk_ebpf::{
    Counter, XtConfig, XtFastGroups, XtFastStats, XtQueueStats, XtSession, XtSessionKey, MAP_CONFIG, MAP_COUNTERS,
    MAP_FAST_GROUPS, MAP_FAST_STATS, MAP_IFSLOTS, MAP_QUEUE_STATS, MAP_SESSIONS, MAP_XSKS, PROGRAM_NAME, XT_ABI_MAGIC,
    XT_ABI_VERSION, XT_CNT_MAX, XT_FAST_GROUPS, XT_MAX_IFACES, XT_MAX_QUEUES,
};

use super::netlink;

/// Errors of loading, attaching and map access.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// The embedded object could not be loaded (BTF, verifier, permissions).
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    /// The program was refused by the verifier or could not be attached.
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
    /// A map operation failed.
    #[error("XDP map: {0}")]
    Map(#[from] MapError),
    /// The object lacks a map or program this code expects (build mismatch).
    #[error("XDP object lacks `{0}`")]
    Missing(&'static str),
    /// The interface does not exist.
    #[error("no interface named `{0}`")]
    UnknownInterface(String),
    /// More interfaces than the program has slots for.
    #[error("at most {XT_MAX_IFACES} interfaces")]
    TooManyInterfaces,
    /// Queue index beyond the XSKMAP layout.
    #[error("queue {0} beyond the {XT_MAX_QUEUES} the XSKMAP holds")]
    QueueOutOfRange(u32),
    /// A batched map read (`BPF_MAP_LOOKUP_BATCH`) failed.
    #[error("reading `{map}` in batch: {source}")]
    Batch {
        /// The map.
        map: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic (skb) mode if the driver refuses.
    Auto,
    /// Native only.
    Native,
    /// Generic only.
    Generic,
}

/// Interface index of `name`, or `None`.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// The loaded program and its maps.
pub struct XdpProgram {
    bpf: Ebpf,
    /// ifindex → (slot, link)
    attached: HashMap<u32, (u32, aya::programs::xdp::XdpLinkId)>,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram").field("attached", &self.attached.keys().collect::<Vec<_>>()).finish()
    }
}

impl XdpProgram {
    /// Loads the embedded object, verifies the program and writes the config (media port range).
    pub fn load(port_min: u16, port_max: u16) -> Result<Self, LoaderError> {
        let mut bpf = Ebpf::load(xtrunk_ebpf::XDP_OBJECT)?;
        let prog: &mut Xdp = bpf.program_mut(PROGRAM_NAME).ok_or(LoaderError::Missing(PROGRAM_NAME))?.try_into()?;
        prog.load()?;
        let mut cfg: Array<_, XtConfig> =
            Array::try_from(bpf.map_mut(MAP_CONFIG).ok_or(LoaderError::Missing(MAP_CONFIG))?)?;
        cfg.set(0, XtConfig { magic: XT_ABI_MAGIC, abi_version: XT_ABI_VERSION, port_min, port_max, flags: 0 }, 0)?;
        Ok(Self { bpf, attached: HashMap::new() })
    }

    fn prog(&mut self) -> Result<&mut Xdp, LoaderError> {
        Ok(self.bpf.program_mut(PROGRAM_NAME).ok_or(LoaderError::Missing(PROGRAM_NAME))?.try_into()?)
    }

    /// Attaches to `ifname` and registers it; returns its slot (the XSKMAP key base). A stale
    /// program on the interface is detached first.
    pub fn attach(&mut self, ifname: &str, mode: AttachMode) -> Result<u32, LoaderError> {
        let idx = ifindex(ifname).ok_or_else(|| LoaderError::UnknownInterface(ifname.to_owned()))?;
        if let Some((slot, _)) = self.attached.get(&idx) {
            return Ok(*slot);
        }
        let slot = (0..XT_MAX_IFACES)
            .find(|s| !self.attached.values().any(|(t, _)| t == s))
            .ok_or(LoaderError::TooManyInterfaces)?;
        let modes: &[XdpMode] = match mode {
            AttachMode::Auto => &[XdpMode::Driver, XdpMode::Skb],
            AttachMode::Native => &[XdpMode::Driver],
            AttachMode::Generic => &[XdpMode::Skb],
        };
        let link = self.attach_modes(idx, modes).or_else(|first| {
            // A program attached via netlink (stale, or by `ip`) blocks bpf_link_create (EBUSY):
            // remove it and try once more.
            log::warn!("XDP attach to {ifname} failed ({first}); detaching the existing program and retrying");
            if let Err(e) = netlink::detach_xdp(idx) {
                log::warn!("detaching the existing XDP program from {ifname}: {e}");
            }
            self.attach_modes(idx, modes)
        })?;
        let mut slots: BpfHashMap<_, u32, u32> =
            BpfHashMap::try_from(self.bpf.map_mut(MAP_IFSLOTS).ok_or(LoaderError::Missing(MAP_IFSLOTS))?)?;
        slots.insert(idx, slot, 0)?;
        self.attached.insert(idx, (slot, link));
        Ok(slot)
    }

    fn attach_modes(&mut self, idx: u32, modes: &[XdpMode]) -> Result<aya::programs::xdp::XdpLinkId, LoaderError> {
        let mut last = None;
        for m in modes {
            match self.prog()?.attach_to_if_index(idx, *m) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map(LoaderError::from).unwrap_or(LoaderError::Missing("attach mode")))
    }

    /// Detaches from every interface (also done on drop).
    pub fn detach_all(&mut self) {
        let links: Vec<_> = self.attached.drain().collect();
        for (idx, (_, link)) in links {
            match self.prog() {
                Ok(p) => {
                    if let Err(e) = p.detach(link) {
                        log::warn!("detaching XDP from ifindex {idx}: {e}");
                    }
                }
                Err(e) => log::warn!("detaching XDP from ifindex {idx}: {e}"),
            }
        }
    }

    /// Slot of an attached interface.
    pub fn slot(&self, ifindex: u32) -> Option<u32> {
        self.attached.get(&ifindex).map(|(s, _)| *s)
    }

    /// Puts the AF_XDP socket `fd` in the XSKMAP for (slot, queue).
    pub fn set_xsk(&mut self, slot: u32, queue: u32, fd: BorrowedFd<'_>) -> Result<(), LoaderError> {
        if queue >= XT_MAX_QUEUES {
            return Err(LoaderError::QueueOutOfRange(queue));
        }
        let mut m: XskMap<_> = XskMap::try_from(self.bpf.map_mut(MAP_XSKS).ok_or(LoaderError::Missing(MAP_XSKS))?)?;
        m.set(slot * XT_MAX_QUEUES + queue, fd, 0)?;
        Ok(())
    }

    /// Removes the socket of (slot, queue) from the XSKMAP.
    pub fn clear_xsk(&mut self, slot: u32, queue: u32) -> Result<(), LoaderError> {
        let mut m: XskMap<_> = XskMap::try_from(self.bpf.map_mut(MAP_XSKS).ok_or(LoaderError::Missing(MAP_XSKS))?)?;
        m.unset(slot * XT_MAX_QUEUES + queue)?;
        Ok(())
    }

    /// Installs or replaces the entry of local `port` (atomically, as the kernel sees it).
    pub fn set_session(&mut self, port: u16, s: &XtSession) -> Result<(), LoaderError> {
        let mut m: BpfHashMap<_, XtSessionKey, XtSession> =
            BpfHashMap::try_from(self.bpf.map_mut(MAP_SESSIONS).ok_or(LoaderError::Missing(MAP_SESSIONS))?)?;
        m.insert(XtSessionKey::new(port), s, 0)?;
        Ok(())
    }

    /// Removes the entry of local `port`; a missing entry is not an error.
    pub fn remove_session(&mut self, port: u16) -> Result<(), LoaderError> {
        let mut m: BpfHashMap<_, XtSessionKey, XtSession> =
            BpfHashMap::try_from(self.bpf.map_mut(MAP_SESSIONS).ok_or(LoaderError::Missing(MAP_SESSIONS))?)?;
        match m.remove(&XtSessionKey::new(port)) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Fast-path totals of local `port`, summed over CPUs (monotonic; never reset).
    pub fn fast_stats(&self, port: u16) -> Result<XtFastStats, LoaderError> {
        let m: PerCpuArray<_, XtFastStats> =
            PerCpuArray::try_from(self.bpf.map(MAP_FAST_STATS).ok_or(LoaderError::Missing(MAP_FAST_STATS))?)?;
        let v = m.get(&u32::from(port), 0)?;
        Ok(v.iter().fold(XtFastStats::default(), |a, c| XtFastStats {
            packets: a.packets + c.packets,
            bytes: a.bytes + c.bytes,
        }))
    }

    /// Fast-path packets per port group (`port >> XT_FAST_GROUP_SHIFT`), summed over CPUs
    /// (monotonic): one map read for every port.
    pub fn fast_groups(&self) -> Result<[u64; XT_FAST_GROUPS], LoaderError> {
        let m: PerCpuArray<_, XtFastGroups> =
            PerCpuArray::try_from(self.bpf.map(MAP_FAST_GROUPS).ok_or(LoaderError::Missing(MAP_FAST_GROUPS))?)?;
        let mut out = [0u64; XT_FAST_GROUPS];
        for cpu in m.get(&0, 0)?.iter() {
            for (o, v) in out.iter_mut().zip(cpu.packets.iter()) {
                *o = o.wrapping_add(*v);
            }
        }
        Ok(out)
    }

    /// Fast-path totals of the local ports `first..first + out.len()`, summed over CPUs, read
    /// with one `BPF_MAP_LOOKUP_BATCH` (`out.len()` at most 4096). `buf` is scratch space,
    /// grown once to the per-CPU values of a batch.
    pub fn fast_stats_range(
        &self,
        first: u16,
        out: &mut [XtFastStats],
        buf: &mut Vec<XtFastStats>,
    ) -> Result<(), LoaderError> {
        let batch_err = |source| LoaderError::Batch { map: MAP_FAST_STATS, source };
        let count = out.len().min(4096);
        if count == 0 {
            return Ok(());
        }
        if usize::from(first) + count > 65536 {
            return Err(batch_err(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
        }
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| batch_err(e))?;
        let map = self.bpf.map(MAP_FAST_STATS).ok_or(LoaderError::Missing(MAP_FAST_STATS))?;
        let aya::maps::Map::PerCpuArray(data) = map else { return Err(LoaderError::Missing(MAP_FAST_STATS)) };
        use std::os::fd::{AsFd, AsRawFd};
        let fd = data.fd().as_fd().as_raw_fd();
        buf.resize(count * cpus, XtFastStats::default());
        let mut keys = [0u32; 4096];
        // The batch starts after `in_batch` (the previous key); from port 0, no previous key.
        let prev = u32::from(first).wrapping_sub(1);
        let mut next = 0u32;
        let mut attr = BatchAttr {
            in_batch: if first == 0 { 0 } else { &prev as *const u32 as u64 },
            out_batch: &mut next as *mut u32 as u64,
            keys: keys.as_mut_ptr() as u64,
            values: buf.as_mut_ptr() as u64,
            count: count as u32,
            map_fd: fd as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: `attr` is a valid `bpf_attr.batch` (the size passed is its own); every pointer
        // in it refers to a live buffer of this frame or `buf`, sized for `count` entries (keys:
        // 4096 ≥ count u32s; values: count × cpus `XtFastStats`, whose size is the map's value
        // size, a multiple of 8), and nothing else references them during the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>() as libc::c_uint,
            )
        };
        // ENOENT: the map's end came first (`count` says how many were read).
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(batch_err(e));
            }
        }
        let got = (attr.count as usize).min(count);
        for (i, o) in out.iter_mut().enumerate() {
            *o = XtFastStats::default();
            if i < got && keys[i] == u32::from(first) + i as u32 {
                for c in &buf[i * cpus..(i + 1) * cpus] {
                    o.packets = o.packets.wrapping_add(c.packets);
                    o.bytes = o.bytes.wrapping_add(c.bytes);
                }
            }
        }
        Ok(())
    }

    /// Every verdict counter, summed over CPUs, indexed by [`Counter`].
    pub fn counters(&self) -> Result<[u64; XT_CNT_MAX as usize], LoaderError> {
        let m: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.bpf.map(MAP_COUNTERS).ok_or(LoaderError::Missing(MAP_COUNTERS))?)?;
        let mut out = [0u64; XT_CNT_MAX as usize];
        for c in Counter::ALL {
            out[c as usize] = m.get(&(c as u32), 0)?.iter().sum();
        }
        Ok(out)
    }

    /// Per-queue counters of (slot, queue), summed over CPUs.
    pub fn queue_stats(&self, slot: u32, queue: u32) -> Result<XtQueueStats, LoaderError> {
        if queue >= XT_MAX_QUEUES {
            return Err(LoaderError::QueueOutOfRange(queue));
        }
        let m: PerCpuArray<_, XtQueueStats> =
            PerCpuArray::try_from(self.bpf.map(MAP_QUEUE_STATS).ok_or(LoaderError::Missing(MAP_QUEUE_STATS))?)?;
        let v = m.get(&(slot * XT_MAX_QUEUES + queue), 0)?;
        Ok(v.iter().fold(XtQueueStats::default(), |a, c| XtQueueStats {
            xsk: a.xsk + c.xsk,
            fast: a.fast + c.fast,
            pass: a.pass + c.pass,
            pad: 0,
        }))
    }
}

impl XdpProgram {
    /// Kernel run statistics of the program: (total run time, runs). Zero unless BPF stats are
    /// enabled (`kernel.bpf_stats_enabled` or [`enable_run_stats`]).
    pub fn run_stats(&self) -> Result<(std::time::Duration, u64), LoaderError> {
        let p = self.bpf.program(PROGRAM_NAME).ok_or(LoaderError::Missing(PROGRAM_NAME))?;
        let i = p.info()?;
        Ok((i.run_time(), i.run_count()))
    }
}

/// `BPF_MAP_LOOKUP_BATCH` (`enum bpf_cmd`).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `union bpf_attr`'s `batch` member (the BPF_MAP_*_BATCH commands).
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Turns on the kernel's BPF run-time statistics while the returned fd lives (benchmarks).
pub fn enable_run_stats() -> Result<std::os::fd::OwnedFd, LoaderError> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(|e| LoaderError::Program(ProgramError::SyscallError(e)))
}

/// The benchmark sink: `xtrunk_sink` attached to one interface, counting and dropping every frame.
pub struct Sink {
    bpf: Ebpf,
    link: Option<aya::programs::xdp::XdpLinkId>,
}

impl Sink {
    /// Loads and attaches the sink to `ifname` (native mode, generic as fallback).
    pub fn attach(ifname: &str) -> Result<Self, LoaderError> {
        let idx = ifindex(ifname).ok_or_else(|| LoaderError::UnknownInterface(ifname.to_owned()))?;
        let mut bpf = Ebpf::load(xtrunk_ebpf::XDP_OBJECT)?;
        let p: &mut Xdp = bpf
            .program_mut(xtrunk_ebpf::SINK_PROGRAM_NAME)
            .ok_or(LoaderError::Missing(xtrunk_ebpf::SINK_PROGRAM_NAME))?
            .try_into()?;
        p.load()?;
        let link = match p.attach_to_if_index(idx, XdpMode::Driver) {
            Ok(l) => l,
            Err(_) => {
                let _ = netlink::detach_xdp(idx);
                p.attach_to_if_index(idx, XdpMode::Skb)?
            }
        };
        Ok(Self { bpf, link: Some(link) })
    }

    /// Sets the CLOCK_MONOTONIC time (ns) that the bench's intended send times count from.
    pub fn set_epoch(&mut self, monotonic_ns: u64) -> Result<(), LoaderError> {
        let mut m: aya::maps::Array<_, u64> = aya::maps::Array::try_from(
            self.bpf.map_mut(xtrunk_ebpf::MAP_SINK_EPOCH).ok_or(LoaderError::Missing(xtrunk_ebpf::MAP_SINK_EPOCH))?,
        )?;
        m.set(0, monotonic_ns, 0)?;
        Ok(())
    }

    /// The latency histogram of measured bench packets: count per bucket (summed over CPUs),
    /// bucket `b` starting at `xtrunk_ebpf::sink_bucket_floor_ns(b)`.
    pub fn latency_buckets(&self) -> Result<Vec<u64>, LoaderError> {
        let m: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.bpf.map(xtrunk_ebpf::MAP_SINK_LAT).ok_or(LoaderError::Missing(xtrunk_ebpf::MAP_SINK_LAT))?,
        )?;
        (0..xtrunk_ebpf::SINK_BUCKETS).map(|b| Ok(m.get(&b, 0)?.iter().sum())).collect()
    }

    /// Frames dropped so far (summed over CPUs).
    pub fn count(&self) -> Result<u64, LoaderError> {
        let m: PerCpuArray<_, u64> = PerCpuArray::try_from(
            self.bpf.map(xtrunk_ebpf::MAP_SINK_COUNT).ok_or(LoaderError::Missing(xtrunk_ebpf::MAP_SINK_COUNT))?,
        )?;
        Ok(m.get(&0, 0)?.iter().sum())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(l) = self.link.take() {
            if let Some(p) = self.bpf.program_mut(xtrunk_ebpf::SINK_PROGRAM_NAME) {
                if let Ok(x) = <&mut Xdp>::try_from(p) {
                    let _ = x.detach(l);
                }
            }
        }
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        self.detach_all();
    }
}
