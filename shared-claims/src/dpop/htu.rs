//! The `htu` comparison (RFC 9449 §4.3 check 9): both URLs lose query and fragment and
//! are brought to one form by RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based
//! normalisation, as the RFC recommends, so that `HTTPS://Api.Example:443/a/./b` and
//! `https://api.example/a/b` match while any real difference in path or origin does not.

use super::DpopConfigError;

/// The URL clients use to reach a service, when it differs from what the service can see
/// (behind a TLS-terminating proxy, on another host name or under a path prefix). The
/// expected `htu` of a request is this URL followed by the request's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Accepts an absolute `http://` or `https://` URL without query or fragment; a
    /// trailing `/` is dropped so that joining a path never doubles it.
    pub fn parse(url: &str) -> Result<Self, DpopConfigError> {
        let url = url.trim();
        if url.contains(['?', '#']) || normalize(url).is_none() {
            return Err(DpopConfigError::BadPublicUrl);
        }
        Ok(Self(url.trim_end_matches('/').to_owned()))
    }

    /// The URL of `path` (which starts with `/`) on this service.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

/// The comparable form of an absolute `http(s)` URL, or `None` if it is not one.
pub(super) fn normalize(url: &str) -> Option<String> {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let url = url.split_once('?').map_or(url, |(before, _)| before);
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        // Credentials in a URL have no place in an htu.
        return None;
    }
    // An IPv6 literal holds colons; the port separator comes after its `]`.
    let port_at = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None => authority.rfind(':'),
    };
    let (host, port) = match port_at {
        Some(i) => (&authority[..i], &authority[i + 1..]),
        None => (authority, ""),
    };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // RFC 3986 §6.2.3: an empty or default port is no port; leading zeros do not count.
    let port = match port {
        "" => String::new(),
        digits => match digits.parse::<u16>().ok()? {
            n if n == default_port => String::new(),
            n => format!(":{n}"),
        },
    };
    let path = if path.is_empty() { "/" } else { path };
    let path = remove_dot_segments(&normalize_percent_encoding(path)?);
    Some(format!(
        "{scheme}://{}{port}{path}",
        host.to_ascii_lowercase()
    ))
}

/// RFC 3986 §6.2.2.1–2: upper-case hex digits, and decode octets that are unreserved
/// characters. `None` for a `%` not followed by two hex digits.
fn normalize_percent_encoding(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let hex = rest
            .get(i + 1..i + 3)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let byte = u8::from_str_radix(hex, 16).ok()?;
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// RFC 3986 §5.2.4 for an absolute path: `.` segments vanish, `..` removes the previous
/// segment; a trailing `.` or `..` leaves a trailing `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => {
                out.push(other);
                continue;
            }
        }
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_per_rfc3986() {
        assert_eq!(normalize("http://Host:80").as_deref(), Some("http://host/"));
        assert_eq!(
            normalize("http://[::1]:8081/a").as_deref(),
            Some("http://[::1]:8081/a")
        );
        assert_eq!(
            normalize("http://h:08081/a/b/..").as_deref(),
            Some("http://h:8081/a/")
        );
        assert_eq!(
            normalize("http://h/%7e%2f").as_deref(),
            Some("http://h/~%2F")
        );
        for bad in [
            "ftp://h/",
            "h/a",
            "http://u:p@h/",
            "http:///a",
            "http://h:x/",
            "http://h/%zz",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn public_urls_must_be_absolute_http_without_query() {
        let url = PublicUrl::parse("https://api.example/prefix/").unwrap();
        assert_eq!(url.join("/api/me"), "https://api.example/prefix/api/me");
        for bad in [
            "",
            "api.example",
            "ftp://x/",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            assert_eq!(
                PublicUrl::parse(bad),
                Err(DpopConfigError::BadPublicUrl),
                "{bad}"
            );
        }
    }
}
