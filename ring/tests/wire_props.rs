//! Property tests of the wire format: round trips, and the decoder never panics.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;
use xtrunk_ring::msg::*;
use xtrunk_ring::wire::{self, DecodeError, Slot, SLOT_SIZE};

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>(), any::<u32>(), any::<u32>())
            .prop_map(|(ip, port, fl, sc)| { SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, fl, sc)) }),
    ]
}

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![
        Just(Codec::Pcmu),
        Just(Codec::Pcma),
        Just(Codec::TelephoneEvent),
        Just(Codec::G722),
        Just(Codec::G729),
        Just(Codec::T38),
        Just(Codec::Opus),
        Just(Codec::Cn),
    ]
}

fn pt_map() -> impl Strategy<Value = PtMap> {
    prop::collection::vec((0u8..=127, codec()), 0..=MAX_PT + 2).prop_map(|v| {
        let mut m = PtMap::new();
        for (pt, codec) in v {
            m.push(PtEntry { pt, codec });
        }
        m
    })
}

fn keys() -> impl Strategy<Value = SrtpKeys> {
    let suite = prop_oneof![
        Just(SrtpSuite::AesCm128HmacSha1_80),
        Just(SrtpSuite::AesCm128HmacSha1_32),
        Just(SrtpSuite::AeadAes128Gcm),
        Just(SrtpSuite::AeadAes256Gcm),
    ];
    (suite, any::<[u8; 32]>(), any::<[u8; 14]>()).prop_map(|(suite, mut key, mut salt)| {
        key[suite.key_len()..].fill(0);
        salt[suite.salt_len()..].fill(0);
        SrtpKeys { suite, key, salt }
    })
}

fn leg() -> impl Strategy<Value = LegSpec> {
    let latch = prop_oneof![Just(LatchPolicy::Once), Just(LatchPolicy::Follow), Just(LatchPolicy::Strict)];
    (
        addr(),
        proptest::option::of(addr()),
        any::<u16>(),
        any::<bool>(),
        latch,
        proptest::option::of(addr().prop_map(|a| a.ip())),
        pt_map(),
        proptest::option::of(keys()),
        proptest::option::of(keys()),
        (0u8..=12).prop_map(|n| n * 10),
    )
        .prop_map(|(local, remote, remote_rtcp_port, rtcp_mux, latch, signal_ip, pt_map, rx, tx, ptime_ms)| {
            LegSpec {
                local,
                remote,
                remote_rtcp_port,
                rtcp_mux,
                latch,
                signal_ip,
                pt_map,
                crypto: LegCrypto { rx, tx },
                ptime_ms,
            }
        })
}

fn id() -> impl Strategy<Value = SessionId> {
    (1u64..).prop_map(SessionId)
}

fn spec() -> impl Strategy<Value = SessionSpec> {
    (id(), leg(), leg(), any::<u32>(), any::<[u32; 2]>(), any::<bool>()).prop_map(
        |(id, a, b, media_timeout_ms, leg_timeout_ms, allow_fast_path)| SessionSpec {
            id,
            legs: [a, b],
            media_timeout_ms,
            leg_timeout_ms,
            allow_fast_path,
        },
    )
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        spec().prop_map(Command::Create),
        spec().prop_map(Command::Update),
        id().prop_map(Command::Delete),
        any::<u64>().prop_map(|token| Command::Dump { token }),
    ]
}

fn stats() -> impl Strategy<Value = StreamStats> {
    (any::<[u64; 9]>(), any::<u32>(), 0..=1000u16, 0..=450u16).prop_map(|(v, jitter, r_x10, mos_x100)| StreamStats {
        packets: v[0],
        bytes: v[1],
        lost: v[2],
        reordered: v[3],
        duplicates: v[4],
        jitter,
        rtcp_packets: v[5],
        dropped: v[6],
        rejected_sources: v[8],
        last_rx_ms: v[7],
        r_x10,
        mos_x100,
    })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::PortOutOfRange),
        Just(ErrorCode::PortInUse),
        Just(ErrorCode::UnknownSession),
        Just(ErrorCode::DuplicateSession),
        Just(ErrorCode::InvalidSpec),
        Just(ErrorCode::CapacityExhausted),
        Just(ErrorCode::BindFailed),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        id().prop_map(Event::Created),
        id().prop_map(Event::Updated),
        (id(), stats(), stats()).prop_map(|(id, a, b)| Event::Deleted {
            id,
            reason: DeleteReason::Requested,
            stats: [a, b]
        }),
        (id(), error_code(), any::<u16>()).prop_map(|(id, code, port)| Event::Error { id, code, port }),
        (id(), any::<u64>(), proptest::option::of(0u8..2)).prop_map(|(id, idle_ms, leg)| Event::MediaTimeout {
            id,
            idle_ms,
            leg
        }),
        (id(), 0u8..2, 0u8..16, any::<bool>(), any::<u32>())
            .prop_map(|(id, leg, event, end, duration_ms)| Event::Dtmf { id, leg, event, end, duration_ms }),
        spec().prop_map(Event::Session),
        (any::<u64>(), any::<u32>()).prop_map(|(token, count)| Event::DumpDone { token, count }),
    ]
}

fn slot_from(bytes: &[u8]) -> Slot {
    let mut s = Slot::default();
    bytemuck::bytes_of_mut(&mut s).copy_from_slice(bytes);
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn command_round_trip(c in command(), seq in any::<u32>()) {
        let slot = wire::encode_command(&c, seq);
        prop_assert_eq!(wire::decode_command(&slot), Ok(c));
        prop_assert_eq!(wire::check_seq(&slot, u64::from(seq)), Ok(()));
        // Commands are never events.
        prop_assert!(matches!(wire::decode_event(&slot), Err(DecodeError::UnknownKind(_))));
    }

    #[test]
    fn event_round_trip(e in event(), seq in any::<u32>()) {
        let slot = wire::encode_event(&e, seq);
        prop_assert_eq!(wire::decode_event(&slot), Ok(e));
        prop_assert!(matches!(wire::decode_command(&slot), Err(DecodeError::UnknownKind(_))));
    }

    /// Arbitrary bytes: never panics (almost always a checksum or kind error).
    #[test]
    fn decode_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), SLOT_SIZE)) {
        let slot = slot_from(&bytes);
        let _ = wire::decode_command(&slot);
        let _ = wire::decode_event(&slot);
    }

    /// A valid slot with random bytes changed and the checksum recomputed, so the field
    /// validators (not just the checksum) see hostile content: never panics, and whatever is
    /// accepted re-encodes to the same message.
    #[test]
    fn decode_mutated_sealed(c in command(), e in event(),
                             edits in prop::collection::vec((0usize..SLOT_SIZE, any::<u8>()), 1..8)) {
        for mut slot in [wire::encode_command(&c, 0), wire::encode_event(&e, 0)] {
            let bytes = bytemuck::bytes_of_mut(&mut slot);
            for &(i, v) in &edits {
                bytes[i] = v;
            }
            wire::seal(&mut slot);
            if let Ok(c2) = wire::decode_command(&slot) {
                prop_assert_eq!(wire::decode_command(&wire::encode_command(&c2, slot.seq)), Ok(c2));
            }
            if let Ok(e2) = wire::decode_event(&slot) {
                prop_assert_eq!(wire::decode_event(&wire::encode_event(&e2, slot.seq)), Ok(e2));
            }
        }
    }

    /// Any single bit flip of an encoded message is caught (CRC-32 detects all 1-bit errors).
    #[test]
    fn single_bit_flip_rejected(c in command(), bit in 0usize..(16 + 440) * 8) {
        let mut slot = wire::encode_command(&c, 0);
        let len = 16 + slot.len as usize;
        let bit = bit % (len * 8);
        bytemuck::bytes_of_mut(&mut slot)[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(wire::decode_command(&slot).is_err());
    }
}

#[test]
fn error_names_the_field() {
    let mut slot = wire::encode_command(&Command::Dump { token: 1 }, 0);
    slot.kind = 0x77;
    wire::seal(&mut slot);
    let e = wire::decode_command(&slot).unwrap_err();
    assert_eq!(e, DecodeError::UnknownKind(0x77));
    assert_eq!(e.to_string(), "unknown message kind 0x77");
}
