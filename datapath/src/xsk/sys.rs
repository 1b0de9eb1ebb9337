//! Raw AF_XDP: the UMEM, the four rings and the socket, over `libc` syscalls.
//!
//! # Safety
//!
//! This module (with `netlink.rs`) is where the AF_XDP backend's `unsafe` lives. Its rules:
//!
//! - A [`Umem`] is one anonymous `mmap` registered with the kernel; it outlives every ring and
//!   socket that refers to it because [`XskSocket`] owns both and drops the socket (closing the
//!   fd, which unregisters the UMEM) before unmapping (field order: `fd` first).
//! - Frame ownership follows the ring protocol: a frame address is owned by user space after it
//!   was read from the RX or completion ring (or was never given to the kernel), and owned by the
//!   kernel from the moment it is published on the fill or TX ring until it comes back. The
//!   safe API hands out `&mut [u8]` only through [`Umem::frame_mut`], which takes `&mut self`,
//!   bounds-checks the range against the area, and is only to be called for user-owned frames;
//!   the kernel never writes a frame it does not own, so the slice aliases no kernel write.
//!   Handing a kernel-owned frame to `frame_mut` is a logic error that can show torn packet
//!   bytes, but cannot reach memory outside the mapping.
//! - Ring indices are free-running `u32`s; the producer/consumer words live in the shared
//!   mapping and are accessed only through `AtomicU32` (Acquire when reading the other side's
//!   index, Release when publishing ours, as in libbpf's `xsk.h`): descriptors written before a
//!   Release store of `producer` are visible to the kernel after it reads `producer`, and the
//!   kernel's descriptor writes are visible after our Acquire load.
//! - Batches ([`ProdBatch`], [`ConsBatch`]) borrow their ring mutably, so at most one is open
//!   per ring; they commit with `submit`/`release` and cancel (publish nothing) on `Drop`.
//! - [`KernelRoute`] is a pair of raw IP sockets (`IPPROTO_RAW`, header included) the workers
//!   hand a packet to when the next hop's MAC is not known yet: `sendto` reads exactly the
//!   slice it is given and a `sockaddr_in`/`sockaddr_in6` built on the stack.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};

/// One RX/TX descriptor (`struct xdp_desc`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct XdpDesc {
    /// Address in the UMEM (frame base + offset of the packet's first byte).
    pub(crate) addr: u64,
    /// Packet length.
    pub(crate) len: u32,
    /// Options (multi-buffer flag); 0 here.
    pub(crate) options: u32,
}
const _: () = assert!(core::mem::size_of::<XdpDesc>() == 16);

/// Bind mode of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BindMode {
    /// `XDP_COPY`: works on every driver with XDP (veth included).
    Copy,
    /// `XDP_ZEROCOPY`: the NIC DMAs into the UMEM; refused (EOPNOTSUPP) by drivers without it.
    ZeroCopy,
}

/// Geometry of one socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SocketConfig {
    /// Interface index.
    pub(crate) ifindex: u32,
    /// RX/TX queue id.
    pub(crate) queue: u32,
    /// Bytes per UMEM frame; power of two in 2048..=4096.
    pub(crate) frame_size: u32,
    /// Frames in the UMEM.
    pub(crate) frame_count: u32,
    /// Entries of each of the four rings; power of two.
    pub(crate) ring_size: u32,
    /// Copy or zero-copy.
    pub(crate) mode: BindMode,
}

fn last_err(what: &'static str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// An anonymous, page-aligned memory mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes: anonymous memory when `fd` is `None`, else the ring at `pgoff` of `fd`.
    fn new(len: usize, fd: Option<(BorrowedFd<'_>, libc::off_t)>) -> io::Result<Self> {
        let (flags, raw_fd, off) = match fd {
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE, -1, 0),
            Some((fd, off)) => (libc::MAP_SHARED | libc::MAP_POPULATE, fd.as_raw_fd(), off),
        };
        // SAFETY: mmap with a null hint creates a new mapping and touches no existing memory;
        // the result is checked for MAP_FAILED before use.
        let ptr =
            unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, raw_fd, off) };
        if ptr == libc::MAP_FAILED {
            return Err(last_err("mmap"));
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the mapping any more
        // (owners drop their rings/slices first, see the module rules).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The packet buffer area shared with the kernel, split into `frame_count` frames of
/// `frame_size` bytes (aligned chunk mode).
pub(crate) struct Umem {
    map: Mapping,
    frame_size: u32,
    frame_count: u32,
}

impl Umem {
    fn new(frame_size: u32, frame_count: u32) -> io::Result<Self> {
        let len = frame_size as usize * frame_count as usize;
        Ok(Self { map: Mapping::new(len, None)?, frame_size, frame_count })
    }

    /// Bytes per frame.
    pub(crate) fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Number of frames.
    pub(crate) fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// The base address (chunk start) of the frame containing `addr`.
    pub(crate) fn frame_base(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.frame_size) - 1)
    }

    /// The whole user-owned frame containing `addr`, as `(slice, offset of addr in it)`;
    /// `None` if `addr` lies outside the area. Call only for frames user space owns (module rules).
    pub(crate) fn frame_mut(&mut self, addr: u64) -> Option<(&mut [u8], usize)> {
        let base = self.frame_base(addr);
        let end = base.checked_add(u64::from(self.frame_size))?;
        if end > self.map.len as u64 {
            return None;
        }
        let off = (addr - base) as usize;
        // SAFETY: [base, end) lies inside the mapping (checked above); `&mut self` guarantees no
        // other slice of this UMEM is alive; the frame is user-owned by the caller's contract, so
        // the kernel does not write it while the slice lives.
        let s = unsafe {
            core::slice::from_raw_parts_mut(self.map.ptr.as_ptr().add(base as usize), self.frame_size as usize)
        };
        Some((s, off))
    }
}

/// Pointers into one mmapped ring.
struct RingPtrs<T> {
    _map: Mapping,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    mask: u32,
}

impl<T> RingPtrs<T> {
    /// Maps the ring of `entries` at `pgoff` of `fd`, using the kernel's offsets.
    fn map(fd: BorrowedFd<'_>, off: &libc::xdp_ring_offset, entries: u32, pgoff: libc::off_t) -> io::Result<Self> {
        let len = off.desc as usize + entries as usize * core::mem::size_of::<T>();
        let map = Mapping::new(len, Some((fd, pgoff)))?;
        let base = map.ptr.as_ptr();
        let at = |o: u64| -> NonNull<u8> {
            // SAFETY: the kernel's offsets lie within the ring mapping of `len` bytes.
            unsafe { NonNull::new_unchecked(base.add(o as usize)) }
        };
        Ok(Self {
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            descs: at(off.desc).cast(),
            mask: entries - 1,
            _map: map,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, 4-byte aligned by the kernel ABI; the word is only
        // accessed atomically by both sides.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as in `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // SAFETY: as in `producer`.
        unsafe { self.flags.as_ref() }
    }

    /// Pointer to the descriptor slot of free-running index `idx`.
    fn slot(&self, idx: u32) -> *mut T {
        // SAFETY: `idx & mask` < entries, so the slot lies within the mapped descriptor array.
        unsafe { self.descs.as_ptr().add((idx & self.mask) as usize) }
    }
}

/// The user-space producer side of a ring (fill, TX).
pub(crate) struct Producer<T> {
    ring: RingPtrs<T>,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> Producer<T> {
    fn new(ring: RingPtrs<T>, size: u32) -> Self {
        // The kernel starts both indices at 0; our view of the consumer starts `size` ahead so
        // that `free` is computed as `cached_cons - cached_prod` (libbpf's convention).
        Self { ring, size, cached_prod: 0, cached_cons: size }
    }

    /// Free slots, refreshing the consumer index from the kernel only when fewer than `want`
    /// are known to be free.
    fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_cons.wrapping_sub(self.cached_prod);
        if free >= want {
            return free;
        }
        // Acquire: the kernel has finished reading the slots it consumed before we reuse them.
        self.cached_cons = self.ring.consumer().load(Ordering::Acquire).wrapping_add(self.size);
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Reserves up to `want` slots (maybe fewer, maybe zero).
    pub(crate) fn reserve(&mut self, want: u32) -> ProdBatch<'_, T> {
        let n = self.free(want).min(want);
        ProdBatch { start: self.cached_prod, len: n, filled: 0, ring: self }
    }

    /// Entries published but not yet consumed by the kernel (refreshes the consumer index).
    pub(crate) fn pending(&mut self) -> u32 {
        self.size - self.free(self.size)
    }

    /// Whether the kernel asks for a wakeup syscall (`XDP_RING_NEED_WAKEUP`).
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.ring.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

/// Slots reserved on a producer ring. Fill them in order with [`push`](Self::push), then
/// [`submit`](Self::submit); dropping the batch publishes nothing.
#[must_use = "a producer batch publishes nothing unless submitted"]
pub(crate) struct ProdBatch<'a, T: Copy> {
    ring: &'a mut Producer<T>,
    start: u32,
    len: u32,
    filled: u32,
}

impl<T: Copy> ProdBatch<'_, T> {
    /// Slots still free in this batch.
    pub(crate) fn remaining(&self) -> u32 {
        self.len - self.filled
    }

    /// Writes the next slot; returns `false` (writing nothing) when the batch is full.
    pub(crate) fn push(&mut self, v: T) -> bool {
        if self.filled == self.len {
            return false;
        }
        let p = self.ring.ring.slot(self.start.wrapping_add(self.filled));
        // SAFETY: the slot is reserved (between our producer index and the kernel's consumer
        // index + size), so the kernel does not read it until we publish it.
        unsafe { p.write_volatile(v) };
        self.filled += 1;
        true
    }

    /// Publishes the slots written so far; returns how many.
    pub(crate) fn submit(self) -> u32 {
        let n = self.filled;
        if n > 0 {
            self.ring.cached_prod = self.start.wrapping_add(n);
            // Release: the descriptor writes above happen-before the kernel reads them.
            self.ring.ring.producer().store(self.ring.cached_prod, Ordering::Release);
        }
        n
    }
}

/// The user-space consumer side of a ring (RX, completion).
pub(crate) struct Consumer<T> {
    ring: RingPtrs<T>,
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> Consumer<T> {
    fn new(ring: RingPtrs<T>) -> Self {
        Self { ring, cached_prod: 0, cached_cons: 0 }
    }

    /// Peeks up to `max` filled entries.
    pub(crate) fn peek(&mut self, max: u32) -> ConsBatch<'_, T> {
        let mut avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail == 0 {
            // Acquire: the kernel's descriptor writes happen-before our reads of them.
            self.cached_prod = self.ring.producer().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        ConsBatch { start: self.cached_cons, len: avail.min(max), ring: self }
    }
}

/// Entries peeked from a consumer ring. Read them with [`get`](Self::get), then
/// [`release`](Self::release) to return the slots to the kernel; dropping the batch releases
/// nothing (the entries are seen again by the next peek).
#[must_use = "a consumer batch returns no slot to the kernel unless released"]
pub(crate) struct ConsBatch<'a, T: Copy> {
    ring: &'a mut Consumer<T>,
    start: u32,
    len: u32,
}

impl<T: Copy> ConsBatch<'_, T> {
    /// Number of entries.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Entry `i` (< len), or `None`.
    pub(crate) fn get(&self, i: u32) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let p = self.ring.ring.slot(self.start.wrapping_add(i));
        // SAFETY: slots in [cached_cons, cached_prod) were published by the kernel (Acquire load in
        // `peek`) and are not rewritten until we advance the consumer index.
        Some(unsafe { p.read_volatile() })
    }

    /// Returns all entries of the batch to the kernel.
    pub(crate) fn release(self) {
        if self.len > 0 {
            self.ring.cached_cons = self.start.wrapping_add(self.len);
            // Release: our reads of the descriptors happen-before the kernel reuses the slots.
            self.ring.ring.consumer().store(self.ring.cached_cons, Ordering::Release);
        }
    }
}

/// One AF_XDP socket with its own UMEM and rings.
pub(crate) struct XskSocket {
    // Field order matters: the fd closes (unregistering the UMEM, unmapping nothing) before the
    // rings and the UMEM are unmapped.
    fd: OwnedFd,
    /// Fill ring: frames given to the kernel for RX.
    pub(crate) fill: Producer<u64>,
    /// Completion ring: frames the kernel finished sending.
    pub(crate) comp: Consumer<u64>,
    /// RX ring.
    pub(crate) rx: Consumer<XdpDesc>,
    /// TX ring.
    pub(crate) tx: Producer<XdpDesc>,
    /// The packet buffers.
    pub(crate) umem: Umem,
    mode: BindMode,
}

// SAFETY: the socket owns its mappings exclusively (no other handle to them exists in this
// process), the raw pointers are only dereferenced through `&mut self`/`&self` methods, and the
// kernel side is thread-agnostic. Moving the whole socket to a worker thread is sound.
unsafe impl Send for XskSocket {}

fn setsockopt<T>(fd: BorrowedFd<'_>, opt: libc::c_int, val: &T, what: &'static str) -> io::Result<()> {
    // SAFETY: `val` points to a live T of the size passed; the kernel copies it in.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            (val as *const T).cast(),
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_err(what));
    }
    Ok(())
}

fn getsockopt<T: Default>(fd: BorrowedFd<'_>, opt: libc::c_int, what: &'static str) -> io::Result<T> {
    let mut v = T::default();
    let mut len = core::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is a live, writable T of `len` bytes; the kernel writes at most `len` bytes.
    let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_XDP, opt, (&mut v as *mut T).cast(), &mut len) };
    if rc != 0 {
        return Err(last_err(what));
    }
    Ok(v)
}

impl XskSocket {
    /// Creates the socket, registers a fresh UMEM, maps the rings and binds to (ifindex, queue).
    pub(crate) fn new(cfg: &SocketConfig) -> io::Result<Self> {
        if !cfg.frame_size.is_power_of_two() || !(2048..=4096).contains(&cfg.frame_size) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame_size must be 2048 or 4096"));
        }
        if !cfg.ring_size.is_power_of_two() || cfg.ring_size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "ring_size must be a power of two"));
        }
        // SAFETY: plain socket(2); the result is checked and wrapped in OwnedFd at once.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(last_err("socket(AF_XDP)"));
        }
        // SAFETY: `raw` is a fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem = Umem::new(cfg.frame_size, cfg.frame_count)?;
        let reg = libc::xdp_umem_reg {
            addr: umem.map.ptr.as_ptr() as u64,
            len: umem.map.len as u64,
            chunk_size: cfg.frame_size,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        };
        setsockopt(fd.as_fd(), libc::XDP_UMEM_REG, &reg, "setsockopt(XDP_UMEM_REG)")?;
        let n = cfg.ring_size;
        setsockopt(fd.as_fd(), libc::XDP_UMEM_FILL_RING, &n, "setsockopt(XDP_UMEM_FILL_RING)")?;
        setsockopt(fd.as_fd(), libc::XDP_UMEM_COMPLETION_RING, &n, "setsockopt(XDP_UMEM_COMPLETION_RING)")?;
        setsockopt(fd.as_fd(), libc::XDP_RX_RING, &n, "setsockopt(XDP_RX_RING)")?;
        setsockopt(fd.as_fd(), libc::XDP_TX_RING, &n, "setsockopt(XDP_TX_RING)")?;
        let off: MmapOffsets = getsockopt(fd.as_fd(), libc::XDP_MMAP_OFFSETS, "getsockopt(XDP_MMAP_OFFSETS)")?;
        let off = off.0;
        let fill = RingPtrs::<u64>::map(fd.as_fd(), &off.fr, n, libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t)?;
        let comp = RingPtrs::<u64>::map(fd.as_fd(), &off.cr, n, libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t)?;
        let rx = RingPtrs::<XdpDesc>::map(fd.as_fd(), &off.rx, n, libc::XDP_PGOFF_RX_RING)?;
        let tx = RingPtrs::<XdpDesc>::map(fd.as_fd(), &off.tx, n, libc::XDP_PGOFF_TX_RING)?;
        let flags = libc::XDP_USE_NEED_WAKEUP
            | match cfg.mode {
                BindMode::Copy => libc::XDP_COPY,
                BindMode::ZeroCopy => libc::XDP_ZEROCOPY,
            };
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: flags,
            sxdp_ifindex: cfg.ifindex,
            sxdp_queue_id: cfg.queue,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid sockaddr_xdp of the length passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_xdp).cast(),
                core::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(last_err("bind(AF_XDP)"));
        }
        Ok(Self {
            fd,
            fill: Producer::new(fill, n),
            comp: Consumer::new(comp),
            rx: Consumer::new(rx),
            tx: Producer::new(tx, n),
            umem,
            mode: cfg.mode,
        })
    }

    /// The mode the socket is bound in.
    pub(crate) fn mode(&self) -> BindMode {
        self.mode
    }

    /// The fd, for the XSKMAP.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Kicks the kernel to send what the TX ring holds (`sendto` with no data). Errors that only
    /// mean "busy, try later" are ignored.
    pub(crate) fn kick_tx(&self) {
        // SAFETY: sendto with a null buffer of length 0 and no address only wakes the socket.
        let rc = unsafe {
            libc::sendto(self.fd.as_raw_fd(), core::ptr::null(), 0, libc::MSG_DONTWAIT, core::ptr::null(), 0)
        };
        if rc < 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if !matches!(e, libc::EAGAIN | libc::EBUSY | libc::ENOBUFS | libc::ENETDOWN | libc::EINTR) {
                log::debug!("xsk sendto kick: errno {e}");
            }
        }
    }

    /// Kicks the kernel to refill RX (`recvfrom` with no buffer), when the fill ring asks for it.
    pub(crate) fn kick_rx(&self) {
        // SAFETY: recvfrom with a null buffer of length 0 only wakes the socket.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                core::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            );
        }
    }
}

/// Raw IPv4 and IPv6 sockets with the IP header included: a packet written to one is routed by
/// the kernel, which resolves the next hop (ARP/ND) and queues the packet until it is known. The
/// AF_XDP workers use it for the first packets toward a peer whose neighbour entry the relay has
/// not seen yet, so no packet is lost to a cold neighbour cache.
pub(crate) struct KernelRoute {
    v4: Option<OwnedFd>,
    v6: Option<OwnedFd>,
}

/// `IPV6_HDRINCL` (Linux ≥ 4.5).
const IPV6_HDRINCL: libc::c_int = 36;

fn raw_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); checked and owned at once.
    let raw =
        unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, libc::IPPROTO_RAW) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if family == libc::AF_INET6 {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads one c_int from a live stack variable of that size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                IPV6_HDRINCL,
                (&one as *const libc::c_int).cast(),
                core::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

impl KernelRoute {
    /// Opens both sockets; a family that cannot be opened (no IPv6, no `CAP_NET_RAW`) is logged
    /// and left out (its packets then wait for the neighbour entry as before).
    pub(crate) fn open() -> Self {
        let open = |family, name| match raw_socket(family) {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::warn!("xsk: no raw {name} socket for cold next hops ({e}); their first packets are dropped");
                None
            }
        };
        Self { v4: open(libc::AF_INET, "IPv4"), v6: open(libc::AF_INET6, "IPv6") }
    }

    /// Sends one whole IP packet (header included) toward `dst` through the kernel's stack.
    pub(crate) fn send(&self, packet: &[u8], dst: std::net::IpAddr) -> io::Result<()> {
        match dst {
            std::net::IpAddr::V4(a) => {
                // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
                let mut sa: libc::sockaddr_in = unsafe { core::mem::zeroed() };
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
                send_to(self.v4.as_ref(), packet, &sa)
            }
            std::net::IpAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
                let mut sa: libc::sockaddr_in6 = unsafe { core::mem::zeroed() };
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_addr.s6_addr = a.octets();
                send_to(self.v6.as_ref(), packet, &sa)
            }
        }
    }
}

/// `sendto(2)` of `packet` on `fd` to the socket address `sa` (a `sockaddr_in` or `sockaddr_in6`).
fn send_to<T>(fd: Option<&OwnedFd>, packet: &[u8], sa: &T) -> io::Result<()> {
    let fd = fd.ok_or(io::ErrorKind::Unsupported)?;
    // SAFETY: `packet` is a live slice of the length passed; `sa` a live value of the size passed.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            libc::MSG_DONTWAIT,
            (sa as *const T).cast(),
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[repr(transparent)]
struct MmapOffsets(libc::xdp_mmap_offsets);

#[repr(transparent)]
struct RawStatistics(libc::xdp_statistics);

impl Default for RawStatistics {
    fn default() -> Self {
        Self(libc::xdp_statistics {
            rx_dropped: 0,
            rx_invalid_descs: 0,
            tx_invalid_descs: 0,
            rx_ring_full: 0,
            rx_fill_ring_empty_descs: 0,
            tx_ring_empty_descs: 0,
        })
    }
}

/// The kernel's drop counters of one XSK (`getsockopt(SOL_XDP, XDP_STATISTICS)`), monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStatistics {
    /// Frames the kernel could not deliver to the socket (fill ring empty or RX ring full, or
    /// too big for a frame).
    pub rx_dropped: u64,
    /// Of `rx_dropped`: the RX ring was full (user space not draining).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (no frame to receive into).
    pub rx_fill_ring_empty_descs: u64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the TX ring.
    pub tx_invalid_descs: u64,
    /// Times the kernel found the TX ring empty when woken to send.
    pub tx_ring_empty_descs: u64,
}

/// Reads the XSK statistics of the AF_XDP socket `fd`.
pub(crate) fn statistics(fd: BorrowedFd<'_>) -> io::Result<XskStatistics> {
    let s: RawStatistics = getsockopt(fd, libc::XDP_STATISTICS, "getsockopt(XDP_STATISTICS)")?;
    let s = s.0;
    Ok(XskStatistics {
        rx_dropped: s.rx_dropped,
        rx_ring_full: s.rx_ring_full,
        rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
        rx_invalid_descs: s.rx_invalid_descs,
        tx_invalid_descs: s.tx_invalid_descs,
        tx_ring_empty_descs: s.tx_ring_empty_descs,
    })
}

impl Default for MmapOffsets {
    fn default() -> Self {
        let z = libc::xdp_ring_offset { producer: 0, consumer: 0, desc: 0, flags: 0 };
        Self(libc::xdp_mmap_offsets { rx: z, tx: z, fr: z, cr: z })
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (idle back-off of the workers;
/// never called while packets are flowing). Returns how many are readable (0: timeout, -1: error
/// such as `EINTR`).
pub(crate) fn poll_readable<'a>(fds: impl Iterator<Item = BorrowedFd<'a>>, timeout_ms: i32) -> i32 {
    let mut pfds = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 8];
    let mut n = 0;
    for (p, fd) in pfds.iter_mut().zip(fds) {
        *p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        n += 1;
    }
    // SAFETY: `pfds[..n]` is a valid, writable array of pollfd.
    unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) }
}
