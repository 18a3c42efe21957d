//! Helpers shared by the benchmark binaries in `src/bin/`: CPU-time measurement that a
//! busy machine cannot skew much, result lines that `bench/run` parses, and the load
//! clients of the rows `wrk` cannot drive ([`load`]).

pub mod load;

use std::time::{Duration, Instant};

use shared_claims::metrics::process::cpu_ticks;

/// Runs `op` repeatedly for about `budget` after a short warm-up; returns the mean time
/// per call.
pub fn time_per_op(budget: Duration, mut op: impl FnMut()) -> Duration {
    let warm_up = Instant::now();
    while warm_up.elapsed() < budget / 10 {
        op();
    }
    let start = Instant::now();
    let mut calls: u32 = 0;
    while start.elapsed() < budget {
        op();
        calls += 1;
    }
    start.elapsed() / calls.max(1)
}

/// The CPU time one call of `op` takes this thread: the best of five rounds of a fifth of
/// `budget` each (after a warm-up of a tenth). CPU time, unlike wall time, hardly moves
/// when other processes share the cores; what they still add (preemption, caches they
/// evict) can only make a round slower, so the best round is the closest to the cost.
pub fn cpu_time_per_op(budget: Duration, mut op: impl FnMut()) -> Duration {
    let warm_up = thread_cpu_time();
    while thread_cpu_time().saturating_sub(warm_up) < budget / 10 {
        op();
    }
    (0..5)
        .map(|_| cpu_round(budget / 5, &mut op))
        .min()
        .unwrap_or_default()
}

/// The mean CPU time per call of `op` over `budget` of CPU time.
fn cpu_round(budget: Duration, op: &mut impl FnMut()) -> Duration {
    let start = thread_cpu_time();
    let mut calls: u32 = 0;
    loop {
        // Read the clock every few calls only: reading it costs a file read.
        for _ in 0..16 {
            op();
        }
        calls += 16;
        let spent = thread_cpu_time().saturating_sub(start);
        if spent >= budget {
            return spent / calls;
        }
    }
}

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`, 100 on Linux unless
/// `CLK_TCK` says otherwise).
pub fn clock_ticks_per_sec() -> u64 {
    std::env::var("CLK_TCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// User + system CPU time of the calling thread, from `/proc/thread-self/stat` (tick
/// resolution: callers measure long enough for ticks not to matter).
pub fn thread_cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|stat| cpu_ticks(&stat))
        .unwrap_or(0);
    Duration::from_micros(ticks * 1_000_000 / clock_ticks_per_sec())
}

/// `612.3 µs  (1 633/s)`.
pub fn describe(per_op: Duration) -> String {
    let micros = per_op.as_secs_f64() * 1e6;
    let per_sec = if micros > 0.0 {
        1e6 / micros
    } else {
        f64::INFINITY
    };
    format!("{micros:>9.1} µs  ({per_sec:>9.0}/s)")
}
