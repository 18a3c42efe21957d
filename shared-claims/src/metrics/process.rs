//! Process figures read from `/proc/self` at each scrape (Linux): CPU seconds, resident
//! memory, open file descriptors and threads. Elsewhere they are simply absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Clock ticks per second of `/proc/<pid>/stat` times: 100 on every Linux in use (the
/// kernel's `USER_HZ`), and reading `sysconf` would need `unsafe`.
const TICKS_PER_SECOND: f64 = 100.0;

/// The collector registered by [`super::Metrics::new`].
#[derive(Debug)]
pub(super) struct ProcessCollector;

/// What `/proc/self` tells.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<i64>,
    threads: Option<i64>,
    open_fds: Option<i64>,
}

impl Figures {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| i64::try_from(entries.count()).unwrap_or(i64::MAX));
        Self {
            cpu_seconds: cpu_seconds(&stat),
            resident_bytes: status_kib(&status, "VmRSS:").map(|kib| kib.saturating_mul(1024)),
            threads: status_kib(&status, "Threads:"),
            open_fds,
        }
    }
}

/// utime + stime of `/proc/self/stat`, in seconds.
fn cpu_seconds(stat: &str) -> Option<f64> {
    cpu_ticks(stat).map(|ticks| ticks as f64 / TICKS_PER_SECOND)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks: fields 14 and 15. The
/// command name in field 2 may hold spaces and parentheses, so fields are counted after
/// its last `)`. Public for the benchmark, which reads its threads' figures
/// (`/proc/thread-self/stat`) alike.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_command) = stat.rsplit_once(')')?;
    // Fields 3.. of the whole line; utime and stime are fields 14 and 15.
    let mut fields = after_command.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

/// The number after `key` in `/proc/self/status` (`VmRSS:  1234 kB` → 1234).
fn status_kib(status: &str, key: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = Figures::read();
        if let Some(seconds) = figures.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            let metric = encoder.encode_descriptor(
                "process_cpu",
                "CPU time used by the process, user and system",
                Some(&Unit::Seconds),
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        for (name, help, unit, value) in [
            (
                "process_resident_memory",
                "Resident memory of the process",
                Some(Unit::Bytes),
                figures.resident_bytes,
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                None,
                figures.open_fds,
            ),
            (
                "process_threads",
                "Threads of the process",
                None,
                figures.threads,
            ),
        ] {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                let metric =
                    encoder.encode_descriptor(name, help, unit.as_ref(), gauge.metric_type())?;
                gauge.encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_with_spaces_and_parentheses() {
        let stat = "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
    }

    #[test]
    fn this_process_has_figures_on_linux() {
        let figures = Figures::read();
        assert!(figures.resident_bytes.is_some_and(|b| b > 0), "{figures:?}");
        assert!(figures.open_fds.is_some_and(|n| n > 0), "{figures:?}");
        assert!(figures.cpu_seconds.is_some(), "{figures:?}");
        assert_eq!(status_kib("VmRSS:\t  1234 kB\n", "VmRSS:"), Some(1234));
    }
}
