//! A flood of logins meets a bounded queue: Argon2 work waits for one of a few permits,
//! logins beyond `passwords.max_waiting` get 503 with `Retry-After` at once, and refresh,
//! logout and the JWKS, which never wait for a hash permit, keep their normal latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with};

/// Logins kept in flight during the flood.
const FLOOD: usize = 200;
/// Hash permits and queue of the flooded service: room for all but a few of the flood,
/// so 192 logins are always in the service and the rest are turned away.
const PERMITS: usize = 2;
const MAX_WAITING: usize = 190;
/// Samples of each measured call, before and during the flood.
const SAMPLES: usize = 12;

/// What the flood's logins got back.
#[derive(Default)]
struct FloodOutcome {
    ok: Vec<Duration>,
    busy: Vec<Duration>,
    busy_without_retry_after: usize,
    other: Vec<String>,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let result = call.await;
    (result, started.elapsed())
}

/// Median latencies of refresh (along one rotating chain), logout (of sessions opened
/// beforehand) and the JWKS.
struct Latencies {
    refresh: Duration,
    logout: Duration,
    jwks: Duration,
}

async fn measure(app: &TestApp, refresh_token: &mut String, to_log_out: Vec<String>) -> Latencies {
    let (mut refresh, mut logout, mut jwks) = (Vec::new(), Vec::new(), Vec::new());
    for token in to_log_out {
        let (response, took) = timed(app.refresh(refresh_token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        *refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        refresh.push(took);

        let (response, took) = timed(app.get("/.well-known/jwks.json")).await;
        assert_eq!(response.status(), StatusCode::OK);
        jwks.push(took);

        let (response, took) = timed(app.logout(&token)).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        logout.push(took);
    }
    Latencies {
        refresh: median(refresh),
        logout: median(logout),
        jwks: median(jwks),
    }
}

async fn open_sessions(app: &TestApp, username: &str, count: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for _ in 0..count {
        let response = app.login(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    tokens
}

/// Starts `FLOOD` clients that log in again as soon as they have an answer (after a
/// short pause when turned away, as a client honouring `Retry-After` loosely would).
/// Those the queue holds are in flight all along; the others knock every 100 ms.
fn start_flood(
    app: &TestApp,
    username: &str,
    stop: &Arc<AtomicBool>,
    turned_away: &Arc<AtomicUsize>,
    outcome: &Arc<Mutex<FloodOutcome>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    (0..FLOOD)
        .map(|_| {
            let (client, url) = (client.clone(), app.url("/auth/login"));
            let body = json!({"username": username, "password": PASSWORD});
            let (stop, turned_away, outcome) = (
                Arc::clone(stop),
                Arc::clone(turned_away),
                Arc::clone(outcome),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (response, took) = timed(client.post(&url).json(&body).send()).await;
                    let mut outcome = outcome.lock().await;
                    match response.as_ref().map(reqwest::Response::status) {
                        Ok(StatusCode::OK) => outcome.ok.push(took),
                        Ok(StatusCode::SERVICE_UNAVAILABLE) => {
                            let response = response.unwrap();
                            if !response.headers().contains_key("retry-after") {
                                outcome.busy_without_retry_after += 1;
                            }
                            outcome.busy.push(took);
                            drop(outcome);
                            turned_away.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Ok(status) => outcome.other.push(status.to_string()),
                        Err(e) => outcome.other.push(e.to_string()),
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_queued_or_turned_away_and_never_slows_refresh_logout_or_jwks() {
    let app = spawn_app_with(|s| {
        s.rate_limit.attempts_per_ip = 1_000_000;
        s.rate_limit.attempts_per_username = 1_000_000;
        s.passwords.max_concurrent_hashes = Some(PERMITS);
        s.passwords.max_waiting = MAX_WAITING;
    })
    .await;
    let (username, session) = app.registered_session().await;
    let mut refresh_token = session["refresh_token"].as_str().unwrap().to_owned();
    let to_log_out = open_sessions(&app, &username, 2 * SAMPLES).await;
    let (before, during) = to_log_out.split_at(SAMPLES);
    let baseline = measure(&app, &mut refresh_token, before.to_vec()).await;

    let stop = Arc::new(AtomicBool::new(false));
    let turned_away = Arc::new(AtomicUsize::new(0));
    let outcome = Arc::new(Mutex::new(FloodOutcome::default()));
    let flood = start_flood(&app, &username, &stop, &turned_away, &outcome);
    // The queue is full once the service starts turning logins away.
    let deadline = Instant::now() + Duration::from_secs(20);
    while turned_away.load(Ordering::Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the flood never filled the queue"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let flooded = measure(&app, &mut refresh_token, during.to_vec()).await;
    // One more login while the queue is full: turned away at once with our error body.
    // One that finds a free place instead waits its turn behind the whole queue, which on
    // a loaded machine takes longer than the test client's usual timeout.
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut extra = None;
    for _ in 0..50 {
        let login = patient
            .post(app.url("/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send();
        let (response, took) = timed(async { login.await.unwrap() }).await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            // Read the answer now: the client's timeout runs from the request's start.
            let retry_after = response.headers().contains_key("retry-after");
            let body: serde_json::Value = response.json().await.unwrap();
            extra = Some((retry_after, body, took));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await.unwrap();
    }

    let outcome = Arc::try_unwrap(outcome).ok().unwrap().into_inner();
    assert!(
        outcome.other.is_empty(),
        "unexpected answers: {:?}",
        outcome.other
    );
    assert_eq!(outcome.busy_without_retry_after, 0);
    assert!(!outcome.ok.is_empty(), "queued logins must still succeed");
    let (retry_after, body, took) = extra.expect("a login beyond the queue is turned away");
    assert!(retry_after);
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    // "At once": far quicker than a login that waited its turn in the queue.
    let queued_login = median(outcome.ok.clone());
    let turned_away_login = median(outcome.busy.clone());
    println!(
        "baseline: refresh {:?}, logout {:?}, jwks {:?}; flood: refresh {:?}, logout {:?}, \
         jwks {:?}; logins: {} ok (median {queued_login:?}), {} turned away (median \
         {turned_away_login:?}), extra one in {took:?}",
        baseline.refresh,
        baseline.logout,
        baseline.jwks,
        flooded.refresh,
        flooded.logout,
        flooded.jwks,
        outcome.ok.len(),
        outcome.busy.len(),
    );
    assert!(
        turned_away_login * 3 < queued_login,
        "turned-away logins ({turned_away_login:?}) must not wait like queued ones \
         ({queued_login:?})"
    );
    // Never behind hashes: a call that queued for a permit would take about as long as a
    // queued login. The bound is loose on purpose (two busy cores hash next to us).
    for (name, normal, flooded) in [
        ("refresh", baseline.refresh, flooded.refresh),
        ("logout", baseline.logout, flooded.logout),
        ("jwks", baseline.jwks, flooded.jwks),
    ] {
        let bound = (normal * 10).max(normal + Duration::from_millis(150));
        assert!(
            flooded <= bound && flooded * 3 < queued_login,
            "{name} took {flooded:?} during the flood (normally {normal:?}, bound {bound:?}, \
             a queued login {queued_login:?})"
        );
    }
}

#[tokio::test]
async fn a_burst_of_logins_leaves_the_session_index_within_the_cap() {
    const CAP: u32 = 5;
    let app = spawn_app_with(|s| {
        s.rate_limit.attempts_per_ip = 1_000_000;
        s.rate_limit.attempts_per_username = 1_000_000;
        s.jwt.max_sessions_per_user = CAP;
    })
    .await;
    let username = crate::helpers::unique_username();
    let registered: Value = app
        .register(&username, PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let user_id = registered["id"].as_str().unwrap();

    let logins: Vec<_> = (0..40).map(|_| app.login(&username, PASSWORD)).collect();
    let statuses: Vec<_> = futures_util::future::join_all(logins)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();

    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    // Every read of the index (listing, eviction, logout-all) reads all of it: the cap
    // is what bounds that read.
    let index = format!(
        "{}user:{{{user_id}}}:sessions",
        app.settings.redis.key_prefix
    );
    let dump = app.redis_dump().await;
    let (_, members) = dump.iter().find(|(key, _)| *key == index).unwrap();
    let indexed = members.split(' ').count() / 2;
    assert!(
        (1..=CAP as usize).contains(&indexed),
        "{indexed} sessions indexed, cap {CAP}"
    );
}
