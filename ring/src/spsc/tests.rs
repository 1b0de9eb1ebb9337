//! Unit tests of the ring (heap backing).

use super::*;

#[test]
fn push_pop_wraps() {
    let (mut p, mut c) = channel::<u64>(4);
    for i in 0..100u64 {
        p.try_push(&i).unwrap();
        assert_eq!(c.try_pop(), Some(i));
    }
    assert_eq!(c.try_pop(), None);
}

#[test]
fn full_is_backpressure() {
    let (mut p, mut c) = channel::<u64>(4);
    for i in 0..4 {
        p.try_push(&i).unwrap();
    }
    assert_eq!(p.try_push(&9), Err(Full));
    assert_eq!(c.try_pop(), Some(0));
    p.try_push(&4).unwrap();
    let mut out = [0u64; 8];
    assert_eq!(c.pop_into(&mut out), 4);
    assert_eq!(&out[..4], &[1, 2, 3, 4]);
}

#[test]
fn producer_len_sees_what_the_consumer_took() {
    let (mut p, mut c) = channel::<u64>(8);
    assert!(p.is_empty());
    for i in 0..5 {
        p.try_push(&i).unwrap();
    }
    assert_eq!(p.len(), 5);
    assert_eq!(c.try_pop(), Some(0));
    assert_eq!(c.try_pop(), Some(1));
    assert_eq!(p.len(), 3);
    while c.try_pop().is_some() {}
    assert!(p.is_empty());
}

#[test]
fn cancelled_batches_change_nothing() {
    let (mut p, mut c) = channel::<u64>(8);
    {
        let mut b = p.write_batch(3);
        b.push(&1).unwrap();
        // dropped: cancelled
    }
    assert!(c.is_empty());
    p.try_push(&2).unwrap();
    {
        let b = c.read_batch(8);
        assert_eq!(b.get(0), Some(2));
    }
    assert_eq!(c.try_pop(), Some(2));
}

#[test]
fn bad_geometry_rejected() {
    let mem = Arc::new(HeapBacking::new(1024));
    // SAFETY: never used; construction fails.
    let r = unsafe { producer::<u64, _>(mem.clone(), 0, 3) };
    assert_eq!(r.unwrap_err(), LayoutError::Capacity(3));
    // SAFETY: as above.
    let r = unsafe { producer::<u64, _>(mem.clone(), 64, 4) };
    assert_eq!(r.unwrap_err(), LayoutError::Misaligned(64));
    // SAFETY: as above.
    let r = unsafe { producer::<u64, _>(mem, 0, 1024) };
    assert!(matches!(r.unwrap_err(), LayoutError::TooSmall { .. }));
}
