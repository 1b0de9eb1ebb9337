//! The SPSC ring on heap backing (the stand-in for the mapping, as Miri would run it): model
//! tests, wrap-around, full/empty, batches, and a two-thread stress test.

use std::collections::VecDeque;

use proptest::prelude::*;
use xtrunk_ring::msg::{Command, SessionId};
use xtrunk_ring::spsc::{self, Full};
use xtrunk_ring::wire::{self, DecodeError, Slot};
use xtrunk_ring::{pair, CommandReceiver, CommandSender};

#[derive(Debug, Clone)]
enum Op {
    Push(u8),
    Pop(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![(1u8..20).prop_map(Op::Push), (1u8..20).prop_map(Op::Pop)]
}

proptest! {
    /// The ring behaves like a bounded FIFO: pushes beyond capacity fail with Full (nothing
    /// overwritten), pops return items in order, empty pops return nothing.
    #[test]
    fn ring_matches_bounded_fifo(cap_log in 0u32..6, ops in prop::collection::vec(op(), 1..200)) {
        let cap = 1usize << cap_log;
        let (mut p, mut c) = spsc::channel::<u64>(cap);
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Push(n) => {
                    let items: Vec<u64> = (next..next + u64::from(n)).collect();
                    let sent = if n % 2 == 0 { p.push_slice(&items) } else {
                        let mut k = 0;
                        for it in &items {
                            if p.try_push(it).is_err() { break; }
                            k += 1;
                        }
                        k
                    };
                    prop_assert_eq!(sent, items.len().min(cap - model.len()));
                    model.extend(&items[..sent]);
                    next += sent as u64;
                }
                Op::Pop(n) => {
                    let mut out = vec![0u64; usize::from(n)];
                    let got = if n % 2 == 0 { c.pop_into(&mut out) } else {
                        let mut k = 0;
                        for o in out.iter_mut() {
                            match c.try_pop() { Some(v) => { *o = v; k += 1 } None => break }
                        }
                        k
                    };
                    prop_assert_eq!(got, model.len().min(usize::from(n)));
                    for v in &out[..got] {
                        prop_assert_eq!(Some(*v), model.pop_front());
                    }
                }
            }
        }
    }
}

#[test]
fn empty_then_full_then_wrap() {
    let (mut p, mut c) = spsc::channel::<u32>(8);
    assert_eq!(c.try_pop(), None);
    assert!(c.is_empty());
    for lap in 0..10u32 {
        for i in 0..8 {
            p.try_push(&(lap * 8 + i)).unwrap();
        }
        assert_eq!(p.try_push(&0), Err(Full));
        assert_eq!(c.len(), 8);
        for i in 0..8 {
            assert_eq!(c.try_pop(), Some(lap * 8 + i));
        }
        assert_eq!(c.try_pop(), None);
    }
    assert_eq!(p.position(), 80);
    assert_eq!(c.position(), 80);
}

#[test]
fn two_threads_in_order() {
    const N: u64 = 200_000;
    let (mut p, mut c) = spsc::channel::<u64>(64);
    let t = std::thread::spawn(move || {
        let mut i = 0;
        let mut buf = [0u64; 16];
        while i < N {
            let k = (N - i).min(16) as usize;
            for (j, b) in buf[..k].iter_mut().enumerate() {
                *b = i + j as u64;
            }
            let sent = p.push_slice(&buf[..k]);
            i += sent as u64;
            if sent == 0 {
                std::hint::spin_loop();
            }
        }
    });
    let mut expect = 0;
    let mut buf = [0u64; 16];
    while expect < N {
        let n = c.pop_into(&mut buf);
        for v in &buf[..n] {
            assert_eq!(*v, expect);
            expect += 1;
        }
        if n == 0 {
            std::hint::spin_loop();
        }
    }
    t.join().unwrap();
    assert_eq!(c.try_pop(), None);
}

fn raw_pair(cap: usize) -> (CommandSender, CommandReceiver) {
    let (p, c) = spsc::channel::<Slot>(cap);
    (CommandSender::from_producer(p), CommandReceiver::from_consumer(c))
}

#[test]
fn corrupt_slots_rejected_counted_and_flow_continues() {
    let (mut tx, mut rx) = raw_pair(8);
    // 1: good
    tx.try_send(&Command::Delete(SessionId(1))).unwrap();
    // 2: checksum broken
    let mut bad = wire::encode_command(&Command::Delete(SessionId(2)), tx.position() as u32);
    bad.body[0] ^= 0xff;
    tx.try_send_raw(&bad).unwrap();
    // 3: unknown kind (sealed, so only the kind is wrong)
    let mut bad = wire::encode_command(&Command::Delete(SessionId(3)), tx.position() as u32);
    bad.kind = 0xdead;
    wire::seal(&mut bad);
    tx.try_send_raw(&bad).unwrap();
    // 4: stale sequence (as if left from an earlier lap)
    let bad = wire::encode_command(&Command::Delete(SessionId(4)), tx.position() as u32 + 8);
    tx.try_send_raw(&bad).unwrap();
    // 5: good
    tx.try_send(&Command::Dump { token: 5 }).unwrap();

    assert_eq!(rx.try_recv(), Some(Ok(Command::Delete(SessionId(1)))));
    assert!(matches!(rx.try_recv(), Some(Err(DecodeError::Checksum { .. }))));
    assert_eq!(rx.try_recv(), Some(Err(DecodeError::UnknownKind(0xdead))));
    assert_eq!(rx.try_recv(), Some(Err(DecodeError::Sequence { expected: 3, got: 11 })));
    assert_eq!(rx.try_recv(), Some(Ok(Command::Dump { token: 5 })));
    assert_eq!(rx.try_recv(), None);
    assert_eq!(rx.rejected(), 3);
}

#[test]
fn typed_batches_and_backpressure() {
    let ((mut ctx, _erx), (mut crx, _etx)) = pair(16, 16);
    let cmds: Vec<Command> = (1..=40).map(|i| Command::Delete(SessionId(i))).collect();
    assert_eq!(ctx.send_batch(&cmds), 16);
    assert_eq!(ctx.try_send(&cmds[16]), Err(Full));
    let mut got = Vec::new();
    assert_eq!(crx.recv_batch(10, |r| got.push(r.unwrap())), 10);
    assert_eq!(ctx.send_batch(&cmds[16..]), 10);
    assert_eq!(crx.recv_batch(100, |r| got.push(r.unwrap())), 16);
    assert_eq!(got, cmds[..26].to_vec());
    assert_eq!(crx.rejected(), 0);
}
