//! CPU accounting from `/proc`: this process (the servers), its waited-for children (wrk), and
//! the whole machine, so that each scenario can report CPU per request and how busy the rest of
//! the machine was.

use std::time::Instant;

use anyhow::{Context, Result};

/// A reading of the CPU counters, in clock ticks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    /// utime + stime of this process (every thread, live or exited).
    own: u64,
    /// cutime + cstime: children that have been waited for (the load generators).
    children: u64,
    /// Busy ticks of the whole machine (user, nice, system, irq, softirq).
    machine: u64,
    at: Instant,
}

/// CPU used between two snapshots, in CPU-seconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Usage {
    /// Wall-clock seconds.
    pub(crate) wall: f64,
    /// This process: the servers (and, in the hash scenario, the hashing threads).
    pub(crate) server: f64,
    /// The load generators.
    pub(crate) client: f64,
    /// Everything else on the machine, including softirq time not charged to a process.
    pub(crate) other: f64,
}

impl Usage {
    /// Other processes' load in cores (CPU-seconds per second).
    pub(crate) fn other_cores(&self) -> f64 {
        if self.wall > 0.0 {
            self.other / self.wall
        } else {
            0.0
        }
    }
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on every Linux we know).
pub(crate) fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&hz| hz > 0.0)
        .unwrap_or(100.0)
}

pub(crate) fn snapshot() -> Result<Snapshot> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The command name may contain spaces; the fields after it are plain numbers.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("parsing /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field numbers from proc(5): utime 14, stime 15, cutime 16, cstime 17; `rest` starts at 3.
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| v.max(0) as u64)
            .with_context(|| format!("field {n} of /proc/self/stat"))
    };
    let own = field(14)? + field(15)?;
    let children = field(16)? + field(17)?;
    let machine = machine_busy()?;
    Ok(Snapshot {
        own,
        children,
        machine,
        at: Instant::now(),
    })
}

fn machine_busy() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no cpu line in /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    Ok(get(0) + get(1) + get(2) + get(5) + get(6))
}

/// The CPU used from `before` to `after`.
pub(crate) fn usage(before: &Snapshot, after: &Snapshot, hz: f64) -> Usage {
    let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / hz;
    let server = d(after.own, before.own);
    let client = d(after.children, before.children);
    let machine = d(after.machine, before.machine);
    Usage {
        wall: after.at.duration_since(before.at).as_secs_f64(),
        server,
        client,
        other: (machine - server - client).max(0.0),
    }
}

/// The machine's load averages, as `/proc/loadavg` shows them.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The CPU model from `/proc/cpuinfo`.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
