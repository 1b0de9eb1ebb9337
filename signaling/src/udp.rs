//! The SIP UDP sockets of the shell: bound with large buffers and `IP_RECVERR`.

use std::net::SocketAddr;

use mio::net::UdpSocket;

/// Requested SO_RCVBUF/SO_SNDBUF of the SIP UDP sockets. A burst of calls must not overflow the
/// receive queue while the loop is busy (a lost datagram costs a 500 ms T1 retransmission); the
/// kernel caps the request at `net.core.rmem_max`/`wmem_max` (and reports twice what it grants).
pub const UDP_BUFFER_BYTES: usize = 8 << 20;

/// A non-blocking UDP socket bound to `addr` with [`UDP_BUFFER_BYTES`] buffers (best effort,
/// logged), as a mio socket.
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = s.set_recv_buffer_size(UDP_BUFFER_BYTES) {
        log::warn!("udp {addr}: SO_RCVBUF {UDP_BUFFER_BYTES}: {e}");
    }
    if let Err(e) = s.set_send_buffer_size(UDP_BUFFER_BYTES) {
        log::warn!("udp {addr}: SO_SNDBUF {UDP_BUFFER_BYTES}: {e}");
    }
    let (rcv, snd) = (s.recv_buffer_size().unwrap_or(0), s.send_buffer_size().unwrap_or(0));
    if rcv < UDP_BUFFER_BYTES {
        log::warn!(
            "udp {addr}: receive buffer {rcv} B granted of {UDP_BUFFER_BYTES} B asked (raise net.core.rmem_max)"
        );
    } else {
        log::info!("udp {addr}: receive buffer {rcv} B, send buffer {snd} B (kernel-reported, i.e. doubled)");
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    if let Err(e) = crate::icmp::enable(&s, addr.is_ipv6()) {
        log::warn!("udp {addr}: IP_RECVERR: {e} (ICMP unreachable will not fail a target at once)");
    }
    Ok(UdpSocket::from_std(s.into()))
}
