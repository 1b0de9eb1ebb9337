//! Arbitrary datagrams into a relay holding sessions with A/µ conversion, G.729 ↔ G.711
//! transcoding, DTMF (and in-band interworking), T.38, rtcp-mux, strict latching and
//! re-packetising across ptimes (the G.729 and in-band sessions' legs differ).
//! Invariants: no panic; a forwarded length fits the buffer; counters add up.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::relay::{Relay, RelayConfig, Verdict};
use xtrunk_ring::msg::{
    Codec, Command, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec, SrtpKeys, SrtpSuite,
};

fn map(list: &[(u8, Codec)]) -> PtMap {
    let mut m = PtMap::new();
    for &(pt, codec) in list {
        m.push(PtEntry { pt, codec });
    }
    m
}

fn leg(port: u16, remote: u16, mux: bool, latch: LatchPolicy, pt_map: PtMap) -> LegSpec {
    LegSpec {
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        remote: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), remote)),
        remote_rtcp_port: 0,
        rtcp_mux: mux,
        latch,
        signal_ip: None,
        pt_map,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Relay::new(RelayConfig { port_min: 2000, port_max: 2100, max_sessions: 6 });
    let a = map(&[(8, Codec::Pcma), (101, Codec::TelephoneEvent), (13, Codec::Cn)]);
    let b = map(&[(0, Codec::Pcmu), (96, Codec::TelephoneEvent)]);
    let specs = [
        SessionSpec {
            id: SessionId(1),
            legs: [leg(2000, 4000, false, LatchPolicy::Once, a), leg(2002, 5000, false, LatchPolicy::Follow, b)],
            media_timeout_ms: 50,
            leg_timeout_ms: [40, 60],
            allow_fast_path: true,
        },
        SessionSpec {
            id: SessionId(2),
            legs: [
                leg(2010, 4010, true, LatchPolicy::Strict, PtMap::new()),
                leg(2012, 5010, true, LatchPolicy::Once, PtMap::new()),
            ],
            media_timeout_ms: 0,
            leg_timeout_ms: [0; 2],
            allow_fast_path: true,
        },
    ];
    let mut srtp = SessionSpec {
        id: SessionId(3),
        legs: [
            leg(2020, 4020, false, LatchPolicy::Once, PtMap::new()),
            leg(2022, 5020, false, LatchPolicy::Once, PtMap::new()),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    let keys = SrtpKeys { suite: SrtpSuite::AesCm128HmacSha1_80, key: [7; 32], salt: [9; 14] };
    srtp.legs[0].crypto = LegCrypto { rx: Some(keys), tx: Some(SrtpKeys { suite: SrtpSuite::AeadAes128Gcm, ..keys }) };
    // G.729 on one leg, G.711 on the other: transcoded both ways (#18).
    let g729 = SessionSpec {
        id: SessionId(4),
        legs: [
            leg(2030, 4030, false, LatchPolicy::Once, map(&[(18, Codec::G729), (101, Codec::TelephoneEvent)])),
            leg(2032, 5030, true, LatchPolicy::Once, map(&[(0, Codec::Pcmu), (101, Codec::TelephoneEvent)])),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    // DTMF interworking (telephone-event on leg 1 only) and T.38 (UDPTL both legs).
    let inband = SessionSpec {
        id: SessionId(5),
        legs: [
            leg(2040, 4040, false, LatchPolicy::Once, map(&[(8, Codec::Pcma)])),
            leg(2042, 5040, false, LatchPolicy::Once, map(&[(0, Codec::Pcmu), (101, Codec::TelephoneEvent)])),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    let t38 = SessionSpec {
        id: SessionId(6),
        legs: [
            leg(2060, 4060, false, LatchPolicy::Once, map(&[(0, Codec::T38)])),
            leg(2062, 5060, false, LatchPolicy::Once, map(&[(0, Codec::T38)])),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: true,
    };
    let (mut g729, mut inband) = (g729, inband);
    (g729.legs[0].ptime_ms, g729.legs[1].ptime_ms) = (20, 10);
    (inband.legs[0].ptime_ms, inband.legs[1].ptime_ms) = (30, 20);
    for s in specs.into_iter().chain([srtp, g729, inband, t38]) {
        r.apply(0, &Command::Create(s), &mut |_| {});
    }
    const PORTS: [u16; 16] =
        [2000, 2001, 2002, 2003, 2010, 2012, 2050, 2020, 2021, 2022, 2030, 2032, 2040, 2042, 2060, 2062];
    let mut now = 1;
    let mut rest = data;
    let mut handled = 0u64;
    let mut dropped = 0u64;
    // Each record: [port selector, source selector, length, bytes...].
    while rest.len() >= 3 {
        let port = PORTS[usize::from(rest[0]) % PORTS.len()];
        let src_port = [4000u16, 4001, 5000, 5001, 4010, 5010, 9999, 4020, 5020, 4030, 5030, 4040, 5040, 4060, 5060]
            [usize::from(rest[1]) % 15];
        let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), src_port);
        let len = usize::from(rest[2]).min(rest.len() - 3);
        // Room after the datagram: the backends' (transcoding G.729 to G.711 grows 8×), or tight.
        let room = if rest[1] & 0x80 != 0 { 2048 } else { 64 };
        let mut buf = vec![0u8; len + room];
        buf[..len].copy_from_slice(&rest[3..3 + len]);
        // Occasionally claim a length past the buffer.
        let claimed = if rest[0] == 0xff { buf.len() + 1 } else { len };
        match r.handle_packet(now, port, src, &mut buf, claimed) {
            Verdict::Forward { len: out, from, .. } => {
                assert!(out <= buf.len());
                assert!(PORTS.contains(&from.port()) || [2011, 2013, 2023, 2031, 2041, 2043].contains(&from.port()));
            }
            Verdict::Drop(_) => dropped += 1,
        }
        // Extra packets of a shorter ptime, into a tight or a roomy buffer.
        let mut extra = vec![0u8; room];
        while let Some(v) = r.poll_reframed(&mut extra) {
            let Verdict::Forward { len: out, .. } = v else { panic!("poll_reframed returned {v:?}") };
            assert!(out <= extra.len());
        }
        handled += 1;
        now += u64::from(rest[1] % 40);
        r.poll_timeouts(now, &mut |_| {});
        for p in PORTS {
            if let Some(rule) = r.fast_path_rule(p) {
                assert_ne!(rule.from.port(), p);
            }
        }
        rest = &rest[3 + len..];
    }
    assert_eq!(r.counters().total(), dropped);
    assert!(dropped <= handled);
    let mut n = 0;
    r.apply(now, &Command::Dump { token: 1 }, &mut |_| n += 1);
    assert_eq!(n, 7);
});
