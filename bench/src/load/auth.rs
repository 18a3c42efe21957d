//! The auth-service rows: users registered for the run, logins (which open the sessions)
//! and refresh chains in which every request presents its session's current token.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared_claims::protocol::paths;

use super::http1::Connection;
use super::{Outcome, run_clients, timed};

/// A registered user's credentials.
#[derive(Debug, Clone)]
pub struct User {
    /// Username.
    pub username: String,
    /// Its random password.
    pub password: String,
}

fn random_text(bytes: usize) -> anyhow::Result<String> {
    let mut raw = vec![0; bytes];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// Registers `count` users with random names and strong random passwords.
pub async fn register(
    http: &reqwest::Client,
    auth_url: &str,
    count: usize,
) -> anyhow::Result<Vec<User>> {
    let run = random_text(6)?.replace(['-', '_'], "x");
    let mut users = Vec::with_capacity(count);
    for i in 0..count {
        let user = User {
            username: format!("bench_{run}_{i}"),
            password: random_text(18)?,
        };
        let response = http
            .post(format!("{auth_url}/auth/register"))
            .json(&json!({"username": user.username, "password": user.password}))
            .send()
            .await
            .context("register failed")?;
        if !response.status().is_success() {
            bail!(
                "register answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        users.push(user);
    }
    Ok(users)
}

/// `count` logins by `clients` concurrent clients, cycling through `users`; returns what
/// was measured and the refresh token of every session opened.
pub async fn login(
    http: &reqwest::Client,
    auth_url: &str,
    users: Vec<User>,
    count: usize,
    clients: usize,
) -> (Outcome, Vec<String>) {
    let users = Arc::new(users);
    let sessions = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let url = format!("{auth_url}/auth/login");
    let outcome = run_clients(clients, |c| {
        let (http, users, sessions, url) = (
            http.clone(),
            Arc::clone(&users),
            Arc::clone(&sessions),
            url.clone(),
        );
        async move {
            let mut outcome = Outcome::default();
            for n in (c..count).step_by(clients) {
                let user = &users[n % users.len()];
                let body = json!({"username": user.username, "password": user.password});
                let Some(response) = timed(&mut outcome, http.post(&url).json(&body)).await else {
                    continue;
                };
                match refresh_token_of(response).await {
                    Some(token) => sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(token),
                    None => outcome.unreadable(),
                }
            }
            outcome
        }
    })
    .await;
    let sessions = std::mem::take(&mut *sessions.lock().unwrap_or_else(|p| p.into_inner()));
    (outcome, sessions)
}

/// `rounds` refreshes of each session by `clients` concurrent clients; client `c` owns
/// the sessions `c, c + clients, …` and always presents a session's latest token, on a
/// keep-alive connection of its own ([`Connection`]). A request's latency runs from
/// sending it to having read the whole answer. Returns what was measured and every
/// session's latest token, so that a later run can go on.
pub async fn refresh(
    auth_url: &str,
    sessions: Vec<String>,
    rounds: usize,
    clients: usize,
) -> (Outcome, Vec<String>) {
    let latest = Arc::new(std::sync::Mutex::new(Vec::with_capacity(sessions.len())));
    let auth_url = auth_url.to_owned();
    let outcome = run_clients(clients, |c| {
        let (auth_url, latest) = (auth_url.clone(), Arc::clone(&latest));
        let mut mine: Vec<String> = sessions.iter().skip(c).step_by(clients).cloned().collect();
        async move {
            let mut outcome = Outcome::default();
            let mut connection = match Connection::open(&auth_url).await {
                Ok(connection) => connection,
                Err(e) => {
                    eprintln!("{e:#}");
                    outcome.errors += (mine.len() * rounds) as u64;
                    return outcome;
                }
            };
            for _ in 0..rounds {
                for token in mine.iter_mut() {
                    let body = serde_json::to_vec(&RefreshRequest {
                        refresh_token: token,
                    })
                    .unwrap_or_default();
                    let sent = Instant::now();
                    let answer = connection.post_json(paths::REFRESH, body).await;
                    let answered = sent.elapsed();
                    match answer {
                        Ok((status, body)) if status.is_success() => {
                            match serde_json::from_slice::<Refreshed>(&body) {
                                Ok(refreshed) => {
                                    outcome.ok += 1;
                                    outcome.latencies.push(answered);
                                    *token = refreshed.refresh_token;
                                }
                                Err(_) => outcome.errors += 1,
                            }
                        }
                        Ok((status, body)) => {
                            outcome.errors += 1;
                            outcome.latencies.push(answered);
                            if outcome.errors <= 3 {
                                eprintln!(
                                    "unexpected {status}: {}",
                                    String::from_utf8_lossy(&body)
                                );
                            }
                        }
                        Err(e) => {
                            outcome.errors += 1;
                            if outcome.errors <= 3 {
                                eprintln!("request failed: {e:#}");
                            }
                            // The connection is gone: later requests of this client fail too.
                            match Connection::open(&auth_url).await {
                                Ok(fresh) => connection = fresh,
                                Err(_) => return outcome,
                            }
                        }
                    }
                }
            }
            latest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(mine);
            outcome
        }
    })
    .await;
    let latest = std::mem::take(&mut *latest.lock().unwrap_or_else(|p| p.into_inner()));
    (outcome, latest)
}

/// The body of `POST /auth/refresh`.
#[derive(Serialize)]
struct RefreshRequest<'a> {
    refresh_token: &'a str,
}

/// What the refresh row reads of a token response.
#[derive(Deserialize)]
struct Refreshed {
    refresh_token: String,
}

async fn refresh_token_of(response: reqwest::Response) -> Option<String> {
    let body: Value = response.json().await.ok()?;
    body["refresh_token"].as_str().map(str::to_owned)
}
