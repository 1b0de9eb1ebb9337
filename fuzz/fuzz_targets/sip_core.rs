//! The whole B2BUA core fed arbitrary datagrams (split on 0xff into several, from two peers):
//! never a panic.
#![no_main]
use std::time::{Duration, Instant, SystemTime};
use libfuzzer_sys::fuzz_target;
use xtrunk_signaling::b2bua::Core;
use xtrunk_signaling::transport::{Dest, Transport};

fuzz_target!(|data: &[u8]| {
    let cfg = xtrunk_config::Config::embedded_default().expect("default config");
    let local = "127.0.0.1:5060".parse().unwrap();
    let t0 = Instant::now();
    let mut core = Core::new(&cfg, vec![(Transport::Udp, local)], t0, SystemTime::now(), 1);
    for (i, chunk) in data.split(|b| *b == 0xff).enumerate() {
        let remote = if i % 2 == 0 { "127.0.0.1:5062" } else { "127.0.0.1:5080" };
        let now = t0 + Duration::from_millis(100 * i as u64);
        core.handle_input(now, Dest { transport: Transport::Udp, local, remote: remote.parse().unwrap() }, chunk);
        core.handle_timeout(now);
        while core.poll_transmit().is_some() {}
        while let Some(c) = core.poll_media() {
            let _ = c;
        }
    }
    core.handle_timeout(t0 + Duration::from_secs(3600));
});
