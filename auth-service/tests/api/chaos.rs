//! A TCP proxy in front of the real Postgres or Redis that a test can cut and restore,
//! to watch the service lose and regain a dependency without touching the shared servers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

pub struct ChaosProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// Armed: the next script call (`EVALSHA`) reaches Redis, but from then on nothing
    /// Redis says reaches the service — a reply lost after the command ran.
    lose_replies_after_script: Arc<AtomicBool>,
    /// Set once a script call went through armed: replies are being dropped.
    losing: Arc<AtomicBool>,
    /// Armed: the next script call reaches Redis, then its connection is closed before
    /// the reply is forwarded — a connection that broke after the command ran.
    close_after_script: Arc<AtomicBool>,
    /// Set: connections stay open but nothing crosses them, either way (a network that
    /// drops packets); new connections are accepted and hang alike.
    black_hole: Arc<AtomicBool>,
}

impl ChaosProxy {
    /// Starts forwarding a fresh local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let mut proxy = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            upstream,
            tasks: Arc::default(),
            lose_replies_after_script: Arc::default(),
            losing: Arc::default(),
            close_after_script: Arc::default(),
            black_hole: Arc::default(),
        };
        proxy.listen().await;
        proxy
    }

    async fn listen(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(128).unwrap();
        self.addr = listener.local_addr().unwrap();
        let upstream = self.upstream;
        let tasks = Arc::clone(&self.tasks);
        let faults = Faults {
            lose_replies: Arc::clone(&self.lose_replies_after_script),
            losing: Arc::clone(&self.losing),
            close_after_script: Arc::clone(&self.close_after_script),
            black_hole: Arc::clone(&self.black_hole),
        };
        let acceptor = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let faults = faults.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(upstream).await {
                        forward(inbound, outbound, faults).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(acceptor);
    }

    /// The dependency "goes down": the port refuses connections and open ones are cut.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The next script call runs in Redis but its reply, and every reply after it, is
    /// lost until [`Self::deliver_replies`].
    pub fn lose_replies_after_next_script(&self) {
        self.lose_replies_after_script.store(true, Ordering::SeqCst);
    }

    /// The next script call runs in Redis, then its connection is closed without the
    /// reply: the service sees a closed connection after the script ran.
    pub fn close_after_next_script(&self) {
        self.close_after_script.store(true, Ordering::SeqCst);
    }

    /// Replies flow again (connections that lost a reply stay silent: the service drops
    /// them after its timeout, as it would a real broken connection).
    pub fn deliver_replies(&self) {
        self.lose_replies_after_script
            .store(false, Ordering::SeqCst);
        self.losing.store(false, Ordering::SeqCst);
    }

    /// The network to the dependency starts dropping everything, without closing anything.
    pub fn black_hole(&self) {
        self.black_hole.store(true, Ordering::SeqCst);
    }

    /// Bytes cross again (what was dropped stays lost).
    pub fn end_black_hole(&self) {
        self.black_hole.store(false, Ordering::SeqCst);
    }

    /// The dependency "comes back" on the same port.
    pub async fn restore(&mut self) {
        self.listen().await;
    }
}

/// The switches a test flips, shared by every connection of a proxy.
#[derive(Clone)]
struct Faults {
    lose_replies: Arc<AtomicBool>,
    losing: Arc<AtomicBool>,
    close_after_script: Arc<AtomicBool>,
    black_hole: Arc<AtomicBool>,
}

/// Copies both ways; while armed, a chunk carrying `EVALSHA` switches the reply direction
/// to dropping everything, or closes the connection once Redis has run it.
async fn forward(inbound: TcpStream, outbound: TcpStream, faults: Faults) {
    let (mut from_client, mut to_client) = inbound.into_split();
    let (mut from_server, mut to_server) = outbound.into_split();
    let silenced = Arc::new(AtomicBool::new(false));
    let dropping = Arc::clone(&faults.black_hole);
    let requests = {
        let silenced = Arc::clone(&silenced);
        async move {
            let mut buffer = vec![0u8; 16 * 1024];
            while let Ok(n) = from_client.read(&mut buffer).await {
                if n == 0 {
                    return;
                }
                if faults.black_hole.load(Ordering::SeqCst) {
                    continue;
                }
                let chunk = &buffer[..n];
                let script = chunk.windows(7).any(|w| w.eq_ignore_ascii_case(b"EVALSHA"));
                let close = script && faults.close_after_script.swap(false, Ordering::SeqCst);
                if close || (script && faults.lose_replies.load(Ordering::SeqCst)) {
                    silenced.store(true, Ordering::SeqCst);
                    faults.losing.store(true, Ordering::SeqCst);
                }
                if to_server.write_all(chunk).await.is_err() {
                    return;
                }
                if close {
                    // Let Redis run it, then end the connection (both directions).
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    return;
                }
            }
        }
    };
    let replies = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n) = from_server.read(&mut buffer).await {
            if n == 0 {
                return;
            }
            if silenced.load(Ordering::SeqCst) || dropping.load(Ordering::SeqCst) {
                continue;
            }
            if to_client.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either side ending ends the connection: the client sees it close.
    tokio::select! {
        () = requests => {}
        () = replies => {}
    }
}
