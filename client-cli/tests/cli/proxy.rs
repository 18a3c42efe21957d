//! A tiny HTTP/1.1 proxy in front of the auth-service that spoils the first answers to
//! `POST /auth/refresh` the way a network or a restarting dependency would, and records
//! which refresh token each refresh request carried. One request per connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What happens to a spoiled refresh.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer 503 `temporarily_unavailable` with this `Retry-After`, without forwarding.
    Unavailable { retry_after_secs: u64 },
    /// Forward (the auth-service rotates), then close the connection without an answer.
    LoseReply,
}

pub struct Proxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The refresh token of every `POST /auth/refresh`, in order.
    pub refresh_tokens: Arc<Mutex<Vec<String>>>,
    /// The `refresh_token` of every successful answer the auth-service gave, delivered
    /// or not.
    pub issued: Arc<Mutex<Vec<String>>>,
}

struct Shared {
    upstream: String,
    fault: Fault,
    faults_left: AtomicUsize,
    refresh_tokens: Arc<Mutex<Vec<String>>>,
    issued: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
}

impl Proxy {
    /// Spoils the first `times` refreshes with `fault`, forwards everything else.
    pub async fn start(upstream: &str, fault: Fault, times: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            fault,
            faults_left: AtomicUsize::new(times),
            refresh_tokens: Arc::default(),
            issued: Arc::default(),
            http: reqwest::Client::new(),
        });
        let proxy = Self {
            url,
            refresh_tokens: shared.refresh_tokens.clone(),
            issued: shared.issued.clone(),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(shared.clone(), stream));
            }
        });
        proxy
    }

    pub fn refresh_tokens(&self) -> Vec<String> {
        self.refresh_tokens.lock().unwrap().clone()
    }

    pub fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

async fn handle(shared: Arc<Shared>, stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await.unwrap();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    let mut stream = reader.into_inner();

    let is_refresh = method == "POST" && path == "/auth/refresh";
    let spoil = is_refresh
        && shared
            .faults_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if is_refresh {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let token = json["refresh_token"].as_str().unwrap().to_owned();
        shared.refresh_tokens.lock().unwrap().push(token);
    }
    if spoil && let Fault::Unavailable { retry_after_secs } = shared.fault {
        let body = r#"{"error":"temporarily_unavailable","error_description":"the session store is restarting"}"#;
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: {retry_after_secs}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        return;
    }

    let mut forward = shared.http.request(
        method.parse().unwrap(),
        format!("{}{path}", shared.upstream),
    );
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "connection" | "content-length") {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.body(body).send().await.unwrap();
    let status = answer.status();
    let answer_headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "connection" | "content-length" | "transfer-encoding"
            )
        })
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let answer_body = answer.bytes().await.unwrap();
    if is_refresh && status == 200 {
        let json: serde_json::Value = serde_json::from_slice(&answer_body).unwrap();
        let token = json["refresh_token"].as_str().unwrap().to_owned();
        shared.issued.lock().unwrap().push(token);
    }
    if spoil {
        // Fault::LoseReply: the rotation happened, its answer never arrives.
        return;
    }
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in answer_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        answer_body.len()
    ));
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&answer_body).await.unwrap();
}
