//! Signing access tokens with an RSA key parsed once.
//!
//! The issuer signs thousands of tokens with the same key, so it keeps a parsed ring key
//! pair and a pre-encoded header and only does the RSA operation per token (a JWT library
//! that takes the key per call re-parses it every time).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde::Serialize;

use crate::claims::ACCESS_TOKEN_TYPE;
use crate::jwk::{KeyError, RsaPublicKey};
use crate::pem;

/// Why a key could not be loaded or a token not signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The file is not a PKCS#8 `PRIVATE KEY` PEM.
    #[error(transparent)]
    Pem(#[from] pem::PemError),
    /// ring refused the key (wrong type, below 2048 bits, inconsistent).
    #[error("unusable RSA private key: {0}")]
    Rejected(String),
    /// The public half is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The claims did not serialize or ring failed to sign.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// An RS256 signing key: parsed ring key pair, its public key and its `kid`.
pub struct RsaSigningKey {
    pair: RsaKeyPair,
    public: RsaPublicKey,
    kid: String,
    /// `base64url(header).`, the same for every token this key signs.
    header_prefix: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("RsaSigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

impl RsaSigningKey {
    /// Reads the text of a PKCS#8 PEM file (label `PRIVATE KEY`).
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, SigningError> {
        Self::from_pkcs8_der(&pem::decode(text, "PRIVATE KEY")?)
    }

    /// Reads a DER PKCS#8 RSA private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SigningError> {
        let pair =
            RsaKeyPair::from_pkcs8(der).map_err(|e| SigningError::Rejected(e.to_string()))?;
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let public = RsaPublicKey::from_components(&components.n, &components.e)?;
        let kid = public.thumbprint();
        let header = serde_json::to_vec(&Header {
            alg: "RS256",
            typ: ACCESS_TOKEN_TYPE,
            kid: &kid,
        })
        .map_err(|e| SigningError::Sign(e.to_string()))?;
        let header_prefix = format!("{}.", URL_SAFE_NO_PAD.encode(header));
        Ok(Self {
            pair,
            public,
            kid,
            header_prefix,
            rng: SystemRandom::new(),
        })
    }

    /// The RFC 7638 thumbprint that goes into every token's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, for the JWKS.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// Signs `claims` as a compact JWS with header `{"alg":"RS256","typ":"at+jwt","kid":…}`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SigningError> {
        let payload = serde_json::to_vec(claims).map_err(|e| SigningError::Sign(e.to_string()))?;
        let mut token = self.header_prefix.clone();
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|e| SigningError::Sign(e.to_string()))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}
