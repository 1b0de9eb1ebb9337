//! ICMP errors on the SIP UDP sockets (`IP_RECVERR`/`IPV6_RECVERR`): a datagram we sent that
//! came back "port unreachable", "host unreachable" or "network unreachable" names its
//! destination, which the core takes as a transport failure of that target (RFC 3261 §18.4,
//! §8.1.3.1): the hunt moves on at once instead of waiting for a timer.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage};

/// Error-queue entries read per call, at most.
const DRAIN_MAX: usize = 64;

/// Asks the kernel to queue ICMP errors for datagrams sent from `fd`.
pub(crate) fn enable(fd: &impl AsFd, v6: bool) -> nix::Result<()> {
    if v6 {
        setsockopt(fd, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(fd, sockopt::Ipv4RecvErr, &true)
    }
}

/// Reads the socket's error queue; pushes the destination of each datagram an ICMP error
/// refused. Never blocks.
pub(crate) fn drain(fd: &impl AsFd, out: &mut Vec<SocketAddr>) {
    let raw = fd.as_fd().as_raw_fd();
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    for _ in 0..DRAIN_MAX {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
        let Ok(m) = recvmsg::<SockaddrStorage>(raw, &mut iov, Some(&mut cmsg), flags) else { return };
        let icmp = m.cmsgs().is_ok_and(|mut c| {
            c.any(|c| match c {
                ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => {
                    matches!(e.ee_errno as i32, libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
                }
                _ => false,
            })
        });
        if let (true, Some(a)) = (icmp, m.address.as_ref().and_then(to_socket_addr)) {
            out.push(a);
        }
    }
}

fn to_socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    let v6 = s.as_sockaddr_in6()?;
    (s.family().is_some()).then(|| SocketAddr::from((v6.ip(), v6.port())))
}

/// ICMP errors queued on `fd`: each names a destination we could not reach, a transport
/// failure for the core's transactions toward it.
pub(crate) fn fail_unreachable(fd: &impl AsFd, core: &mut crate::b2bua::Core) {
    let mut refused = Vec::new();
    drain(fd, &mut refused);
    for remote in refused {
        log::info!("udp {remote}: unreachable (ICMP); failing its transactions");
        core.handle_transport_error(std::time::Instant::now(), remote);
    }
}
