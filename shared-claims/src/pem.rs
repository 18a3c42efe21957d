//! Just enough PEM (RFC 7468) to read and write the key files we use.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Why a PEM document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// No `-----BEGIN <label>-----` … `-----END <label>-----` block.
    #[error("no PEM block labelled {0:?} found")]
    MissingBlock(&'static str),
    /// The text between the markers is not base64.
    #[error("the PEM block labelled {0:?} is not valid base64")]
    BadBase64(&'static str),
}

/// Returns the DER bytes of the first block labelled `label`.
pub(crate) fn decode(text: &str, label: &'static str) -> Result<Vec<u8>, PemError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(PemError::MissingBlock(label))? + begin.len();
    let stop = text[start..]
        .find(&end)
        .ok_or(PemError::MissingBlock(label))?
        + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| PemError::BadBase64(label))
}

/// Wraps DER bytes in a PEM block with 64-character lines.
pub(crate) fn encode(der: &[u8], label: &str) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_then_decoding_returns_the_same_bytes() {
        let der: Vec<u8> = (0..=255).collect();
        let text = encode(&der, "PUBLIC KEY");
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(decode(&text, "PUBLIC KEY").unwrap(), der);
    }

    #[test]
    fn a_block_with_another_label_is_not_read() {
        let text = encode(b"abc", "PRIVATE KEY");
        assert!(matches!(
            decode(&text, "PUBLIC KEY"),
            Err(PemError::MissingBlock("PUBLIC KEY"))
        ));
    }
}
