//! Load without loss: a few thousand interleaved registrations, logins, refreshes (also
//! three tabs refreshing one token at once), session lists, logouts and deletions from
//! many tasks, with the test's own Redis (append-only file on) restarted once in the
//! middle. Then the invariants: no refresh token ever had two different successors;
//! every session is live with exactly one current token, or gone; nobody saw or ended
//! another user's session; the only 5xx were quick 503s around the restart; every user
//! still logs in.
//!
//! Bounded: [`OPERATIONS`] requests from [`TASKS`] tasks over loopback. Run with
//! `--nocapture` for the figures; `LOAD_SEED=<n>` replays a run's choices.

mod world;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::helpers::spawn_app_with;
use crate::lost_replies::counter;
use crate::own_servers::OwnRedis;
use world::{Session, World};

/// Client tasks.
pub const TASKS: usize = 24;
/// Users each task registers at its start (it registers more now and then).
pub const USERS_PER_TASK: usize = 2;
/// Requests of the load phase, 503 retries included.
pub const OPERATIONS: usize = 3000;

/// How long after Redis answers again a request that began during the outage may still
/// have been answered 503 (its first attempt was refused before Redis returned).
const WINDOW_SLACK: Duration = Duration::from_secs(1);

async fn redis_run_id(redis: &OwnRedis) -> String {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_operations_across_a_redis_restart_keep_every_invariant() {
    let redis = OwnRedis::start().await;
    let redis_url = redis.url();
    let app = spawn_app_with(|s| {
        s.redis.url = SecretString::from(redis_url);
        // One address makes every request here: the limits are not under test.
        s.rate_limit.attempts_per_ip = 1_000_000;
        s.rate_limit.attempts_per_username = 1_000_000;
        s.rate_limit.delay_after_failures_per_username = 1_000_001;
    })
    .await;
    let seed = std::env::var("LOAD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use shared_claims::protocol::Clock as _;
            shared_claims::protocol::SystemClock.now_ms() as u64
        });
    let world = Arc::new(World {
        base: app.address.clone(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        usernames: Default::default(),
        owners: Default::default(),
        successors: Default::default(),
        violations: Default::default(),
        exchanges: Default::default(),
        operations: Default::default(),
        lost_logins: Default::default(),
    });
    let started = Instant::now();

    let restarter = tokio::spawn({
        let world = Arc::clone(&world);
        async move {
            let mut redis = redis;
            while world.operations.load(Ordering::Relaxed) < OPERATIONS / 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let before = redis_run_id(&redis).await;
            let begin = Instant::now();
            redis.restart().await;
            let end = Instant::now();
            assert_ne!(before, redis_run_id(&redis).await, "Redis did not restart");
            (redis, begin, end)
        }
    });
    let tasks = (0..TASKS as u64).map(|i| {
        let seed = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        tokio::spawn(world::task(Arc::clone(&world), seed))
    });
    let sessions: Vec<Session> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let (_redis, restart_begin, restart_end) = restarter.await.unwrap();
    let load_operations = world.operations.load(Ordering::Relaxed);
    let load_time = started.elapsed();

    // Nothing during the load was taken for token reuse.
    let reuse = async || {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        counter(
            &metrics,
            r#"auth_refreshes_total{service="auth-service",outcome="reuse"}"#,
        ) as usize
    };
    let reuse_during_load = reuse().await;
    if reuse_during_load != 0 {
        world.violation(format!(
            "{reuse_during_load} sessions revoked as reuse during the load"
        ));
    }

    let checks = final_states(&world, &sessions).await;

    // Every replay of an old token at the end, and only those, was detected as reuse.
    let reuse_at_the_end = reuse().await - reuse_during_load;
    if reuse_at_the_end != checks.reuse_detected {
        world.violation(format!(
            "{reuse_at_the_end} reuse detections for {} replays",
            checks.reuse_detected
        ));
    }
    let users = world.usernames.lock().unwrap().len();
    for user in 0..users {
        if world.login(user).await.is_none() {
            world.violation(format!("user {user} cannot log in after the run"));
        }
    }

    // The 5xx rule: quick 503s while Redis was down, nothing else, never.
    let exchanges = world.exchanges.lock().unwrap();
    let window = (restart_begin, restart_end + WINDOW_SLACK);
    let mut unavailable = Vec::new();
    for e in exchanges
        .iter()
        .filter(|e| e.status >= 500 || e.status == 0)
    {
        let in_window = e.started <= window.1 && e.started + e.took >= window.0;
        if e.status == 503
            && e.code == "temporarily_unavailable"
            && e.took < Duration::from_secs(2)
            && in_window
        {
            unavailable.push(e);
        } else {
            world.violation(format!(
                "{}: {} {} after {:?}, {:?} from the restart",
                e.what,
                e.status,
                e.code,
                e.took,
                e.started.saturating_duration_since(restart_begin)
            ));
        }
    }
    let kinds: HashSet<&str> = unavailable.iter().map(|e| e.what).collect();
    let since_restart = |e: &&world::Exchange| e.started.saturating_duration_since(restart_begin);
    let (slowest_answer, slowest_kind) = exchanges
        .iter()
        .filter(|e| e.status != 503)
        .map(|e| (e.took, e.what))
        .max()
        .unwrap_or_default();
    eprintln!(
        "load: seed {seed}; {load_operations} requests in {load_time:.1?} from {TASKS} tasks, \
         {users} users, {} sessions, {} rotations; Redis down for {:?} after {:?}; \
         {} quick 503s ({kinds:?}) that began between {:?} and {:?} after the restart began, \
         the slowest answered in {:?}; slowest other answer {slowest_answer:?} ({slowest_kind}); final checks: {} live sessions refreshed and retried without \
         a fork, {} replays of old tokens detected, {} ended sessions refused, {} lists \
         exact; {} logins after the run; {} requests in all",
        sessions.len(),
        world.successors.lock().unwrap().len(),
        restart_end - restart_begin,
        restart_begin - started,
        unavailable.len(),
        unavailable
            .iter()
            .map(since_restart)
            .min()
            .unwrap_or_default(),
        unavailable
            .iter()
            .map(since_restart)
            .max()
            .unwrap_or_default(),
        unavailable.iter().map(|e| e.took).max().unwrap_or_default(),
        checks.live,
        checks.reuse_detected,
        checks.ended,
        checks.lists,
        users,
        exchanges.len(),
    );
    let violations = world.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} violations: {violations:#?}",
        violations.len()
    );
}

/// What the final checks saw.
#[derive(Default)]
struct Checks {
    live: usize,
    reuse_detected: usize,
    ended: usize,
    lists: usize,
}

/// Every session the run opened is either ended (its token refused, not listed) or live
/// with exactly one current token: the last one refreshes, its immediate retry gets the
/// same successor, and an older one is refused as reuse (which ends the session).
async fn final_states(world: &World, sessions: &[Session]) -> Checks {
    let mut checks = Checks::default();
    let mut by_user: HashMap<usize, Vec<&Session>> = HashMap::new();
    for session in sessions {
        by_user.entry(session.user).or_default().push(session);
    }
    for (user, sessions) in by_user {
        let live: Vec<&Session> = sessions.iter().copied().filter(|s| !s.ended).collect();
        if let Some(lister) = live.first() {
            check_list(world, user, &lister.access, &sessions).await;
            checks.lists += 1;
        }
        for session in sessions.iter().filter(|s| s.ended) {
            let last = session.tokens.last().unwrap();
            match world.refresh(last).await {
                Err((401, _)) => checks.ended += 1,
                other => world.violation(format!("ended session {}: {other:?}", session.sid)),
            }
        }
        for session in live {
            let last = session.tokens.last().unwrap();
            let Ok((successor, _)) = world.refresh(last).await else {
                world.violation(format!("live session {} does not refresh", session.sid));
                continue;
            };
            // `refresh` records the pair: a different successor here is a violation.
            if world.refresh(last).await.is_err() {
                world.violation(format!(
                    "the immediate retry in {} was refused",
                    session.sid
                ));
            }
            checks.live += 1;
            if session.tokens.len() >= 2 {
                let older = &session.tokens[session.tokens.len() - 2];
                let replay = world.refresh(older).await;
                let after = world.refresh(&successor).await;
                if matches!((&replay, &after), (Err((401, _)), Err((401, _)))) {
                    checks.reuse_detected += 1;
                } else {
                    world.violation(format!(
                        "an old token of {} was not refused as reuse: {replay:?} then {after:?}",
                        session.sid
                    ));
                }
            }
        }
    }
    checks
}

/// The user's list shows exactly their live sessions, plus at most one unknown session
/// per login whose answer was lost.
async fn check_list(world: &World, user: usize, access: &str, sessions: &[&Session]) {
    let Some(listed) = world.list(user, access).await else {
        return;
    };
    let known: HashSet<&String> = sessions.iter().map(|s| &s.sid).collect();
    for session in sessions {
        let shown = listed.contains(&session.sid);
        if session.ended == shown {
            world.violation(format!(
                "session {}: ended {}, listed {shown}",
                session.sid, session.ended
            ));
        }
    }
    let unknown = listed.iter().filter(|sid| !known.contains(sid)).count();
    let lost = world
        .lost_logins
        .lock()
        .unwrap()
        .get(&user)
        .copied()
        .unwrap_or(0);
    if unknown > lost {
        world.violation(format!(
            "user {user} lists {unknown} sessions nobody opened"
        ));
    }
}
