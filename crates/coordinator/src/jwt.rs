//! HS256 JWT verification, as the engine API does it: `Authorization: Bearer <token>`, signed with
//! a 32-byte secret, `iat` within a minute of now.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

/// How far `iat` may be from now.
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// No `Authorization: Bearer` header.
    #[error("missing Authorization: Bearer <jwt> header")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Not HS256.
    #[error("unsupported algorithm {0:?}; use HS256")]
    Algorithm(String),
    /// The signature does not match the secret.
    #[error("bad signature")]
    Signature,
    /// `iat` missing or too far from now.
    #[error("iat {0} is more than 60 s from now (or missing)")]
    Expired(u64),
}

/// Checks an `Authorization` header value against `secret`.
pub fn verify(header: Option<&str>, secret: &[u8; 32]) -> Result<(), JwtError> {
    let token = header.and_then(|value| value.strip_prefix("Bearer ")).ok_or(JwtError::Missing)?.trim();
    let mut parts = token.split('.');
    let (Some(head), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected header.claims.signature".into()));
    };
    let decode =
        |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|err| JwtError::Malformed(err.to_string()));
    let header: serde_json::Value =
        serde_json::from_slice(&decode(head)?).map_err(|err| JwtError::Malformed(err.to_string()))?;
    let alg = header.get("alg").and_then(|alg| alg.as_str()).unwrap_or_default();
    if alg != "HS256" {
        return Err(JwtError::Algorithm(alg.to_owned()));
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|err| JwtError::Malformed(err.to_string()))?;
    mac.update(head.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    mac.verify_slice(&decode(signature)?).map_err(|_| JwtError::Signature)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&decode(claims)?).map_err(|err| JwtError::Malformed(err.to_string()))?;
    let iat = claims.get("iat").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if iat.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
        return Err(JwtError::Expired(iat));
    }
    Ok(())
}

/// A token for `secret` issued now (what `ctl` sends).
pub fn issue(secret: &[u8; 32]) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"iat":{now}}}"#));
    let signed = format!("{head}.{claims}");
    let signature = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signed.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signed}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_issued_with_the_secret_verifies_and_others_do_not() {
        let secret = [7u8; 32];
        let token = issue(&secret);
        assert_eq!(verify(Some(&format!("Bearer {token}")), &secret), Ok(()));
        assert_eq!(verify(Some(&format!("Bearer {token}")), &[8u8; 32]), Err(JwtError::Signature));
        assert_eq!(verify(None, &secret), Err(JwtError::Missing));
        assert!(matches!(verify(Some("Bearer a.b"), &secret), Err(JwtError::Malformed(_))));
    }
}
