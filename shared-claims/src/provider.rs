//! An RS256-only `jsonwebtoken` crypto provider on `ring`.
//!
//! jsonwebtoken ≥ 10 ships no ring backend, and enabling none of its backends leaves a
//! provider that panics at the first use. We install this one instead, so the build holds
//! exactly one crypto library (ring) and the verifier physically cannot check any
//! algorithm but RS256, whatever a token's header claims.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self as sig, RsaKeyPair, RsaPublicKeyComponents};

use crate::jwk::RsaPublicKey;

/// The provider; `verifier_factory` and `signer_factory` accept RS256 and nothing else.
static RING_RS256: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key,
        rsa_pub_components_from_public_key,
        ec_pub_components_from_private_key: |_, _| Err(unsupported()),
        ed_pub_components_from_private_key: |_, _| Err(unsupported()),
        compute_digest,
    },
};

/// Installs the ring RS256 provider as jsonwebtoken's process default.
///
/// Safe to call any number of times. [`crate::Verifier`] and [`crate::RsaSigningKey`] do
/// not go through jsonwebtoken (they call ring directly, with keys parsed once); call this
/// before using `jsonwebtoken::encode` or `decode` yourself, so that they never run on the
/// panicking placeholder provider.
pub fn install_crypto_provider() {
    // An Err means a provider is already installed: ours, by an earlier call.
    let _ = RING_RS256.install_default();
}

fn unsupported() -> Error {
    Error::from(ErrorKind::UnsupportedAlgorithm)
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::RS256 {
        return Err(Error::from(ErrorKind::InvalidAlgorithm));
    }
    let pair = RsaKeyPair::from_der(key.as_bytes())
        .or_else(|_| RsaKeyPair::from_pkcs8(key.as_bytes()))
        .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
    Ok(Box::new(Rs256Signer(pair)))
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::RS256 {
        return Err(Error::from(ErrorKind::InvalidAlgorithm));
    }
    let key = match key.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => RsaPublicKey::from_components(n, e),
        DecodingKeyKind::SecretOrDer(der) => RsaPublicKey::from_spki_der(der),
    }
    .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
    Ok(Box::new(Rs256Verifier(key)))
}

/// Signs RS256 with a ring key pair; only reached through `jsonwebtoken::encode`, which
/// tools and tests use. The issuer signs with a pre-parsed [`crate::RsaSigningKey`].
struct Rs256Signer(RsaKeyPair);

impl signature::Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut out = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &sig::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                msg,
                &mut out,
            )
            .map_err(signature::Error::from_source)?;
        Ok(out)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

/// Verifies RSASSA-PKCS1-v1_5 with SHA-256 on keys of 2048 to 8192 bits.
struct Rs256Verifier(RsaPublicKey);

impl signature::Verifier<Vec<u8>> for Rs256Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        RsaPublicKeyComponents {
            n: self.0.modulus(),
            e: self.0.exponent(),
        }
        .verify(&sig::RSA_PKCS1_2048_8192_SHA256, msg, signature)
        .map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for Rs256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn rsa_pub_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = RsaKeyPair::from_pkcs8(der)
        .or_else(|_| RsaKeyPair::from_der(der))
        .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((public.n, public.e))
}

fn rsa_pub_components_from_public_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let key = RsaPublicKey::from_spki_der(der)
        .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
    Ok((key.modulus().to_vec(), key.exponent().to_vec()))
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}
