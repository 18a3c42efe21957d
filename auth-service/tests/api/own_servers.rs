//! A `redis-server` and a PostgreSQL cluster of the test's own, on free loopback ports,
//! that the test may stop, kill and restart: the shared servers on 6379 and 5432 are
//! never touched. Both are torn down when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` with the append-only file on, so that sessions survive a restart as
/// they do under `docker-compose.yml`.
pub struct OwnRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.start_again().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it as `docker compose restart` does: SIGTERM, which makes Redis flush its
    /// append-only file and close every connection, then waits for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(status.success());
            child.wait().unwrap();
        }
    }

    /// Starts it again on the same port and data directory, and waits until it answers.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        self.wait_until_it_answers().await;
    }

    /// Stops and starts it; returns how long it was unreachable.
    pub async fn restart(&mut self) -> Duration {
        let started = Instant::now();
        self.stop();
        self.start_again().await;
        started.elapsed()
    }

    async fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A PostgreSQL cluster made with `initdb` in a temporary directory (trust
/// authentication, user `postgres`). `initdb` refuses to run as root, so as root the
/// cluster belongs to the `postgres` system user and every command runs through
/// `runuser`.
pub struct OwnPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres_user: bool,
}

impl OwnPostgres {
    /// Makes and starts a cluster, or says why it cannot (no PostgreSQL server binaries
    /// on this machine; running as root without a `postgres` user).
    pub fn start() -> Result<Self, String> {
        let bin = server_binaries()
            .ok_or("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")?;
        let as_postgres_user = is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres_user {
            let chown = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .map_err(|e| e.to_string())?;
            if !chown.success() {
                return Err("running as root and there is no `postgres` user".into());
            }
        }
        let cluster = Self {
            port: free_port(),
            dir,
            bin,
            as_postgres_user,
        };
        let data = cluster.data();
        let initdb = [
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ];
        cluster.command("initdb", &initdb)?;
        cluster.pg_ctl(&["start"])?;
        Ok(cluster)
    }

    /// A URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A fast restart (`pg_ctl restart -m fast`): every open connection is terminated.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast"]).unwrap();
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg_ctl(&self, action: &[&str]) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let (data, log) = (
            self.data(),
            self.dir.path().join("log").display().to_string(),
        );
        let mut args = vec!["-D", &data, "-w", "-l", &log, "-o", &options];
        args.extend_from_slice(action);
        self.command("pg_ctl", &args)
    }

    fn command(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed: {}",
                program.display(),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
