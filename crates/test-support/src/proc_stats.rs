//! CPU time and memory of a running process, read from `/proc` (Linux): what the benches report
//! about the child processes they measure.

use std::io;
use tokio::time::Instant;

/// CPU time and memory of one process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When it was read.
    pub at: Instant,
    /// utime + stime, in clock ticks ([`clock_ticks`] a second).
    pub cpu_ticks: u64,
    /// Resident memory now (`VmRSS`).
    pub rss_kib: u64,
    /// The most resident memory since the process started (`VmHWM`).
    pub peak_rss_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status` of `pid` (a number, or `self`).
pub fn sample_proc(pid: &str) -> io::Result<ProcSample> {
    let at = Instant::now();
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|err| io::Error::new(err.kind(), format!("reading /proc/{pid}/{file}: {err}")))
    };
    let malformed = |what: &str| io::Error::other(format!("/proc/{pid}/stat: {what}"));
    let stat = read("stat")?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| malformed("no ')'"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let field = |n: usize| -> io::Result<u64> {
        fields.get(n - 3).ok_or_else(|| malformed("too short"))?.parse().map_err(|_| malformed("bad number"))
    };
    let cpu_ticks = field(14)? + field(15)?;
    let status = read("status")?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample { at, cpu_ticks, rss_kib: kib("VmRSS:"), peak_rss_kib: kib("VmHWM:") })
}

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100, with a warning, if
/// that fails).
pub fn clock_ticks() -> f64 {
    let reported = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|ticks| *ticks > 0);
    match reported {
        Some(ticks) => f64::from(ticks),
        None => {
            eprintln!("warning: `getconf CLK_TCK` failed; assuming 100 ticks per second");
            100.0
        }
    }
}

/// Average cores used between two samples of one process: CPU seconds / wall seconds.
pub fn cores(from: &ProcSample, to: &ProcSample, ticks: f64) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 { 0.0 } else { to.cpu_ticks.saturating_sub(from.cpu_ticks) as f64 / ticks / wall }
}

/// `/proc/loadavg`'s three load averages (1, 5 and 15 minutes), or `unknown`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_memory_and_has_a_clock() {
        let sample = sample_proc("self").expect("/proc/self");
        assert!(sample.rss_kib > 0 && sample.peak_rss_kib >= sample.rss_kib, "{sample:?}");
        assert!(clock_ticks() > 0.0);
    }
}
