//! Medians, percentiles, resident memory and the result table.

use std::time::Duration;

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// The nearest-rank percentile `p` (0 to 100) of `values`; 0 for none.
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A duration in microseconds.
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Formats microseconds with a unit that keeps three significant digits readable.
pub(crate) fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

/// The resident set size of this process in KiB, from `/proc/self/status` (`VmRSS`); 0 where
/// that file does not exist.
pub(crate) fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// The process's peak resident memory so far (`VmHWM` in `/proc/self/status`), in KiB; 0 where
/// there is no `/proc`.
pub(crate) fn hwm_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Another process's resident memory (`VmRSS` in `/proc/<pid>/status`), in KiB; 0 where there
/// is no `/proc` or the process is gone.
pub(crate) fn rss_kib_of(pid: u32) -> u64 {
    status_field_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

fn status_kib(field: &str) -> u64 {
    status_field_kib("/proc/self/status", field)
}

fn status_field_kib(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time this process has used (all threads, user + system), in milliseconds, from
/// `/proc/self/stat` (which counts in USER_HZ, 100 per second on Linux); 0 elsewhere.
pub(crate) fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The command name (field 2) may contain spaces; fields are counted after its `)`.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) * 10.0,
        _ => 0.0,
    }
}

/// One line of the summary table: a figure, the floor it is compared against, and the target.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) workload: &'static str,
    pub(crate) figure: String,
    pub(crate) value: String,
    pub(crate) floor: String,
    pub(crate) ratio: String,
    pub(crate) target: String,
    /// "met", "missed" or empty when the figure has no target.
    pub(crate) verdict: String,
}

impl Row {
    /// A row without a floor or a target.
    pub(crate) fn info(workload: &'static str, figure: &str, value: String) -> Self {
        Row {
            workload,
            figure: figure.to_owned(),
            value,
            floor: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: String::new(),
        }
    }

    /// Adds the floor and the ratio of the figure to it.
    pub(crate) fn floor(mut self, floor: String, ratio: f64) -> Self {
        self.floor = floor;
        self.ratio = format!("{ratio:.2}×");
        self
    }

    /// Adds a target and whether it was met.
    pub(crate) fn target(mut self, target: &str, met: bool) -> Self {
        self.target = target.to_owned();
        self.verdict = if met { "met" } else { "missed" }.to_owned();
        self
    }
}

/// Prints rows as a Markdown table.
pub(crate) fn print_table(rows: &[Row]) {
    println!();
    println!("| workload | figure | median | floor | ratio | target | |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.workload, r.figure, r.value, r.floor, r.ratio, r.target, r.verdict
        );
    }
}

/// CPU time and context switches of every thread of this process alive now, summed: for a
/// phase whose threads live through it, the difference of two readings is what the phase cost.
///
/// CPU time is in nanoseconds (`/proc/self/task/*/schedstat`, not the 10 ms ticks of
/// [`cpu_ms`]); context switches count voluntary and involuntary ones
/// (`/proc/self/task/*/status`). Zero where there is no `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThreadsUsage {
    pub(crate) cpu_ns: u64,
    pub(crate) switches: u64,
}

impl ThreadsUsage {
    pub(crate) fn now() -> Self {
        let mut usage = Self::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return usage;
        };
        for task in tasks.flatten() {
            let dir = task.path();
            if let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            {
                usage.cpu_ns += ns;
            }
            if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
                usage.switches += status
                    .lines()
                    .filter(|l| l.contains("ctxt_switches:"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .sum::<u64>();
            }
        }
        usage
    }

    /// The calling thread's CPU time in nanoseconds (`/proc/thread-self/schedstat`); zero
    /// where there is no `/proc`.
    pub(crate) fn this_thread_cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    }

    /// What was used since `before`.
    pub(crate) fn since(self, before: Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            switches: self.switches.saturating_sub(before.switches),
        }
    }
}
