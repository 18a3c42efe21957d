//! `client-cli demo`: the whole flow against running services, narrated step by step,
//! each step with its HTTP exchange in brief: bearer tokens, rotation and reuse detection
//! first, then a DPoP-bound session that a stolen refresh token cannot use or end. It uses a fresh random user and keeps its
//! tokens in memory: the user's stored credentials are not touched.

use std::io::Write;

use secrecy::SecretString;
use serde::{Deserialize as _, Serialize};
use serde_json::{Value, json};
use shared_claims::protocol::{
    LoginRequest, RefreshTokenRequest, RegisterRequest, TokenResponse, TokenType, paths,
};
use shared_claims::{ErrorBody, ErrorCode};

use crate::client::Service;
use crate::dpop::DpopKey;
use crate::error::CliError;
use crate::jwt;

/// One narrated step's outcome.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// What the step does.
    pub title: String,
    /// The exchanges, e.g. `POST /auth/login → 200`.
    pub exchanges: Vec<String>,
    /// What was observed.
    pub detail: String,
    /// Whether it behaved as expected.
    pub ok: bool,
}

/// The demo's outcome; exit 0 only if every step is ok.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    /// Every step, in order.
    pub steps: Vec<StepReport>,
}

impl DemoReport {
    /// Whether every step behaved as expected.
    pub fn all_ok(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    /// The report as JSON, for `--json`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.all_ok(),
            "steps": self.steps.iter().enumerate().map(|(i, s)| json!({
                "step": i + 1,
                "title": s.title,
                "exchanges": s.exchanges,
                "detail": s.detail,
                "ok": s.ok,
            })).collect::<Vec<_>>(),
        })
    }
}

struct Demo<'a> {
    http: reqwest::Client,
    auth_url: String,
    resource_url: String,
    out: &'a mut dyn Write,
    narrate: bool,
    report: DemoReport,
    current: Option<StepReport>,
}

/// A request without a body.
const NO_BODY: Option<&()> = None;

/// The answer as a token response, if it is one.
fn tokens(body: &Value) -> Option<TokenResponse> {
    TokenResponse::deserialize(body).ok()
}

/// The answer's error code, if it is an error body.
fn error_code(body: &Value) -> Option<ErrorCode> {
    ErrorBody::deserialize(body).ok().map(|body| body.error)
}

/// `…` and the last six characters: enough to tell tokens apart, too little to use.
fn fingerprint(token: &str) -> String {
    let tail: String = token
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

impl Demo<'_> {
    fn begin(&mut self, title: &str) {
        self.finish_step();
        if self.narrate {
            let _ = writeln!(self.out, "\n{}. {title}", self.report.steps.len() + 1);
        }
        self.current = Some(StepReport {
            title: title.to_owned(),
            exchanges: Vec::new(),
            detail: String::new(),
            ok: false,
        });
    }

    fn exchange(&mut self, line: String) {
        if self.narrate {
            let _ = writeln!(self.out, "   {line}");
        }
        if let Some(step) = &mut self.current {
            step.exchanges.push(line);
        }
    }

    fn outcome(&mut self, ok: bool, detail: String) {
        if self.narrate {
            let mark = if ok { "✓" } else { "✗ unexpected:" };
            let _ = writeln!(self.out, "   {mark} {detail}");
        }
        if let Some(step) = &mut self.current {
            step.ok = ok;
            step.detail = detail;
        }
    }

    fn finish_step(&mut self) {
        if let Some(step) = self.current.take() {
            self.report.steps.push(step);
        }
    }

    /// One exchange. With `key`, the request carries a DPoP proof of it and the access
    /// token (if any) goes with the `DPoP` scheme; without, as `Bearer`.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &mut self,
        service: Service,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
        access_token: Option<&str>,
        key: Option<&DpopKey>,
        shown: &str,
    ) -> Result<(u16, Value), CliError> {
        let base = match service {
            Service::Auth => &self.auth_url,
            Service::Resource => &self.resource_url,
        };
        let url = format!("{base}{path}");
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        match (access_token, key) {
            (Some(token), Some(key)) => {
                request = request
                    .header("Authorization", format!("DPoP {token}"))
                    .header("DPoP", key.proof(method.as_str(), &url, Some(token))?);
            }
            (Some(token), None) => request = request.bearer_auth(token),
            (None, Some(key)) => {
                request = request.header("DPoP", key.proof(method.as_str(), &url, None)?);
            }
            (None, None) => {}
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            service: match service {
                Service::Auth => "auth-service",
                Service::Resource => "resource-service",
            },
            url: base.clone(),
            reason: if e.is_connect() {
                "connection refused (is it running?)".into()
            } else {
                e.to_string()
            },
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = error_code(&json)
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        self.exchange(format!(
            "{method} {path}{shown} → {} {}{code}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ));
        Ok((status.as_u16(), json))
    }

    async fn refresh(&mut self, token: &str) -> Result<(u16, Value), CliError> {
        self.refresh_with(token, None).await
    }

    /// A refresh with a DPoP proof of `key`, if given.
    async fn refresh_with(
        &mut self,
        token: &str,
        key: Option<&DpopKey>,
    ) -> Result<(u16, Value), CliError> {
        let proof = if key.is_some() { " + DPoP proof" } else { "" };
        let shown = format!(" {{refresh_token: {}}}{proof}", fingerprint(token));
        let body = RefreshTokenRequest {
            refresh_token: token.to_owned(),
        };
        self.send(
            Service::Auth,
            reqwest::Method::POST,
            paths::REFRESH,
            Some(&body),
            None,
            key,
            &shown,
        )
        .await
    }
}

/// Runs the demo, narrating to `out` unless `narrate` is false (JSON output).
pub async fn run(
    auth_url: &str,
    resource_url: &str,
    out: &mut dyn Write,
    narrate: bool,
) -> Result<DemoReport, CliError> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .user_agent(concat!("client-cli-demo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CliError::Unexpected(e.to_string()))?;
    let mut demo = Demo {
        http,
        auth_url: auth_url.trim_end_matches('/').to_owned(),
        resource_url: resource_url.trim_end_matches('/').to_owned(),
        out,
        narrate,
        report: DemoReport::default(),
        current: None,
    };
    if narrate {
        let _ = writeln!(
            demo.out,
            "client-cli demo: the whole flow against {} and {}",
            demo.auth_url, demo.resource_url
        );
    }
    let result = script(&mut demo).await;
    demo.finish_step();
    result?;
    if narrate {
        let total = demo.report.steps.len();
        let good = demo.report.steps.iter().filter(|s| s.ok).count();
        let _ = if demo.report.all_ok() {
            writeln!(demo.out, "\nAll {total} steps behaved as expected.")
        } else {
            writeln!(demo.out, "\n{good} of {total} steps behaved as expected.")
        };
    }
    Ok(demo.report)
}

async fn script(demo: &mut Demo<'_>) -> Result<(), CliError> {
    use reqwest::Method;
    let username = format!("demo_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let password = SecretString::from(format!("demo-{}", uuid::Uuid::new_v4().simple()));
    let registration = RegisterRequest {
        username: username.clone(),
        password: password.clone(),
    };
    let credentials = LoginRequest {
        username: username.clone(),
        password,
        client_id: None,
        scope: None,
    };

    demo.begin("Register a new user");
    let shown = format!(" {{username: {username}, password: …}}");
    let (status, body) = demo
        .send(
            Service::Auth,
            Method::POST,
            paths::REGISTER,
            Some(&registration),
            None,
            None,
            &shown,
        )
        .await?;
    demo.outcome(
        status == 201,
        format!("user {username} created with roles {}", body["roles"]),
    );

    demo.begin("Log in");
    let (status, login) = demo
        .send(
            Service::Auth,
            Method::POST,
            paths::LOGIN,
            Some(&credentials),
            None,
            None,
            &shown,
        )
        .await?;
    let login = tokens(&login);
    let access = login
        .as_ref()
        .map(|t| t.access_token.clone())
        .unwrap_or_default();
    let first_refresh = login
        .as_ref()
        .map(|t| t.refresh_token.clone())
        .unwrap_or_default();
    let decoded = jwt::decode(&access);
    let kid = decoded
        .as_ref()
        .and_then(|d| d.header["kid"].as_str().map(str::to_owned))
        .unwrap_or_default();
    demo.outcome(
        status == 200 && decoded.is_some() && !first_refresh.is_empty(),
        format!(
            "an RS256 access token (kid {}…) and an opaque refresh token ({})",
            kid.chars().take(8).collect::<String>(),
            fingerprint(&first_refresh)
        ),
    );

    demo.begin("Call the protected API with the access token");
    let (status, me) = demo
        .send(
            Service::Resource,
            Method::GET,
            paths::API_ME,
            NO_BODY,
            Some(&access),
            None,
            " (Authorization: Bearer …)",
        )
        .await?;
    demo.outcome(
        status == 200 && me["username"] == username.as_str(),
        format!(
            "the resource-service says you are {} with roles {}",
            me["username"], me["roles"]
        ),
    );

    demo.begin("Look inside the access token (decoded, not verified)");
    let claims = decoded.map(|d| d.claims).unwrap_or_default();
    let (exp, iat) = (
        claims["exp"].as_i64().unwrap_or(0),
        claims["iat"].as_i64().unwrap_or(0),
    );
    let expires_in = login.as_ref().map_or(-1, |t| t.expires_in);
    demo.outcome(
        exp - iat == expires_in && exp > jwt::now(),
        format!(
            "{}; exp − iat = {} s = expires_in; sid {}",
            jwt::expiry_phrase(exp, jwt::now()),
            exp - iat,
            claims["sid"]
        ),
    );

    demo.begin("Refresh: the refresh token rotates");
    let (status, refreshed) = demo.refresh(&first_refresh).await?;
    let second_refresh = tokens(&refreshed)
        .map(|t| t.refresh_token)
        .unwrap_or_default();
    demo.outcome(
        status == 200 && !second_refresh.is_empty() && second_refresh != first_refresh,
        format!(
            "{} → {}",
            fingerprint(&first_refresh),
            fingerprint(&second_refresh)
        ),
    );

    demo.begin("Refresh again");
    let (status, refreshed) = demo.refresh(&second_refresh).await?;
    let third_refresh = tokens(&refreshed)
        .map(|t| t.refresh_token)
        .unwrap_or_default();
    demo.outcome(
        status == 200 && !third_refresh.is_empty() && third_refresh != second_refresh,
        format!(
            "{} → {}",
            fingerprint(&second_refresh),
            fingerprint(&third_refresh)
        ),
    );

    demo.begin("Replay the first refresh token (two rotations old), as a thief would");
    let (status, replay) = demo.refresh(&first_refresh).await?;
    demo.outcome(
        status == 401 && error_code(&replay) == Some(ErrorCode::InvalidGrant),
        format!("reuse detected: {}", replay["error_description"]),
    );

    demo.begin("Even the latest refresh token is dead: the whole session was revoked");
    let (status, _) = demo.refresh(&third_refresh).await?;
    demo.outcome(
        status == 401,
        "the thief and the user both have to log in again".into(),
    );

    demo.begin("Log in again, with DPoP: the new session is bound to a key only this client holds");
    let (key, _) = DpopKey::generate()?;
    let thief_key = DpopKey::generate()?.0;
    let (status, bound) = demo
        .send(
            Service::Auth,
            Method::POST,
            paths::LOGIN,
            Some(&credentials),
            None,
            Some(&key),
            &format!("{shown} + DPoP proof"),
        )
        .await?;
    let bound = tokens(&bound);
    let bound_access = bound
        .as_ref()
        .map(|t| t.access_token.clone())
        .unwrap_or_default();
    let bound_refresh = bound
        .as_ref()
        .map(|t| t.refresh_token.clone())
        .unwrap_or_default();
    let jkt = jwt::decode(&bound_access)
        .and_then(|d| d.claims["cnf"]["jkt"].as_str().map(str::to_owned))
        .unwrap_or_default();
    demo.outcome(
        status == 200 && bound.is_some_and(|t| t.token_type == TokenType::Dpop) && !jkt.is_empty(),
        format!(
            "token_type DPoP; the access token carries cnf.jkt {}…",
            jkt.chars().take(8).collect::<String>()
        ),
    );

    demo.begin("Call the API with the bound token and a fresh proof");
    let (status, _) = demo
        .send(
            Service::Resource,
            Method::GET,
            paths::API_ME,
            NO_BODY,
            Some(&bound_access),
            Some(&key),
            " (Authorization: DPoP … + DPoP proof)",
        )
        .await?;
    demo.outcome(
        status == 200,
        "the resource-service checked the proof against cnf.jkt".into(),
    );

    demo.begin("A thief copies the refresh token, but not the key, and tries it");
    let (status, stolen) = demo.refresh_with(&bound_refresh, None).await?;
    demo.outcome(
        status == 400 && error_code(&stolen) == Some(ErrorCode::InvalidDpopProof),
        format!("refused: {}", stolen["error_description"]),
    );

    demo.begin("The thief signs a proof with a key of their own");
    let (status, forged) = demo.refresh_with(&bound_refresh, Some(&thief_key)).await?;
    demo.outcome(
        status == 401 && error_code(&forged) == Some(ErrorCode::InvalidGrant),
        format!("refused: {}", forged["error_description"]),
    );

    demo.begin("The owner refreshes with its key: the thief could not end the session");
    let (status, kept) = demo.refresh_with(&bound_refresh, Some(&key)).await?;
    let new_refresh = tokens(&kept).map(|t| t.refresh_token).unwrap_or_default();
    demo.outcome(
        status == 200 && !new_refresh.is_empty(),
        format!(
            "{} → {}",
            fingerprint(&bound_refresh),
            fingerprint(&new_refresh)
        ),
    );

    demo.begin("Log out (a bound session ends only with a proof of its key)");
    let (status, _) = demo
        .send(
            Service::Auth,
            Method::POST,
            paths::LOGOUT,
            Some(&RefreshTokenRequest {
                refresh_token: new_refresh.clone(),
            }),
            None,
            Some(&key),
            &format!(
                " {{refresh_token: {}}} + DPoP proof",
                fingerprint(&new_refresh)
            ),
        )
        .await?;
    let (after, _) = demo.refresh_with(&new_refresh, Some(&key)).await?;
    demo.outcome(
        status == 204 && after == 401,
        "the session is over; its refresh token no longer works".into(),
    );
    Ok(())
}
