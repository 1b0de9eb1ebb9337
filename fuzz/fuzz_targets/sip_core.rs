//! The whole B2BUA core fed arbitrary datagrams (split on 0xff into several, from two peers),
//! through the shared rig (its datapath included): never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::Duration;
use xtrunk_signaling::testing::{Pair, Record};

fuzz_target!(|data: &[u8]| {
    let cfg = xtrunk_config::Config::embedded_default().expect("default config");
    let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let peers: [SocketAddr; 2] = ["127.0.0.1:5062".parse().unwrap(), "127.0.0.1:5080".parse().unwrap()];
    let mut p = Pair::new(&cfg, local, 1);
    p.record = Record::Transmissions;
    p.timers_after_input = true;
    for (i, chunk) in data.split(|b| *b == 0xff).enumerate() {
        p.advance(Duration::from_millis(90));
        p.input(peers[i % 2], chunk);
        p.out.clear();
    }
    p.advance(Duration::from_secs(3600));
});
