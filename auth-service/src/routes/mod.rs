//! HTTP handlers: thin adapters from requests to [`crate::flows`] and back.

mod auth;
mod health;
mod oauth;
mod sessions;
mod well_known;

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::tokens::TokenResponse;

pub use well_known::PublishedKeys;

/// Mounts every route of `DESIGN.md` § auth-service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/register", web::post().to(auth::register))
        .route("/auth/login", web::post().to(auth::login))
        .route("/auth/refresh", web::post().to(auth::refresh))
        .route("/auth/logout", web::post().to(auth::logout))
        .route("/auth/logout-all", web::post().to(sessions::logout_all))
        .route("/auth/sessions", web::get().to(sessions::list))
        .route("/auth/sessions/{id}", web::delete().to(sessions::delete))
        .route("/oauth/token", web::post().to(oauth::token))
        .route("/oauth/revoke", web::post().to(oauth::revoke))
        .route("/.well-known/jwks.json", web::get().to(well_known::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(well_known::metadata),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics));
}

/// Answers unknown paths and methods with the JSON error body.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// A token response with `Cache-Control: no-store` (RFC 6749 §5.1).
fn token_response(body: &TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body)
}

/// The peer's address, for rate limiting. Forwarding headers are not trusted: any client
/// could set them. IPv6 peers are counted per /64, the block one subscriber usually
/// holds, so rotating through its addresses gains nothing.
fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| address_bucket(a.ip()))
}

fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn user_agent(req: &HttpRequest) -> &str {
    req.headers()
        .get("User-Agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_64_and_ipv4_per_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(a), "2001:db8:1:2::/64");
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_ne!(address_bucket(a), address_bucket(c));
        assert_eq!(
            address_bucket("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7"
        );
        assert_eq!(address_bucket("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }
}
