//! The embedded cluster's memory and planner settings, sized from the
//! machine it runs on (written to `pgdata/ketnoi.conf` at every start).

use std::fs;

/// Memory and planner settings for the machine the cluster runs on,
/// instead of PostgreSQL's defaults (128 MB of shared buffers, sized for
/// the smallest machine): a quarter of memory for shared buffers (at most
/// 8 GB), the planner told that three quarters may be cached, no JIT (it
/// compiles for tens of milliseconds whenever a plan looks expensive,
/// which the matcher's and coverage's plans at a million services do,
/// while their real cost is a few milliseconds), SSD page costs, and
/// checkpoints spread out so that a bulk load does not make every read
/// wait behind them. `ALTER SYSTEM` still overrides any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub shared_buffers_mb: u64,
    pub effective_cache_size_mb: u64,
    pub maintenance_work_mem_mb: u64,
    pub work_mem_mb: u64,
}

impl Tuning {
    /// For a machine with `memory` bytes (`None`: unknown, PostgreSQL's
    /// small defaults).
    pub fn for_memory(memory: Option<u64>) -> Self {
        let mb = memory.map_or(1024, |bytes| bytes / (1024 * 1024)).max(256);
        Self {
            shared_buffers_mb: (mb / 4).clamp(128, 8192),
            effective_cache_size_mb: (mb * 3 / 4).max(256),
            maintenance_work_mem_mb: (mb / 16).clamp(64, 1024),
            work_mem_mb: (mb / 1024).clamp(4, 32),
        }
    }

    pub(super) fn settings(self) -> String {
        format!(
            "shared_buffers = {}MB\n\
             effective_cache_size = {}MB\n\
             maintenance_work_mem = {}MB\n\
             work_mem = {}MB\n\
             jit = off\n\
             random_page_cost = 1.1\n\
             effective_io_concurrency = 200\n\
             max_wal_size = 4GB\n\
             checkpoint_timeout = 15min\n",
            self.shared_buffers_mb,
            self.effective_cache_size_mb,
            self.maintenance_work_mem_mb,
            self.work_mem_mb
        )
    }
}

/// The memory this process may use: the machine's, or its control group's
/// limit when lower (a container).
pub(super) fn machine_memory() -> Option<u64> {
    let total = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kb| kb.trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
        })?;
    let limit = fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok());
    Some(limit.map_or(total, |limit| limit.min(total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_follows_the_machine() {
        let gib = 1024 * 1024 * 1024;
        let big = Tuning::for_memory(Some(24 * gib));
        assert_eq!(big.shared_buffers_mb, 6144);
        assert_eq!(big.effective_cache_size_mb, 18432);
        assert_eq!(big.maintenance_work_mem_mb, 1024);
        assert_eq!(big.work_mem_mb, 24);
        let huge = Tuning::for_memory(Some(256 * gib));
        assert_eq!(huge.shared_buffers_mb, 8192);
        let small = Tuning::for_memory(Some(gib / 2));
        assert_eq!(small.shared_buffers_mb, 128);
        assert_eq!(small.work_mem_mb, 4);
        assert_eq!(Tuning::for_memory(None), Tuning::for_memory(Some(gib)));
        assert!(big.settings().contains("jit = off\n"));
    }
}
