//! The simulated clients of the load test: shared bookkeeping ([`World`]) and one task's
//! random operations ([`task`]). Every answer is checked as it comes; what needs the
//! whole run (successors, the 5xx rule, final states) is checked in the parent module.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::RequestBuilder;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, jwt_part, unique_username};

use super::{OPERATIONS, USERS_PER_TASK};

/// A small xorshift generator: reproducible from its seed, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One HTTP exchange, for the 5xx rule.
pub struct Exchange {
    pub what: &'static str,
    pub started: Instant,
    pub took: Duration,
    pub status: u16,
    pub code: String,
}

#[derive(Clone)]
pub struct Session {
    pub sid: String,
    pub user: usize,
    /// Every refresh token of the session in order; the last is the current one.
    pub tokens: Vec<String>,
    pub access: String,
    /// Ended by its owner (logout or deletion).
    pub ended: bool,
}

/// What all tasks share.
pub struct World {
    pub base: String,
    pub client: reqwest::Client,
    pub usernames: Mutex<Vec<String>>,
    /// Session id → owner (index into `usernames`).
    pub owners: Mutex<HashMap<String, usize>>,
    /// Presented refresh token → the successor it yielded.
    pub successors: Mutex<HashMap<String, String>>,
    pub violations: Mutex<Vec<String>>,
    pub exchanges: Mutex<Vec<Exchange>>,
    pub operations: AtomicUsize,
    /// Logins answered 503 in the end, per user: each may have left a session the test
    /// never learnt of (allowed in its owner's list, never in anyone else's).
    pub lost_logins: Mutex<HashMap<usize, usize>>,
}

impl World {
    pub fn violation(&self, text: String) {
        self.violations.lock().unwrap().push(text);
    }

    /// Sends a request until it gets an answer other than 503 (at most 30 tries, 100 ms
    /// apart, as a client honouring the answer would), recording every exchange.
    pub async fn call(
        &self,
        what: &'static str,
        request: impl Fn() -> RequestBuilder,
    ) -> (u16, Value) {
        let (status, body, _) = self.call_counting_retries(what, request).await;
        (status, body)
    }

    /// [`Self::call`], also saying how many 503s came before the last answer: each may
    /// have done its work without saying so (a login's session opened, say).
    pub async fn call_counting_retries(
        &self,
        what: &'static str,
        request: impl Fn() -> RequestBuilder,
    ) -> (u16, Value, usize) {
        let mut last = (503, Value::Null);
        let mut unavailable = 0;
        for _ in 0..30 {
            self.operations.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let (status, body) = match request().send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (
                        status,
                        response.json::<Value>().await.unwrap_or(Value::Null),
                    )
                }
                Err(e) => {
                    self.violation(format!("{what}: no HTTP answer: {e}"));
                    (0, Value::Null)
                }
            };
            let code = body["error"].as_str().unwrap_or_default().to_owned();
            self.exchanges.lock().unwrap().push(Exchange {
                what,
                started,
                took: started.elapsed(),
                status,
                code,
            });
            last = (status, body);
            if status != 503 {
                return (last.0, last.1, unavailable);
            }
            unavailable += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (last.0, last.1, unavailable)
    }

    pub fn post(&self, path: &str, body: Value) -> impl Fn() -> RequestBuilder {
        let (client, url) = (self.client.clone(), format!("{}{path}", self.base));
        move || client.post(&url).json(&body)
    }

    pub fn bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> impl Fn() -> RequestBuilder {
        let (client, url, token) = (
            self.client.clone(),
            format!("{}{path}", self.base),
            token.to_owned(),
        );
        move || client.request(method.clone(), &url).bearer_auth(&token)
    }

    pub fn username(&self, user: usize) -> String {
        self.usernames.lock().unwrap()[user].clone()
    }

    pub async fn register(&self) -> usize {
        let username = unique_username();
        let body = json!({"username": username, "password": PASSWORD});
        let (status, answer) = self
            .call("register", self.post("/auth/register", body))
            .await;
        if status != 201 {
            self.violation(format!("register: {status} {answer}"));
        }
        let mut usernames = self.usernames.lock().unwrap();
        usernames.push(username);
        usernames.len() - 1
    }

    pub async fn login(&self, user: usize) -> Option<Session> {
        let body = json!({"username": self.username(user), "password": PASSWORD});
        let (status, answer, unavailable) = self
            .call_counting_retries("login", self.post("/auth/login", body))
            .await;
        // A 503 may come after the session was opened (its answer lost): it is listed
        // until it expires, without the test knowing its id.
        if unavailable > 0 {
            *self.lost_logins.lock().unwrap().entry(user).or_default() += unavailable;
        }
        if status != 200 {
            *self.lost_logins.lock().unwrap().entry(user).or_default() += 1;
            self.violation(format!("login: {status} {answer}"));
            return None;
        }
        let access = answer["access_token"].as_str().unwrap().to_owned();
        let sid = jwt_part(&access, 1)["sid"].as_str().unwrap().to_owned();
        self.owners.lock().unwrap().insert(sid.clone(), user);
        Some(Session {
            sid,
            user,
            tokens: vec![answer["refresh_token"].as_str().unwrap().to_owned()],
            access,
            ended: false,
        })
    }

    /// Presents `token`; on success records and returns the successor and access token.
    pub async fn refresh(&self, token: &str) -> Result<(String, String), (u16, Value)> {
        let body = json!({"refresh_token": token});
        let (status, answer) = self.call("refresh", self.post("/auth/refresh", body)).await;
        if status != 200 {
            return Err((status, answer));
        }
        let successor = answer["refresh_token"].as_str().unwrap().to_owned();
        let previous = self
            .successors
            .lock()
            .unwrap()
            .insert(token.to_owned(), successor.clone());
        if previous.is_some_and(|p| p != successor) {
            self.violation("a refresh token yielded two different successors".into());
        }
        Ok((
            successor,
            answer["access_token"].as_str().unwrap().to_owned(),
        ))
    }

    /// Lists `user`'s sessions with `access` and checks nobody else's is among them.
    pub async fn list(&self, user: usize, access: &str) -> Option<HashSet<String>> {
        let request = self.bearer(reqwest::Method::GET, "/auth/sessions", access);
        let (status, answer) = self.call("list", request).await;
        if status != 200 {
            self.violation(format!("list: {status} {answer}"));
            return None;
        }
        let listed: HashSet<String> = answer
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        let owners = self.owners.lock().unwrap();
        for sid in &listed {
            if owners.get(sid).is_some_and(|owner| *owner != user) {
                self.violation(format!(
                    "user {user} was shown another user's session {sid}"
                ));
            }
        }
        Some(listed)
    }
}

/// One task's life: its own users, and random operations until the budget is spent.
pub async fn task(world: Arc<World>, seed: u64) -> Vec<Session> {
    let mut rng = Rng(seed | 1);
    let mut users = Vec::new();
    for _ in 0..USERS_PER_TASK {
        users.push(world.register().await);
    }
    let mut sessions: Vec<Session> = Vec::new();
    while world.operations.load(Ordering::Relaxed) < OPERATIONS {
        let user = users[rng.below(users.len())];
        let live: Vec<usize> = (0..sessions.len())
            .filter(|&i| sessions[i].user == user && !sessions[i].ended)
            .collect();
        let choice = if live.is_empty() { 0 } else { rng.below(100) };
        let pick = |rng: &mut Rng| live.get(rng.below(live.len().max(1))).copied();
        match choice {
            0..12 => sessions.extend(world.login(user).await),
            12..15 => users.push(world.register().await),
            15..55 => {
                let Some(i) = pick(&mut rng) else { continue };
                let current = sessions[i].tokens.last().unwrap().clone();
                match world.refresh(&current).await {
                    Ok((successor, access)) => {
                        sessions[i].tokens.push(successor);
                        sessions[i].access = access;
                    }
                    Err(answer) => {
                        world.violation(format!("refresh of a live session: {answer:?}"))
                    }
                }
            }
            55..63 => {
                // Three tabs refreshing one token at once: one successor for all.
                let Some(i) = pick(&mut rng) else { continue };
                let current = sessions[i].tokens.last().unwrap().clone();
                let tabs = (0..3).map(|_| world.refresh(&current));
                let answers = futures_util::future::join_all(tabs).await;
                let granted: HashSet<(String, String)> = answers
                    .iter()
                    .filter_map(|a| a.as_ref().ok().cloned())
                    .collect();
                let successors: HashSet<&String> = granted.iter().map(|(s, _)| s).collect();
                if successors.len() != 1 || answers.iter().any(Result::is_err) {
                    world.violation(format!("concurrent refresh: {answers:?}"));
                }
                if let Some((successor, access)) = granted.into_iter().next() {
                    sessions[i].tokens.push(successor);
                    sessions[i].access = access;
                }
            }
            63..75 => {
                let Some(i) = pick(&mut rng) else { continue };
                if let Some(listed) = world.list(user, &sessions[i].access).await {
                    for session in sessions.iter().filter(|s| s.user == user && !s.ended) {
                        if !listed.contains(&session.sid) {
                            world.violation(format!("live session {} not listed", session.sid));
                        }
                    }
                }
            }
            75..83 => {
                let Some(i) = pick(&mut rng) else { continue };
                let body = json!({"refresh_token": sessions[i].tokens.last().unwrap()});
                let (status, answer) = world.call("logout", world.post("/auth/logout", body)).await;
                if status != 204 {
                    world.violation(format!("logout: {status} {answer}"));
                }
                sessions[i].ended = true;
            }
            83..91 => {
                // End one of the user's sessions with the access token of another (or
                // of itself).
                let (Some(i), Some(j)) = (pick(&mut rng), pick(&mut rng)) else {
                    continue;
                };
                let path = format!("/auth/sessions/{}", sessions[j].sid);
                let request = world.bearer(reqwest::Method::DELETE, &path, &sessions[i].access);
                let (status, answer) = world.call("delete", request).await;
                if status != 204 {
                    world.violation(format!("delete own session: {status} {answer}"));
                }
                sessions[j].ended = true;
            }
            _ => {
                // Try to end somebody else's session: 404, and it lives on.
                let Some(i) = pick(&mut rng) else { continue };
                let victim = {
                    let owners = world.owners.lock().unwrap();
                    let others: Vec<&String> = owners
                        .iter()
                        .filter(|(_, owner)| **owner != user)
                        .map(|(sid, _)| sid)
                        .collect();
                    others
                        .get(rng.below(others.len().max(1)))
                        .map(|s| (*s).clone())
                };
                let Some(victim) = victim else { continue };
                let path = format!("/auth/sessions/{victim}");
                let request = world.bearer(reqwest::Method::DELETE, &path, &sessions[i].access);
                let (status, answer) = world.call("delete other", request).await;
                if status != 404 {
                    world.violation(format!("ending another user's session: {status} {answer}"));
                }
            }
        }
    }
    sessions
}
