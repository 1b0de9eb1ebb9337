//! What validation knows of the host it runs on.

/// Facts about the host that validation checks against.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Number of CPU cores (cores are numbered 0..cores).
    pub cores: usize,
    /// Check that the directories of `node.shm_path` and `node.cdr_path` exist on this
    /// filesystem (false for configurations validated away from their host).
    pub check_paths: bool,
}

impl Host {
    /// This machine: its CPUs, not this process's affinity mask (a datapath started under
    /// `taskset -c 1` may still be configured for core 1, or any core of the host).
    pub fn this() -> Self {
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok().and_then(|s| highest_cpu(&s));
        let mask = || core_affinity::get_core_ids().and_then(|c| c.iter().map(|c| c.id).max());
        Self { cores: online.or_else(mask).map_or(1, |m| m + 1), check_paths: true }
    }
}

/// The highest CPU number of a kernel CPU list (`0-3,8-11`, `0`).
fn highest_cpu(list: &str) -> Option<usize> {
    list.trim().split(',').filter_map(|r| r.rsplit('-').next()?.trim().parse::<usize>().ok()).max()
}

#[cfg(test)]
mod host_tests {
    #[test]
    fn cpu_lists() {
        assert_eq!(super::highest_cpu("0-1\n"), Some(1));
        assert_eq!(super::highest_cpu("0"), Some(0));
        assert_eq!(super::highest_cpu("0-3,8-11"), Some(11));
        assert_eq!(super::highest_cpu(""), None);
        assert!(super::Host::this().cores >= 1);
    }
}
