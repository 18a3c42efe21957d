//! Helpers shared by the benchmark binaries in `src/bin/`.

use std::time::{Duration, Instant};

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
