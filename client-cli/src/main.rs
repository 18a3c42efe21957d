//! The `client-cli` command line: parses arguments, runs a command through the library,
//! prints for people or, with `--json`, for programs.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use client_cli::client::{Client, ClientConfig};
use client_cli::credentials::{self, Credentials};
use client_cli::error::{CliError, EXIT_USAGE};
use client_cli::{demo, jwt};
use secrecy::SecretString;
use serde::Deserialize as _;
use serde_json::{Value, json};
use shared_claims::protocol::{MeResponse, SessionView, paths};
use shared_claims::{ErrorBody, ErrorCode};

/// Talk to the auth-service and the resource-service: log in, call protected routes,
/// and let the tokens refresh themselves.
#[derive(Debug, Parser)]
#[command(name = "client-cli", version)]
struct Cli {
    /// Base URL of the auth-service.
    #[arg(
        long,
        env = "AUTH_URL",
        default_value = "http://localhost:8080",
        global = true
    )]
    auth_url: String,

    /// Base URL of the resource-service.
    #[arg(
        long,
        env = "RESOURCE_URL",
        default_value = "http://localhost:8081",
        global = true
    )]
    resource_url: String,

    /// Where to keep credentials [default: the platform config directory,
    /// e.g. ~/.config/client-cli/credentials.json].
    #[arg(long, env = "CLIENT_CREDENTIALS", value_name = "FILE", global = true)]
    credentials: Option<PathBuf>,

    /// Print machine-readable JSON instead of sentences.
    #[arg(long, global = true)]
    json: bool,

    /// Log in without binding the session to a DPoP key (RFC 9449): the tokens are then
    /// bearer tokens that work for whoever holds them.
    #[arg(long, global = true)]
    no_dpop: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an account. The password is asked for without echo (twice), or read from
    /// the first line of standard input with --password-stdin; never from arguments.
    Register {
        /// 3–64 characters of letters, digits, '_', '.' and '-'.
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log in and store the tokens (file mode 0600). The session stored before, if any,
    /// is ended.
    Login {
        /// Your username (any letter case).
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show who the resource-service says you are (GET /api/me).
    Me,
    /// GET any resource-service path with your access token, e.g. `get /api/admin`;
    /// logged out, without one (public paths such as /api/public work).
    Get {
        /// The path, starting with '/'.
        path: String,
    },
    /// Rotate the tokens now (normally automatic).
    Refresh,
    /// End this session and delete the stored credentials; --all ends every session.
    Logout {
        /// End all your sessions, on every device.
        #[arg(long)]
        all: bool,
    },
    /// List where you are logged in.
    Sessions,
    /// Show the stored access token's header and claims, and when it expires. Nothing is
    /// verified: only the servers can do that.
    Token,
    /// Run the whole flow with a fresh random user, step by step: register, login, call,
    /// refresh, replay an old refresh token, log in again, log out.
    Demo,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let json_output = cli.json;
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            if json_output {
                println!("{}", error_json(error.code(), &error.to_string()));
            } else {
                eprintln!("error: {error}");
            }
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
        }
    }
}

/// An error as the services write theirs, an [`ErrorBody`] (RFC 6749 §5.2 field names),
/// so one parser reads both. The client's own codes (`not_logged_in`, `invalid_usage`…)
/// are codes no service sends, [`ErrorCode::Other`].
fn error_json(code: &str, description: &str) -> String {
    serde_json::to_string(&ErrorBody::new(ErrorCode::from(code), description)).unwrap_or_default()
}

/// What clap could not parse: its own text for people (and `--help`, `--version`), the
/// JSON error shape when `--json` was asked for; exit 2 either way for a real error.
fn usage_error(error: &clap::Error) -> ExitCode {
    let wants_json = std::env::args_os().any(|a| a == "--json");
    if !error.use_stderr() || !wants_json {
        error.exit()
    }
    // The message is the first paragraph; the usage line and the hint follow.
    let text = error.render().to_string();
    let message = text
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_start_matches("error: ");
    println!("{}", error_json("invalid_usage", message));
    ExitCode::from(u8::try_from(EXIT_USAGE).unwrap_or(2))
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let credentials_path = match cli.credentials.clone() {
        Some(path) => path,
        None => credentials::default_path().ok_or_else(|| {
            CliError::Input("no config directory found; pass --credentials FILE".into())
        })?,
    };
    let client = Client::new(ClientConfig {
        auth_url: cli.auth_url.clone(),
        resource_url: cli.resource_url.clone(),
        credentials_path,
        dpop: !cli.no_dpop,
    })?;
    let out = Output { json: cli.json };

    match cli.command {
        Command::Register {
            username,
            password_stdin,
        } => {
            let password = read_password(password_stdin, true)?;
            let user = client.register(&username, &password).await?;
            out.print(&user, || {
                format!("Registered {username}. Now run `client-cli login {username}`.")
            });
        }
        Command::Login {
            username,
            password_stdin,
        } => {
            let password = read_password(password_stdin, false)?;
            let credentials = client.login(&username, &password).await?;
            out.print(&session_json(&credentials), || {
                let now = jwt::now();
                format!(
                    "Logged in as {}. Access token {}; session {} unless used.\nCredentials: {}",
                    credentials.username,
                    jwt::expiry_phrase(credentials.access_expires_at, now),
                    jwt::expiry_phrase(credentials.refresh_expires_at, now),
                    client.store().path().display()
                )
            });
        }
        Command::Me => {
            // `--json` shows the body as the service sent it; people get its fields.
            let body = client.me().await?;
            let me =
                MeResponse::deserialize(&body).map_err(|e| unexpected_answer(paths::API_ME, &e))?;
            out.print(&body, || {
                format!(
                    "{} (sub {})\nroles: {}\nscope: {}\nsession: {}\naccess token {}",
                    me.username,
                    me.sub,
                    me.roles.join(", "),
                    me.scope,
                    me.sid,
                    jwt::expiry_phrase(me.exp, jwt::now())
                )
            });
        }
        Command::Get { path } => {
            let response = client.get(&path).await?;
            let ok = (200..300).contains(&response.status);
            out.print(
                &json!({"status": response.status, "body": response.body}),
                || {
                    format!(
                        "{} {}\n{}",
                        response.status,
                        if ok { "OK" } else { "refused" },
                        serde_json::to_string_pretty(&response.body).unwrap_or_default()
                    )
                },
            );
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Refresh => {
            let credentials = client.refresh().await?;
            out.print(&session_json(&credentials), || {
                format!(
                    "Refreshed. Access token {}.",
                    jwt::expiry_phrase(credentials.access_expires_at, jwt::now())
                )
            });
        }
        Command::Logout { all } => {
            client.logout(all).await?;
            out.print(&json!({"logged_out": true, "all": all}), || {
                if all {
                    "Logged out everywhere."
                } else {
                    "Logged out."
                }
                .to_owned()
            });
        }
        Command::Sessions => {
            let body = client.sessions().await?;
            let sessions = Vec::<SessionView>::deserialize(&body)
                .map_err(|e| unexpected_answer(paths::SESSIONS, &e))?;
            out.print(&body, || sessions_table(&sessions));
        }
        Command::Token => {
            let credentials = client.stored()?;
            let decoded = jwt::decode(&credentials.access_token).ok_or_else(|| {
                CliError::Unexpected("the stored access token is not a JWT".into())
            })?;
            let now = jwt::now();
            let exp = decoded.claims["exp"].as_i64().unwrap_or(0);
            let value = json!({
                "header": decoded.header,
                "claims": decoded.claims,
                "access_token_expires_in": exp - now,
                "refresh_token_expires_in": credentials.refresh_expires_at - now,
                "verified": false,
            });
            out.print(&value, || {
                format!(
                    "Header: {}\nClaims: {}\nAccess token {} (exp {}).\nRefresh token {} unless used.\n(Decoded only: the servers verify, the client cannot.)",
                    decoded.header,
                    serde_json::to_string_pretty(&decoded.claims).unwrap_or_default(),
                    jwt::expiry_phrase(exp, now),
                    exp,
                    jwt::expiry_phrase(credentials.refresh_expires_at, now)
                )
            });
        }
        Command::Demo => {
            let mut stdout = std::io::stdout();
            let report = demo::run(
                client.auth_url(),
                client.resource_url(),
                &mut stdout,
                !cli.json,
            )
            .await?;
            if cli.json {
                println!("{}", report.to_json());
            }
            let _ = stdout.flush();
            if !report.all_ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a value as JSON or a sentence.
struct Output {
    json: bool,
}

impl Output {
    fn print(&self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", human());
        }
    }
}

fn session_json(credentials: &Credentials) -> Value {
    let now = jwt::now();
    json!({
        "username": credentials.username,
        "scope": credentials.scope,
        "access_token_expires_in": credentials.access_expires_at - now,
        "refresh_token_expires_in": credentials.refresh_expires_at - now,
    })
}

/// A success answer that is not what the route returns: a proxy or another program
/// answered, or the service is of an incompatible version.
fn unexpected_answer(path: &str, error: &serde_json::Error) -> CliError {
    CliError::Unexpected(format!("unexpected answer from {path}: {error}"))
}

fn sessions_table(sessions: &[SessionView]) -> String {
    if sessions.is_empty() {
        return "No live sessions.".into();
    }
    // To the second, in UTC: how the service's RFC 3339 times begin.
    const TO_THE_SECOND: &str = "%Y-%m-%dT%H:%M:%S";
    let mut lines = vec![format!(
        "{:<2} {:<36}  {:<20}  {:<20}  {}",
        "", "SESSION", "CREATED", "LAST USED", "USER AGENT"
    )];
    for s in sessions {
        lines.push(format!(
            "{:<2} {:<36}  {:<20}  {:<20}  {}",
            if s.current { "*" } else { "" },
            s.id,
            s.created_at.format(TO_THE_SECOND).to_string(),
            s.last_used_at.format(TO_THE_SECOND).to_string(),
            s.user_agent
        ));
    }
    lines.push("(* = this session)".into());
    lines.join("\n")
}

/// Reads a password from stdin or from a no-echo prompt; never from arguments.
fn read_password(from_stdin: bool, confirm: bool) -> Result<SecretString, CliError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Input(format!("cannot read the password from stdin: {e}")))?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err(CliError::Input("no password on standard input".into()));
        }
        return Ok(password.into());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Input(
            "no terminal to ask for the password; use --password-stdin".into(),
        ));
    }
    let prompt = |text: &str| {
        rpassword::prompt_password(text)
            .map_err(|e| CliError::Input(format!("cannot read the password: {e}")))
    };
    let password = prompt("Password: ")?;
    if confirm && prompt("Repeat password: ")? != password {
        return Err(CliError::Input("the passwords do not match".into()));
    }
    Ok(password.into())
}
