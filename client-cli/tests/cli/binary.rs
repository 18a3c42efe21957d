//! The real `client-cli` binary, as a person would run it.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use crate::helpers::{PASSWORD, Stack};

fn cli(stack: &Stack) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_client-cli"));
    command
        .env("AUTH_URL", &stack.auth.address)
        .env("RESOURCE_URL", &stack.resource_url)
        .env("CLIENT_CREDENTIALS", stack.credentials_path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

async fn run(stack: &Stack, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = cli(stack).args(args).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_demo_runs_every_step_and_exits_0() {
    let stack = Stack::start(|_| {}).await;

    let (code, stdout, stderr) = run(&stack, &["demo"], "").await;

    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("All 10 steps behaved as expected."),
        "{stdout}"
    );
    assert!(stdout.contains("POST /auth/refresh"), "{stdout}");
    assert!(stdout.contains("invalid_grant"), "{stdout}");
    assert!(
        !stack.credentials_path().exists(),
        "the demo leaves stored credentials alone"
    );
}

#[tokio::test]
async fn a_short_session_from_register_to_logout() {
    let stack = Stack::start(|_| {}).await;
    let username = format!("bin_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let password_line = format!("{PASSWORD}\n");

    let (code, out, err) = run(
        &stack,
        &["register", &username, "--password-stdin"],
        &password_line,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(
        &stack,
        &["login", &username, "--password-stdin"],
        &password_line,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("Logged in as {username}")), "{out}");

    let (code, out, _) = run(&stack, &["--json", "me"], "").await;
    assert_eq!(code, 0);
    let me: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(me["username"], username.as_str());

    let (code, out, _) = run(&stack, &["token"], "").await;
    assert_eq!(code, 0);
    assert!(out.contains("expires in"), "{out}");
    assert!(out.contains("\"typ\":\"at+jwt\""), "{out}");

    let (code, out, _) = run(&stack, &["get", "/api/admin"], "").await;
    assert_eq!(code, 1, "403 is a failure");
    assert!(out.contains("403"), "{out}");

    let (code, out, _) = run(&stack, &["sessions"], "").await;
    assert_eq!(code, 0);
    assert!(out.contains("(* = this session)"), "{out}");

    let (code, _, _) = run(&stack, &["logout"], "").await;
    assert_eq!(code, 0);
    assert!(!stack.credentials_path().exists());

    let (code, _, err) = run(&stack, &["me"], "").await;
    assert_eq!(code, 3);
    assert!(err.contains("not logged in"), "{err}");
}

#[tokio::test]
async fn a_password_is_never_taken_from_arguments_and_errors_are_plain() {
    let stack = Stack::start(|_| {}).await;

    let (code, _, err) = run(&stack, &["login", "someone", "--password", "x"], "").await;
    assert_eq!(code, 2, "clap refuses the unknown flag: {err}");

    let (code, out, err) = run(
        &stack,
        &["login", "nobody_here", "--password-stdin"],
        "wrong password\n",
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "error: wrong username or password", "{out}");

    let (code, out, _) = run(
        &stack,
        &[
            "--json",
            "--auth-url",
            "http://127.0.0.1:9",
            "login",
            "x_y_z",
            "--password-stdin",
        ],
        "pw\n",
    )
    .await;
    assert_eq!(code, 4);
    let error: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(error["error"], "unreachable");
}
