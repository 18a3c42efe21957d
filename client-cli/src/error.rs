//! Errors a person understands, each with a stable code (for `--json`) and an exit code.

use shared_claims::ErrorCode;

/// Exit code for a failure with no more specific code.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for a command line that cannot be run as given (a bad flag or URL).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the user must log in (again): no credentials, or the session expired
/// or was revoked.
pub const EXIT_LOGIN_REQUIRED: i32 = 3;
/// Exit code when a service cannot be reached at all.
pub const EXIT_UNREACHABLE: i32 = 4;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Nothing answers at the URL.
    #[error("cannot reach {service} at {url}: {reason}")]
    Unreachable {
        /// `auth-service` or `resource-service`.
        service: &'static str,
        /// The base URL tried.
        url: String,
        /// What the network said.
        reason: String,
    },
    /// No stored credentials.
    #[error("not logged in — run `client-cli login <username>`")]
    NotLoggedIn,
    /// The refresh token was refused: the session is over and the credentials are gone.
    #[error("session expired or revoked — run `client-cli login`")]
    SessionExpired,
    /// Wrong username or password.
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Registration with a name that exists.
    #[error("username {0:?} is already taken")]
    UsernameTaken(String),
    /// Too many attempts.
    #[error("too many attempts; try again in {0} s")]
    RateLimited(u64),
    /// A service is up but cannot serve (its database or Redis is down).
    #[error("{service} is temporarily unavailable: {description}")]
    Unavailable {
        /// Which service.
        service: &'static str,
        /// What it said.
        description: String,
    },
    /// Any other refusal, with the server's code and words.
    #[error("{description} ({status} {code})")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's error code (`unknown_error` when the answer carried no error
        /// body).
        code: ErrorCode,
        /// The server's description.
        description: String,
    },
    /// The credentials file is unsafe or unreadable.
    #[error("credentials file {path}: {problem}")]
    Credentials {
        /// Its path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The command line cannot be run as given: a URL without a scheme, a malformed
    /// argument.
    #[error("{0}")]
    Usage(String),
    /// The user's input is unusable.
    #[error("{0}")]
    Input(String),
    /// Something that should not happen.
    #[error("{0}")]
    Unexpected(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotLoggedIn | Self::SessionExpired => EXIT_LOGIN_REQUIRED,
            Self::Unreachable { .. } => EXIT_UNREACHABLE,
            Self::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            Self::Unreachable { .. } => "unreachable",
            Self::NotLoggedIn => "not_logged_in",
            Self::SessionExpired => "session_expired",
            Self::InvalidCredentials => "invalid_credentials",
            Self::UsernameTaken(_) => "username_taken",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable { .. } => "temporarily_unavailable",
            Self::Rejected { code, .. } => code.as_str(),
            Self::Credentials { .. } => "credentials_file",
            Self::Usage(_) => "invalid_usage",
            Self::Input(_) => "invalid_input",
            Self::Unexpected(_) => "unexpected",
        }
    }
}
