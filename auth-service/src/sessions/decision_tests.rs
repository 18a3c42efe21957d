//! The rotation decision table (`scripts/decide.lua`), row by row, run in an embedded Lua
//! 5.1 (the version Redis runs) without Redis: the function is pure, so these tests
//! exercise exactly the code the rotation script runs.

use mlua::{Function, Lua, Table};

const NOW: i64 = 1_000_000;
const GRACE_MS: i64 = 5_000;

/// A session at generation 5, rotated 1 s ago, used just now, bound to nothing.
fn session(lua: &Lua) -> Table {
    let s = lua.create_table().unwrap();
    s.set("gen", "5").unwrap();
    s.set("rot", (NOW - 1_000).to_string()).unwrap();
    s.set("grace", "0").unwrap();
    s.set("abs", (NOW + 3_600_000).to_string()).unwrap();
    s.set("used", (NOW - 1_000).to_string()).unwrap();
    s
}

/// A request presenting `generation`, without a proof or a lost-reply hint.
fn request(lua: &Lua, generation: i64) -> Table {
    let r = lua.create_table().unwrap();
    r.set("presented", generation).unwrap();
    r.set("grace_ms", GRACE_MS).unwrap();
    r.set("grace_count", 3).unwrap();
    r.set("idle_ms", 86_400_000).unwrap();
    r.set("hint", "").unwrap();
    r.set("proof_jkt", "").unwrap();
    r.set("now", NOW).unwrap();
    r
}

fn decide(lua: &Lua) -> Function {
    lua.load(format!(
        "{}\nreturn decide",
        include_str!("scripts/decide.lua")
    ))
    .eval()
    .unwrap()
}

fn answer(lua: &Lua, s: Table, r: Table) -> String {
    decide(lua).call((s, r)).unwrap()
}

#[test]
fn the_current_token_rotates() {
    let lua = Lua::new();
    assert_eq!(answer(&lua, session(&lua), request(&lua, 5)), "rotate");
}

#[test]
fn a_missing_session_is_unknown() {
    let lua = Lua::new();
    assert_eq!(
        answer(&lua, lua.create_table().unwrap(), request(&lua, 5)),
        "unknown"
    );
}

#[test]
fn an_idle_or_too_old_session_is_expired_whatever_is_presented() {
    let lua = Lua::new();
    let idle = session(&lua);
    idle.set("used", (NOW - 86_400_000).to_string()).unwrap();
    assert_eq!(answer(&lua, idle, request(&lua, 5)), "expired");
    let old = session(&lua);
    old.set("abs", NOW.to_string()).unwrap();
    assert_eq!(answer(&lua, old, request(&lua, 4)), "expired");
}

#[test]
fn the_predecessor_inside_the_window_is_a_retry_until_the_count_is_spent() {
    let lua = Lua::new();
    assert_eq!(answer(&lua, session(&lua), request(&lua, 4)), "retry");
    let spent = session(&lua);
    spent.set("grace", "3").unwrap();
    assert_eq!(answer(&lua, spent, request(&lua, 4)), "grace_exhausted");
}

#[test]
fn the_predecessor_after_the_window_or_without_one_is_reuse() {
    let lua = Lua::new();
    let late = session(&lua);
    late.set("rot", (NOW - GRACE_MS).to_string()).unwrap();
    assert_eq!(answer(&lua, late, request(&lua, 4)), "reused");
    let no_window = request(&lua, 4);
    no_window.set("grace_ms", 0).unwrap();
    assert_eq!(answer(&lua, session(&lua), no_window), "reused");
}

#[test]
fn older_tokens_are_reuse_and_newer_ones_state_loss() {
    let lua = Lua::new();
    assert_eq!(answer(&lua, session(&lua), request(&lua, 3)), "reused");
    assert_eq!(answer(&lua, session(&lua), request(&lua, 0)), "reused");
    assert_eq!(answer(&lua, session(&lua), request(&lua, 6)), "ahead");
}

#[test]
fn a_lost_reply_makes_the_predecessor_recoverable_whenever_it_comes() {
    let lua = Lua::new();
    let marked = session(&lua);
    marked.set("lost", "4").unwrap();
    marked.set("rot", (NOW - 3_600_000).to_string()).unwrap();
    assert_eq!(answer(&lua, marked, request(&lua, 4)), "recovered");
    // The same from the request's own id (its first attempt, or this instance's memory),
    // but only if that request made the current generation.
    let made_by = |rid: &str| {
        let s = session(&lua);
        s.set("rot", (NOW - 3_600_000).to_string()).unwrap();
        s.set("rid", rid).unwrap();
        s
    };
    let hinted = || {
        let r = request(&lua, 4);
        r.set("hint", "request-1").unwrap();
        r
    };
    assert_eq!(answer(&lua, made_by("request-1"), hinted()), "recovered");
    assert_eq!(answer(&lua, made_by("request-2"), hinted()), "reused");
    // A mark for another generation recovers nothing.
    let other = session(&lua);
    other.set("lost", "3").unwrap();
    other.set("rot", (NOW - 3_600_000).to_string()).unwrap();
    assert_eq!(answer(&lua, other, request(&lua, 4)), "reused");
}

#[test]
fn a_bound_session_refuses_the_current_token_without_its_key_and_treats_the_rest_as_reuse() {
    let lua = Lua::new();
    let bound = || {
        let s = session(&lua);
        s.set("jkt", "owner-key").unwrap();
        s
    };
    let with_key = |generation: i64, jkt: &str| {
        let r = request(&lua, generation);
        r.set("proof_jkt", jkt).unwrap();
        r
    };
    assert_eq!(answer(&lua, bound(), with_key(5, "owner-key")), "rotate");
    assert_eq!(answer(&lua, bound(), with_key(5, "")), "wrong_key");
    assert_eq!(answer(&lua, bound(), with_key(5, "thief-key")), "wrong_key");
    assert_eq!(answer(&lua, bound(), with_key(4, "owner-key")), "retry");
    // Inside the grace window, but with another key: the window does not help a thief.
    assert_eq!(answer(&lua, bound(), with_key(4, "thief-key")), "reused");
    // Even a lost reply is recovered only for the key's holder.
    let marked = bound();
    marked.set("lost", "4").unwrap();
    assert_eq!(answer(&lua, marked, with_key(4, "thief-key")), "reused");
}
