//! Syscall shim of the socket backend: epoll, eventfd, `recvmmsg`/`sendmmsg`, `RLIMIT_NOFILE`.
//!
//! # Safety
//!
//! This is the only module of the socket backend with `unsafe`. Its rules:
//! - Every file descriptor passed to a syscall is owned by a live Rust value for the duration of
//!   the call (`OwnedFd`, `std::net::UdpSocket`), so it cannot be closed or reused concurrently.
//! - [`MmsgBatch`] holds `mmsghdr`s whose raw pointers point into its own heap buffers (`Box<[_]>`,
//!   never resized after construction, so moving the struct does not move what they point to).
//!   Only `&mut self` methods hand those headers to the kernel, so no Rust reference to the buffers
//!   is alive while the kernel writes them.
//! - Lengths given to the kernel are the real lengths of the buffers they describe; values the
//!   kernel returns (message lengths, address lengths) are clamped before slicing.

#![deny(unsafe_op_in_unsafe_fn)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The `RLIMIT_NOFILE` in force: (soft, hard); (0, 0) if it cannot be read.
pub(crate) fn nofile_limits() -> (u64, u64) {
    // SAFETY: zeroed rlimit is a valid value of a plain C struct.
    let mut lim: libc::rlimit = unsafe { zeroed() };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return (0, 0);
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// Raises the soft (and, with the privilege, the hard) `RLIMIT_NOFILE` to at least `want`.
/// Returns the soft limit in force afterwards.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    // SAFETY: zeroed rlimit is a valid value of a plain C struct.
    let mut lim: libc::rlimit = unsafe { zeroed() };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur >= want {
        return lim.rlim_cur;
    }
    let mut new = lim;
    new.rlim_cur = want;
    if new.rlim_max < want {
        new.rlim_max = want;
    }
    // SAFETY: `new` is a valid rlimit; failure leaves the limit unchanged.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        // Without CAP_SYS_RESOURCE: go as high as the hard limit allows.
        new.rlim_max = lim.rlim_max;
        new.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
            return lim.rlim_cur;
        }
    }
    new.rlim_cur
}

/// An epoll instance (level-triggered, `EPOLLIN` only).
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

/// One readiness event: the token registered with the fd.
pub(crate) type EpollEvent = libc::epoll_event;

/// The token of an event.
pub(crate) fn event_token(ev: &EpollEvent) -> u64 {
    ev.u64
}

/// An empty event for preallocating arrays.
pub(crate) fn empty_event() -> EpollEvent {
    libc::epoll_event { events: 0, u64: 0 }
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; on success we own the returned fd.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Registers `fd` for input readiness with `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: both fds are open (owned by live values); `ev` is valid for the call.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Unregisters `fd`.
    pub(crate) fn del(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; the event argument is ignored but must be non-null on old kernels.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` (−1 forever); returns how many entries of `events` were filled.
    pub(crate) fn wait(&self, events: &mut [EpollEvent], timeout_ms: i32) -> io::Result<usize> {
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is a valid writable array of `max` epoll_event.
        match cvt(unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) }) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// An eventfd used to wake a worker blocked in `epoll_wait`.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; on success we own the returned fd.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the eventfd readable.
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64; EAGAIN (counter saturated) is harmless.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter.
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN when already drained is harmless.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// Writes `addr` into `storage`; returns the address length.
fn write_sockaddr(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { (storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>().write(sin) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { (storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>().write(sin6) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a socket address the kernel wrote into `storage`.
fn read_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is large enough.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6, and it is large enough.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Size of one packet buffer.
pub(crate) const BUF_SIZE: usize = 2048;
/// Room kept free after a received datagram (SRTP tags added on transmit).
pub(crate) const TAILROOM: usize = 64;

/// Preallocated buffers and headers for one `recvmmsg` batch and the `sendmmsg` calls that
/// forward it from the same buffers.
pub(crate) struct MmsgBatch {
    bufs: Box<[u8]>,
    /// Never read from Rust: kept alive because `rx_hdr` points into it.
    #[allow(dead_code)]
    rx_iov: Box<[libc::iovec]>,
    rx_addr: Box<[libc::sockaddr_storage]>,
    rx_hdr: Box<[libc::mmsghdr]>,
    tx_iov: Box<[libc::iovec]>,
    tx_addr: Box<[libc::sockaddr_storage]>,
    tx_hdr: Box<[libc::mmsghdr]>,
    tx_len: usize,
}

// SAFETY: the raw pointers inside the headers point only into the batch's own boxes, which move
// with it between threads; nothing else aliases them.
unsafe impl Send for MmsgBatch {}

impl std::fmt::Debug for MmsgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgBatch").field("capacity", &self.rx_hdr.len()).finish()
    }
}

impl MmsgBatch {
    /// A batch of `n` packet buffers.
    pub(crate) fn new(n: usize) -> Self {
        let n = n.max(1);
        let mut bufs = vec![0u8; n * BUF_SIZE].into_boxed_slice();
        // SAFETY: iovec, sockaddr_storage and mmsghdr are plain C structs for which all-zero
        // bytes are valid (null pointers, zero lengths).
        let zero_iov: libc::iovec = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_ss: libc::sockaddr_storage = unsafe { zeroed() };
        // SAFETY: as above.
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        let mut rx_iov = vec![zero_iov; n].into_boxed_slice();
        let mut rx_addr = vec![zero_ss; n].into_boxed_slice();
        let mut rx_hdr = vec![zero_hdr; n].into_boxed_slice();
        let tx_iov = vec![zero_iov; n].into_boxed_slice();
        let mut tx_addr = vec![zero_ss; n].into_boxed_slice();
        let mut tx_hdr = vec![zero_hdr; n].into_boxed_slice();
        let base = bufs.as_mut_ptr();
        for i in 0..n {
            // The pointer arithmetic stays inside `bufs` (i < n, buffers of BUF_SIZE).
            rx_iov[i].iov_base = base.wrapping_add(i * BUF_SIZE).cast();
            rx_iov[i].iov_len = BUF_SIZE - TAILROOM;
            rx_hdr[i].msg_hdr.msg_name = (&mut rx_addr[i] as *mut libc::sockaddr_storage).cast();
            rx_hdr[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            rx_hdr[i].msg_hdr.msg_iov = &mut rx_iov[i];
            rx_hdr[i].msg_hdr.msg_iovlen = 1;
            tx_hdr[i].msg_hdr.msg_name = (&mut tx_addr[i] as *mut libc::sockaddr_storage).cast();
            tx_hdr[i].msg_hdr.msg_iovlen = 1;
        }
        let mut b = Self { bufs, rx_iov, rx_addr, rx_hdr, tx_iov, tx_addr, tx_hdr, tx_len: 0 };
        for i in 0..n {
            b.tx_hdr[i].msg_hdr.msg_iov = &mut b.tx_iov[i];
        }
        b
    }

    /// Number of packet buffers.
    pub(crate) fn capacity(&self) -> usize {
        self.rx_hdr.len()
    }

    /// Receives up to `max` datagrams from `sock` without blocking. Returns how many
    /// (0 when the socket has nothing).
    pub(crate) fn recv(&mut self, sock: &UdpSocket, max: usize) -> io::Result<usize> {
        let n = max.min(self.capacity());
        for i in 0..n {
            self.rx_hdr[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            self.rx_hdr[i].msg_hdr.msg_flags = 0;
            self.rx_hdr[i].msg_len = 0;
        }
        // SAFETY: the headers describe `n` valid buffers/addresses owned by `self` (see module
        // docs); `sock` keeps the fd open; MSG_DONTWAIT makes it non-blocking.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.rx_hdr.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(r as usize)
    }

    /// Datagram `i` of the last `recv`: (source, whole buffer, datagram length). Truncated
    /// datagrams (larger than the buffer) report `None` as source.
    pub(crate) fn received(&mut self, i: usize) -> (Option<SocketAddr>, &mut [u8], usize) {
        let h = &self.rx_hdr[i];
        let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let len = (h.msg_len as usize).min(BUF_SIZE - TAILROOM);
        let src = if truncated { None } else { read_sockaddr(&self.rx_addr[i], h.msg_hdr.msg_namelen) };
        (src, &mut self.bufs[i * BUF_SIZE..(i + 1) * BUF_SIZE], len)
    }

    /// Packet buffer `i` (for building datagrams to send).
    pub(crate) fn buffer_mut(&mut self, i: usize) -> &mut [u8] {
        let i = i.min(self.capacity() - 1);
        &mut self.bufs[i * BUF_SIZE..(i + 1) * BUF_SIZE]
    }

    /// Queues buffer `i` (first `len` bytes) for sending to `to`.
    pub(crate) fn push_tx(&mut self, i: usize, len: usize, to: &SocketAddr) {
        let k = self.tx_len;
        if k >= self.capacity() || i >= self.capacity() {
            return;
        }
        let len = len.min(BUF_SIZE);
        self.tx_iov[k].iov_base = self.bufs.as_mut_ptr().wrapping_add(i * BUF_SIZE).cast();
        self.tx_iov[k].iov_len = len;
        let alen = write_sockaddr(to, &mut self.tx_addr[k]);
        self.tx_hdr[k].msg_hdr.msg_namelen = alen;
        self.tx_len += 1;
    }

    /// Number of queued transmissions.
    pub(crate) fn tx_queued(&self) -> usize {
        self.tx_len
    }

    /// Sends queued transmissions `range` from `sock`. Returns (sent, last error if any).
    pub(crate) fn send(&mut self, sock: &UdpSocket, range: std::ops::Range<usize>) -> (usize, Option<io::Error>) {
        let end = range.end.min(self.tx_len);
        let mut at = range.start.min(end);
        let mut sent = 0;
        while at < end {
            // SAFETY: headers `at..end` were filled by `push_tx` and point into `self`'s buffers;
            // `sock` keeps the fd open.
            let r = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    self.tx_hdr.as_mut_ptr().add(at),
                    (end - at) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the failing datagram (e.g. ECONNREFUSED from an ICMP, EAGAIN) and go on.
                at += 1;
                if at >= end {
                    return (sent, Some(e));
                }
                continue;
            }
            sent += r as usize;
            at += r as usize;
        }
        (sent, None)
    }

    /// Forgets the queued transmissions.
    pub(crate) fn clear_tx(&mut self) {
        self.tx_len = 0;
    }
}

/// Sets the receive buffer of `sock` to `bytes`: `SO_RCVBUFFORCE` (ignores `rmem_max`, needs
/// CAP_NET_ADMIN), else `SO_RCVBUF`. Returns the size the kernel reports afterwards.
pub(crate) fn set_recv_buffer(sock: &UdpSocket, bytes: usize) -> io::Result<usize> {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    let fd = sock.as_raw_fd();
    // SAFETY: `v` is a valid c_int of length `len`; `sock` keeps the fd open.
    let r =
        unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&v as *const libc::c_int).cast(), len) };
    if r != 0 {
        // SAFETY: as above.
        cvt(unsafe {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&v as *const libc::c_int).cast(), len)
        })?;
    }
    let mut out: libc::c_int = 0;
    let mut olen = len;
    // SAFETY: `out`/`olen` are valid writable locations of the sizes given.
    cvt(unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&mut out as *mut libc::c_int).cast(), &mut olen)
    })?;
    Ok(out.max(0) as usize)
}

/// A set of descriptors to wait on with `ppoll` (nanosecond timeouts, unlike `epoll_wait`).
#[derive(Debug)]
pub(crate) struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// A set over `fds`. A descriptor closed meanwhile makes `ppoll` report `POLLNVAL` (or
    /// poll a reused descriptor): wrong results, never memory unsafety.
    pub(crate) fn new(fds: &[RawFd]) -> Self {
        Self { fds: fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect() }
    }

    /// Waits until one fd is readable or `timeout` passes; returns how many are readable.
    pub(crate) fn wait(&mut self, timeout: std::time::Duration) -> io::Result<usize> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: `fds` is a valid array of `len` pollfd; `ts` lives across the call; a null
        // sigmask leaves the mask unchanged.
        let r = unsafe { libc::ppoll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
        match cvt(r) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Binds a non-blocking UDP socket on `ip:port`.
pub(crate) fn bind_udp(ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddr::new(ip, port))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_roundtrip() {
        for a in ["127.0.0.1:5004", "[::1]:6000", "[2001:db8::1]:1"] {
            let a: SocketAddr = a.parse().unwrap();
            // SAFETY: zeroed sockaddr_storage is valid.
            let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
            let l = write_sockaddr(&a, &mut ss);
            assert_eq!(read_sockaddr(&ss, l), Some(a));
        }
    }

    #[test]
    fn batch_echo_over_loopback() {
        let a = bind_udp(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        let b = bind_udp(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        for i in 0..5u8 {
            a.send_to(&[i; 10], ba).unwrap();
        }
        let mut batch = MmsgBatch::new(8);
        let mut got = 0;
        for _ in 0..100 {
            got += batch.recv(&b, 8).unwrap();
            if got == 5 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, 5);
        for i in 0..5 {
            let (src, buf, len) = batch.received(i);
            assert_eq!((src, len), (Some(aa), 10));
            buf[0] = 100 + i as u8;
            batch.push_tx(i, len, &aa);
        }
        assert_eq!(batch.send(&b, 0..batch.tx_queued()).0, 5);
        let mut buf = [0u8; 64];
        std::thread::sleep(std::time::Duration::from_millis(10));
        for i in 0..5u8 {
            let (n, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!((n, from, buf[0]), (10, ba, 100 + i));
        }
    }
}
