//! The route paths of both services, named once: the services mount their handlers on
//! them and clients build their URLs from them, so the two cannot drift apart.
//!
//! Each is a path below the service's base URL. [`SESSION`] and [`DOCS_ASSET`] are
//! actix-web route patterns, which OpenAPI paths write the same way (`{id}` is the session
//! id).

/// `POST`: create an account (auth-service).
pub const REGISTER: &str = "/auth/register";
/// `POST`: log in with a password; answers a token response (auth-service).
pub const LOGIN: &str = "/auth/login";
/// `POST`: rotate a refresh token (auth-service).
pub const REFRESH: &str = "/auth/refresh";
/// `POST`: end the session of a refresh token (auth-service).
pub const LOGOUT: &str = "/auth/logout";
/// `POST`, with an access token: end every session of its user (auth-service).
pub const LOGOUT_ALL: &str = "/auth/logout-all";
/// `GET`, with an access token: list its user's live sessions (auth-service).
pub const SESSIONS: &str = "/auth/sessions";
/// `DELETE`, with an access token: end one of its user's sessions (auth-service).
pub const SESSION: &str = "/auth/sessions/{id}";
/// `POST`: the OAuth 2.0 token endpoint, RFC 6749 §3.2 (auth-service).
pub const OAUTH_TOKEN: &str = "/oauth/token";
/// `POST`: the OAuth 2.0 revocation endpoint, RFC 7009 §2 (auth-service).
pub const OAUTH_REVOKE: &str = "/oauth/revoke";
/// `GET`: the verification keys as a JWK Set, RFC 7517 §5 (auth-service).
pub const JWKS: &str = "/.well-known/jwks.json";
/// `GET`: authorization-server metadata, RFC 8414 §3 (auth-service).
pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
/// `GET`: needs no token (resource-service).
pub const API_PUBLIC: &str = "/api/public";
/// `GET`, with an access token: who it says the caller is (resource-service).
pub const API_ME: &str = "/api/me";
/// `GET`, with an access token carrying the role `admin` (resource-service).
pub const API_ADMIN: &str = "/api/admin";
/// `GET`: the process answers (both services).
pub const HEALTHZ: &str = "/healthz";
/// `GET`: the service's dependencies answer (both services).
pub const READYZ: &str = "/readyz";
/// `GET`: Prometheus counters (both services, unless `metrics.bind` moves them).
pub const METRICS: &str = "/metrics";
/// `GET`: the service's OpenAPI 3.1 description (both services).
pub const OPENAPI: &str = "/openapi.json";
/// `GET`: the description for people, Swagger UI (both services).
pub const DOCS: &str = "/docs";
/// `GET`: a file of the Swagger UI page (both services).
pub const DOCS_ASSET: &str = "/docs/{asset}";
