//! Namespace-lab helpers shared by the root-only AF_XDP tests: the lab itself (`scripts/lab`,
//! torn down on drop), entering a namespace on a thread, pinning.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command as Proc;
use std::thread::JoinHandle;

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub(crate) fn lab_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lab")
}

/// The lab namespaces; `down` on drop, even when the test fails.
pub(crate) struct Lab {
    prefix: String,
}

impl Lab {
    /// `scripts/lab up` with `queues` queues per veth.
    pub(crate) fn up(prefix: &str, queues: u32) -> Lab {
        let lab = Lab { prefix: prefix.to_owned() };
        let st = Proc::new("bash")
            .arg(lab_script())
            .args(["up", "--queues", &queues.to_string(), "--prefix", prefix])
            .status()
            .expect("run scripts/lab");
        assert!(st.success(), "scripts/lab up failed");
        lab
    }
    /// The namespace of `role` (pbx, relay, carrier).
    pub(crate) fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Proc::new("bash").arg(lab_script()).args(["down", "--prefix", &self.prefix]).status();
    }
}

pub(crate) fn enter_netns(ns: &str) {
    let f = File::open(format!("/var/run/netns/{ns}")).expect("open netns");
    // SAFETY: setns on a valid namespace fd changes only the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns({ns}): {}", std::io::Error::last_os_error());
}

pub(crate) fn spawn_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        enter_netns(&ns);
        f()
    })
}

pub(crate) fn pin(cpu: usize) {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
}
