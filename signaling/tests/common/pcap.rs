//! Classic pcap files of UDP datagrams (Ethernet, IPv4, UDP), for SIPp's `play_pcap_audio` /
//! `play_pcap_image`: SIPp sends each record's UDP payload toward the SDP address it learnt, at
//! the records' relative times.

/// Writes `payloads` as one UDP flow 127.0.0.1:`sport` → 127.0.0.1:`dport`, one record every
/// `gap_us` microseconds.
pub(crate) fn write_udp(path: &std::path::Path, payloads: &[Vec<u8>], gap_us: u32, (sport, dport): (u16, u16)) {
    let mut w = Vec::new();
    // Global header: magic, v2.4, tz 0, sigfigs 0, snaplen, LINKTYPE_ETHERNET.
    w.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65_535, 1] {
        w.extend_from_slice(&v.to_le_bytes());
    }
    for (i, p) in payloads.iter().enumerate() {
        let t = u64::from(gap_us) * i as u64;
        let len = 14 + 20 + 8 + p.len();
        for v in [(t / 1_000_000) as u32, (t % 1_000_000) as u32, len as u32, len as u32] {
            w.extend_from_slice(&v.to_le_bytes());
        }
        // Ethernet: locally administered MACs, IPv4.
        w.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let ip_len = (20 + 8 + p.len()) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let sum = ip.chunks_exact(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        w.extend_from_slice(&ip);
        w.extend_from_slice(&sport.to_be_bytes());
        w.extend_from_slice(&dport.to_be_bytes());
        w.extend_from_slice(&((8 + p.len()) as u16).to_be_bytes());
        w.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (SIPp recomputes it)
        w.extend_from_slice(p);
    }
    std::fs::write(path, w).unwrap();
}

/// An RTP packet (version 2, no CSRC, no extension).
pub(crate) fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}
