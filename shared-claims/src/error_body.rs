//! The JSON error body every endpoint of both services returns (`DESIGN.md` § HTTP surface).

use serde::{Deserialize, Serialize};

/// `{"error": "<code>", "error_description": "<text>"}`: a machine-readable code from
/// RFC 6749 / RFC 6750 where one exists, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code such as `invalid_request` or `invalid_token`.
    pub error: String,
    /// What went wrong, in words; never echoes secrets or tokens.
    pub error_description: String,
}

impl ErrorBody {
    /// Builds a body from a code and a description.
    pub fn new(error: impl Into<String>, error_description: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            error_description: error_description.into(),
        }
    }
}
