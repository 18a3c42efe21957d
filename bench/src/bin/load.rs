//! The load clients of `bench/run` for what `wrk` cannot drive, one row per invocation so
//! that the script can read the server's CPU time around each:
//!
//! * `mint`: access tokens signed with the auth-service's key, for the wrk rows;
//! * `register`, `login`: users, then logins that open the sessions of the refresh row;
//! * `refresh`: chains of refreshes, each presenting its session's current token;
//! * `dpop`: `/api/me` with DPoP-bound tokens and a fresh proof per request.
//!
//! Rows print one `result …` line (see `bench::load::Outcome::line`).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use bench::load::{self, auth, dpop, mint::Minter};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load clients for bench/run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes `count` distinct access tokens, one per line.
    Mint {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 600)]
        ttl_secs: i64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Registers users; writes `username password` lines.
    Register {
        #[arg(long)]
        url: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Logs in `count` times; writes the sessions' refresh tokens, one per line.
    Login {
        #[arg(long)]
        url: String,
        #[arg(long)]
        users: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        clients: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Refreshes every session `rounds` times; the file is rewritten with the latest
    /// tokens.
    Refresh {
        #[arg(long)]
        url: String,
        #[arg(long)]
        sessions: PathBuf,
        #[arg(long)]
        rounds: usize,
        #[arg(long)]
        clients: usize,
        /// Also writes the latency of every request answered with a status here, in µs,
        /// one per line: the row's p99 is taken over all its segments' requests together.
        #[arg(long)]
        latencies: Option<PathBuf>,
    },
    /// Calls `url` (`…/api/me`) `count` times with DPoP-bound tokens and proofs.
    Dpop {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        url: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        clients: usize,
    },
}

/// Whose tokens to mint.
#[derive(clap::Args)]
struct KeyArgs {
    /// The auth-service's `keys.dir`.
    #[arg(long)]
    keys_dir: PathBuf,
    #[arg(long)]
    issuer: String,
    #[arg(long, default_value = "resource-service")]
    audience: String,
}

impl KeyArgs {
    fn minter(&self) -> anyhow::Result<Minter> {
        Minter::from_key_dir(&self.keys_dir, &self.issuer, &self.audience)
    }
}

fn write_lines(path: &PathBuf, lines: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for line in lines {
        writeln!(file, "{line}")?;
    }
    Ok(file.flush()?)
}

fn read_lines(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Mint {
            key,
            count,
            ttl_secs,
            out,
        } => write_lines(&out, key.minter()?.tokens(count, ttl_secs)?)?,
        Command::Register { url, count, out } => {
            let users = auth::register(&load::http_client(1)?, &url, count).await?;
            write_lines(
                &out,
                users
                    .into_iter()
                    .map(|u| format!("{} {}", u.username, u.password)),
            )?;
        }
        Command::Login {
            url,
            users,
            count,
            clients,
            out,
        } => {
            let users = read_lines(&users)?
                .iter()
                .filter_map(|line| line.split_once(' '))
                .map(|(username, password)| auth::User {
                    username: username.to_owned(),
                    password: password.to_owned(),
                })
                .collect();
            let (mut outcome, sessions) =
                auth::login(&load::http_client(clients)?, &url, users, count, clients).await;
            write_lines(&out, sessions)?;
            println!("{}", outcome.line());
        }
        Command::Refresh {
            url,
            sessions,
            rounds,
            clients,
            latencies,
        } => {
            let tokens = read_lines(&sessions)?;
            let (mut outcome, latest) = auth::refresh(&url, tokens, rounds, clients).await;
            write_lines(&sessions, latest)?;
            let line = outcome.line();
            // Before the result line: a segment whose latencies could not be written
            // then prints no result and fails its row, instead of leaving the pool.
            if let Some(path) = latencies {
                write_lines(
                    &path,
                    outcome.latencies.iter().map(|d| d.as_micros().to_string()),
                )?;
            }
            println!("{line}");
        }
        Command::Dpop {
            key,
            url,
            count,
            clients,
        } => {
            let http = load::http_client(clients)?;
            let mut outcome = dpop::me(&http, &key.minter()?, &url, count, clients).await?;
            println!("{}", outcome.line());
        }
    }
    Ok(())
}
