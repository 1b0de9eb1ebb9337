//! A whole frame the way the AF_XDP path sees it: Ethernet (+VLAN) → IPv4/IPv6 → UDP → RTP/RTCP.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::ethernet::{ethertype, EthernetFrame, EthernetRepr};
use xtrunk_datapath::wire::ipv4::{Ipv4Packet, PROTO_UDP};
use xtrunk_datapath::wire::ipv6::Ipv6Packet;
use xtrunk_datapath::wire::rtcp::validate_compound;
use xtrunk_datapath::wire::rtp::{classify, MuxKind, RtpPacket};
use xtrunk_datapath::wire::udp::UdpPacket;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = EthernetFrame::new_checked(data) else {
        return;
    };
    let repr = EthernetRepr::parse(&f).unwrap();
    let mut hdr = [0u8; 18];
    let n = repr.emit(&mut hdr).unwrap();
    assert_eq!(n, f.header_len());
    match f.ethertype() {
        ethertype::IPV4 => {
            let Ok(ip) = Ipv4Packet::new_checked(f.payload()) else {
                return;
            };
            if ip.protocol() == PROTO_UDP {
                udp(IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), ip.payload());
            }
        }
        ethertype::IPV6 => {
            let Ok(ip) = Ipv6Packet::new_checked(f.payload()) else {
                return;
            };
            if ip.next_header() == PROTO_UDP {
                udp(IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), ip.payload());
            }
        }
        _ => {}
    }
});

fn udp(src: IpAddr, dst: IpAddr, l4: &[u8]) {
    let Ok(u) = UdpPacket::new_checked(l4) else {
        return;
    };
    let _ = u.verify_checksum(&src, &dst);
    match classify(u.payload()) {
        MuxKind::Rtp => {
            if let Ok(p) = RtpPacket::new_checked(u.payload()) {
                let _ = p.payload();
            }
        }
        MuxKind::Rtcp => {
            let _ = validate_compound(u.payload(), false);
        }
        _ => {}
    }
}
