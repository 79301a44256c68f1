//! Reading a server's CPU time and memory from /proc (Linux only), parsed sans-IO.

use std::path::PathBuf;

/// utime + stime in clock ticks from the text of `/proc/<pid>/stat`.
///
/// The command name (field 2) is in parentheses and may contain spaces or `)`, so fields are
/// counted after the *last* `)`: field 3 (state) is index 0 there, utime (14) index 11, stime
/// (15) index 12.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size in KiB from the text of `/proc/<pid>/status` (`VmRSS:  1234 kB`).
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn proc_file(pid: u32, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{name}"))
}

/// The server's CPU time so far in clock ticks, or `None` if it cannot be read (no such pid).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat_cpu_ticks(&std::fs::read_to_string(proc_file(pid, "stat")).ok()?)
}

/// The server's resident memory in KiB, or `None` if it cannot be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_status_rss_kib(&std::fs::read_to_string(proc_file(pid, "status")).ok()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_comm() {
        let stat = "4242 (node (a) b) S 1 4242 4242 0 -1 4194560 3117 0 0 0 150 37 0 0 20 0 11 0 \
                    123 1234567 8901 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(187));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_rss() {
        let status = "Name:\tswitchboard\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss_kib(status), Some(20480));
        assert_eq!(parse_status_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
    }
}
