//! The real `client-cli` binary, as a person would run it.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use crate::helpers::{PASSWORD, Stack};

fn cli(stack: &Stack) -> Command {
    in_stack(stack, Command::new(env!("CARGO_BIN_EXE_client-cli")))
}

/// `command` with the environment and pipes of a client-cli run against `stack`.
fn in_stack(stack: &Stack, mut command: Command) -> Command {
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
        stdout.contains("All 14 steps behaved as expected."),
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
    let password_line = format!("{}\n", *PASSWORD);

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

#[tokio::test]
async fn json_errors_use_the_servers_field_names() {
    let stack = Stack::start(|_| {}).await;

    let (code, out, _) = run(&stack, &["--json", "me"], "").await;
    let (usage_code, usage_out, _) = run(&stack, &["--json", "frobnicate"], "").await;

    assert_eq!(code, 3);
    let error: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(error["error"], "not_logged_in");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .starts_with("not logged in"),
        "{error}"
    );
    assert_eq!(error.as_object().unwrap().len(), 2, "{error}");
    assert_eq!(usage_code, 2);
    let usage: serde_json::Value = serde_json::from_str(&usage_out).unwrap();
    assert_eq!(usage["error"], "invalid_usage");
    assert!(
        usage["error_description"]
            .as_str()
            .unwrap()
            .contains("frobnicate"),
        "{usage}"
    );
}

#[tokio::test]
async fn a_url_without_a_scheme_is_a_usage_error_not_an_unreachable_service() {
    let stack = Stack::start(|_| {}).await;

    let (code, _, err) = run(&stack, &["--auth-url", "localhost:8080", "me"], "").await;
    let (json_code, out, _) = run(
        &stack,
        &[
            "--json",
            "--resource-url",
            "localhost:8081",
            "get",
            "/api/public",
        ],
        "",
    )
    .await;

    assert_eq!(code, 2, "{err}");
    assert!(err.contains("must start with http:// or https://"), "{err}");
    assert_eq!(json_code, 2);
    let error: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(error["error"], "invalid_usage");
}

#[tokio::test]
async fn get_of_a_public_path_works_without_credentials() {
    let stack = Stack::start(|_| {}).await;

    let (code, out, err) = run(&stack, &["get", "/api/public"], "").await;
    let (me_code, _, me_err) = run(&stack, &["get", "/api/me"], "").await;

    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("200 OK"), "{out}");
    assert_eq!(me_code, 3, "a protected path asks for a login: {me_err}");
    assert!(me_err.contains("not logged in"), "{me_err}");
}

/// Whether `strace` runs here (installed, and ptrace allowed).
fn strace_works() -> bool {
    std::process::Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn the_credentials_directory_is_synced_after_the_rename() {
    if !strace_works() {
        eprintln!("SKIPPED: needs a working strace to watch the system calls");
        return;
    }
    let stack = Stack::start(|_| {}).await;
    let username = format!("sync_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let password_line = format!("{}\n", *PASSWORD);
    let (code, out, err) = run(
        &stack,
        &["register", &username, "--password-stdin"],
        &password_line,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let trace = stack.dir.path().join("login.trace");

    let mut strace = in_stack(&stack, Command::new("strace"));
    let mut child = strace
        .args(["-f", "-y", "-e", "trace=rename,renameat,renameat2,fsync"])
        .arg("-o")
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_client-cli"))
        .args(["login", &username, "--password-stdin"])
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(password_line.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success(), "{output:?}");

    let trace = std::fs::read_to_string(trace).unwrap();
    let dir = std::fs::canonicalize(stack.credentials_path().parent().unwrap()).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let renamed = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains("credentials.json\""))
        .unwrap_or_else(|| panic!("no rename into place:\n{trace}"));
    let dir_synced = lines[renamed..]
        .iter()
        .any(|l| l.contains("fsync(") && l.contains(&format!("<{}>", dir.display())));
    assert!(
        dir_synced,
        "no fsync of {} after the rename:\n{trace}",
        dir.display()
    );
}
