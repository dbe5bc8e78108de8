//! How many HTTP connections the API holds at once, derived from the process's file limit.
//!
//! Every connection is a file descriptor. Past `RLIMIT_NOFILE`, `accept` fails and so does
//! everything else that opens a file: the event log, snapshots, the manifest directory, etcd,
//! Kubernetes and Prometheus connections, the ALS listener. So the API takes at most the limit
//! minus a reserve for those; more clients wait in the listen backlog (actix stops accepting
//! at the bound) until a connection ends — which the header and body timeouts guarantee.

/// File descriptors never given to API connections: the store, snapshots, manifests, outbound
/// connections (etcd, Kubernetes, Prometheus), the ALS server, standard streams.
pub const MIN_RESERVE: u64 = 64;
/// The fewest API connections, however low the limit.
pub const MIN_CONNECTIONS: usize = 16;
/// Never more than this (actix's own default per worker is 25,000).
pub const MAX_CONNECTIONS: usize = 25_000;

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (none: not Linux, or
/// unlimited).
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    soft_limit(&text, "Max open files")
}

/// The soft limit on the line starting with `name` in the format of `/proc/PID/limits`
/// (`Max open files            1024                 524288               files`).
fn soft_limit(limits: &str, name: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// The number of API connections for a file limit: a quarter of it (at least [`MIN_RESERVE`])
/// is kept for everything else.
pub fn budget(open_files: Option<u64>) -> usize {
    let Some(limit) = open_files else {
        return MAX_CONNECTIONS;
    };
    let reserve = (limit / 4).max(MIN_RESERVE);
    let budget = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(MAX_CONNECTIONS);
    budget.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// actix bounds connections per worker: the budget shared among `workers`.
pub fn per_worker(total: usize, workers: usize) -> usize {
    (total / workers.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            256                  524288               files
Max locked memory         8388608              8388608              bytes
";

    #[test]
    fn the_soft_file_limit_is_read() {
        assert_eq!(soft_limit(LIMITS, "Max open files"), Some(256));
        assert_eq!(soft_limit(LIMITS, "Max cpu time"), None, "unlimited");
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn the_budget_keeps_a_reserve() {
        assert_eq!(budget(Some(256)), 192);
        assert_eq!(budget(Some(1024)), 768);
        assert_eq!(budget(Some(100)), 36);
        assert_eq!(budget(Some(20)), MIN_CONNECTIONS);
        assert_eq!(budget(Some(1 << 40)), MAX_CONNECTIONS);
        assert_eq!(budget(None), MAX_CONNECTIONS);
        assert_eq!(per_worker(192, 2), 96);
        assert_eq!(per_worker(1, 2), 1);
    }
}
