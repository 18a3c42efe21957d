//! Memory of the auth-service under bursts of concurrent logins, read from `/proc`.
//!
//! ```text
//! login_memory <auth-url> <pid> [--permits N] [--logins N] [--bursts N] [--settle-secs N]
//! ```
//!
//! * `<auth-url>`: the running auth-service, e.g. `http://127.0.0.1:18080`. Its rate limits
//!   must allow the logins (`AUTH__RATE_LIMIT__ATTEMPTS_PER_IP`, `…_PER_USERNAME`).
//! * `<pid>`: its process id, whose `/proc/<pid>/status` (`VmRSS`, `VmHWM`) is read.
//! * `--permits`: its `passwords.max_concurrent_hashes` (default: this machine's core
//!   count, the service's own default); only used to compute the target.
//! * `--logins` concurrent logins per burst (default 200), `--bursts` (default 5),
//!   `--settle-secs` idle time after each burst before the post-burst reading (default 5).
//!
//! It reads the base RSS, registers a user, then per burst resets the peak (`clear_refs`)
//! when allowed, fires all logins at once, and prints the peak RSS of the burst (`VmHWM`)
//! and the RSS once idle again. Target, for every burst:
//! `peak ≤ base + permits × 20 MiB + 32 MB` and the idle RSS after it under the same
//! bound. The last line is `PASS` or `FAIL` (exit status 0 or 1). `bench/memory` starts a
//! private service and runs this against it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::json;

const MIB: u64 = 1024 * 1024;
/// Allowance per hash permit: one 19 MiB Argon2 block plus a little.
const PER_PERMIT: u64 = 20 * MIB;
/// Allowance for everything else a burst makes (connections, buffers, allocator slack).
const SLACK: u64 = 32_000_000;

struct Options {
    url: String,
    pid: u32,
    permits: u64,
    logins: usize,
    bursts: usize,
    settle: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: login_memory <auth-url> <pid> [--permits N] [--logins N] [--bursts N] \
         [--settle-secs N]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(pid)) = (args.next(), args.next()) else {
        usage()
    };
    let mut options = Options {
        url: url.trim_end_matches('/').to_owned(),
        pid: pid.parse().unwrap_or_else(|_| usage()),
        permits: std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
        logins: 200,
        bursts: 5,
        settle: Duration::from_secs(5),
    };
    while let Some(flag) = args.next() {
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage());
        match flag.as_str() {
            "--permits" => options.permits = value,
            "--logins" => options.logins = value as usize,
            "--bursts" => options.bursts = value as usize,
            "--settle-secs" => options.settle = Duration::from_secs(value),
            _ => usage(),
        }
    }
    options
}

/// `VmRSS` and `VmHWM` of `pid`, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets `VmHWM` to the current RSS, so each burst's peak is its own.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

#[tokio::main]
async fn main() {
    let options = parse_options();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client");
    let pid = options.pid;

    let (base, _) = memory(pid);
    let limit = base + options.permits * PER_PERMIT + SLACK;
    println!(
        "login_memory: {} (pid {pid}), {} concurrent logins x {} bursts, {} hash permits",
        options.url, options.logins, options.bursts, options.permits
    );
    println!("base RSS      {}", mib(base));
    println!(
        "limit         base + {} x 20 MiB + 32 MB = {}",
        options.permits,
        mib(limit)
    );

    let username = format!("mem_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let password = "memory benchmark password";
    let credentials = json!({"username": username, "password": password});
    let registered = client
        .post(format!("{}/auth/register", options.url))
        .json(&credentials)
        .send()
        .await
        .expect("register request");
    assert_eq!(
        registered.status().as_u16(),
        201,
        "registering the benchmark user failed: {}",
        registered.text().await.unwrap_or_default()
    );

    let peaks_resettable = reset_peak(pid);
    if !peaks_resettable {
        println!("(cannot write /proc/{pid}/clear_refs: peaks are since start)");
    }
    let mut pass = true;
    let mut worst_peak = 0;
    for burst in 1..=options.bursts {
        if peaks_resettable {
            reset_peak(pid);
        }
        let started = Instant::now();
        let tasks: Vec<_> = (0..options.logins)
            .map(|_| {
                let client = client.clone();
                let url = format!("{}/auth/login", options.url);
                let body = credentials.clone();
                tokio::spawn(async move {
                    match client.post(url).json(&body).send().await {
                        Ok(response) => response.status().as_u16(),
                        Err(_) => 0,
                    }
                })
            })
            .collect();
        let (mut ok, mut busy, mut other) = (0, 0, 0);
        for task in tasks {
            match task.await.unwrap_or(0) {
                200 => ok += 1,
                503 => busy += 1,
                _ => other += 1,
            }
        }
        let took = started.elapsed();
        let (_, peak) = memory(pid);
        tokio::time::sleep(options.settle).await;
        let (after, _) = memory(pid);
        worst_peak = worst_peak.max(peak);
        let fits = peak <= limit && after <= limit && other == 0;
        pass &= fits;
        println!(
            "burst {burst}: {ok} ok, {busy} busy (503), {other} failed, in {:.1} s; \
             peak {}, after {} s idle {}{}",
            took.as_secs_f64(),
            mib(peak),
            options.settle.as_secs(),
            mib(after),
            if fits { "" } else { "  <- over the limit" }
        );
    }
    println!(
        "{}: worst peak {} = base + {} (limit {})",
        if pass { "PASS" } else { "FAIL" },
        mib(worst_peak),
        mib(worst_peak.saturating_sub(base)),
        mib(limit)
    );
    std::process::exit(if pass { 0 } else { 1 });
}
