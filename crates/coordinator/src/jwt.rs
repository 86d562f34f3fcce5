//! HS256 JWTs as the Engine API uses them: `Authorization: Bearer <token>`, signed with a 32-byte
//! secret kept as 64 hex digits in a file, `iat` within a minute of now, `exp` checked when present.
//!
//! Signing and verifying are `jsonwebtoken`'s (the crate alloy's `JwtSecret` is built on); this
//! module only adds the Engine API's rules on top and names what to fix in every refusal:
//!
//! | token                                   | refusal                       |
//! |-----------------------------------------|-------------------------------|
//! | no `Authorization: Bearer` header       | [`JwtError::Missing`]         |
//! | not three base64url parts of JSON       | [`JwtError::Malformed`]       |
//! | `alg` other than HS256                  | [`JwtError::Algorithm`]       |
//! | signed with another secret              | [`JwtError::Signature`]       |
//! | no `iat`                                | [`JwtError::MissingIat`]      |
//! | `iat` more than 60 s from now, either way | [`JwtError::IatOutOfWindow`] |
//! | `exp` in the past                       | [`JwtError::Expired`]         |

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far `iat` may be from now, either way (the Engine API's window).
pub const MAX_IAT_SKEW_SECS: u64 = 60;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// No `Authorization: Bearer` header.
    #[error("missing Authorization: Bearer <jwt> header")]
    Missing,
    /// Not three base64url parts of JSON with the claims' types.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Signed with an algorithm other than HS256.
    #[error("unsupported algorithm {0}; use HS256")]
    Algorithm(String),
    /// The signature does not match the secret.
    #[error("bad signature: the token was not signed with this coordinator's rpc.jwt_secret_file")]
    Signature,
    /// No `iat` claim.
    #[error("no iat claim; the token must carry the time it was issued (seconds since 1970)")]
    MissingIat,
    /// `iat` too far from now: a replayed token or a wrong clock on one side.
    #[error(
        "iat {iat} is {} s from this coordinator's clock ({now}); tokens must be issued within \
         {MAX_IAT_SKEW_SECS} s of now (check both clocks)",
        iat.abs_diff(*now)
    )]
    IatOutOfWindow {
        /// The token's `iat`.
        iat: u64,
        /// The coordinator's clock when it checked.
        now: u64,
    },
    /// `exp` has passed.
    #[error("exp {exp} has passed (now {now}); issue a new token")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The coordinator's clock when it checked.
        now: u64,
    },
}

/// Why a secret file's text is not a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not 64 characters once trimmed and stripped of `0x`.
    #[error("expected 64 hex digits (32 bytes), found {0} characters")]
    Length(usize),
    /// 64 characters, but not all hex digits.
    #[error("not hex: {0}")]
    NotHex(String),
}

/// The claims the Engine API defines: `iat` required, `exp` optional.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// Optional while decoding, so a token without it gets its own refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
}

/// Decodes a secret file's text: 64 hex digits, optionally `0x`-prefixed and surrounded by
/// whitespace, the format op-node and op-geth use for their Engine API secret.
pub fn parse_secret(text: &str) -> Result<[u8; 32], SecretError> {
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    if hex.len() != 64 {
        return Err(SecretError::Length(hex.len()));
    }
    alloy_primitives::hex::decode_to_array(hex).map_err(|err| SecretError::NotHex(err.to_string()))
}

/// Checks an `Authorization` header value against `secret` at the system clock.
pub fn verify(header: Option<&str>, secret: &[u8; 32]) -> Result<(), JwtError> {
    verify_at(header, secret, unix_now())
}

/// Checks an `Authorization` header value against `secret` as if the clock read `now` (seconds
/// since 1970), so the `iat` window is tested without waiting.
pub fn verify_at(header: Option<&str>, secret: &[u8; 32], now: u64) -> Result<(), JwtError> {
    let token = header.and_then(|value| value.strip_prefix("Bearer ")).ok_or(JwtError::Missing)?.trim();
    let mut validation = Validation::new(Algorithm::HS256);
    // `iat` and `exp` are checked below against `now`, which jsonwebtoken cannot be given.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = match jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation) {
        Ok(data) => data.claims,
        Err(err) => return Err(refusal(token, err.kind())),
    };
    let iat = claims.iat.ok_or(JwtError::MissingIat)?;
    if iat.abs_diff(now) > MAX_IAT_SKEW_SECS {
        return Err(JwtError::IatOutOfWindow { iat, now });
    }
    match claims.exp {
        Some(exp) if exp < now => Err(JwtError::Expired { exp, now }),
        _ => Ok(()),
    }
}

/// A refusal for jsonwebtoken's error, naming the algorithm when that is what is wrong.
fn refusal(token: &str, kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::Signature,
        ErrorKind::InvalidAlgorithm => {
            let alg = jsonwebtoken::decode_header(token).map(|header| format!("{:?}", header.alg));
            JwtError::Algorithm(alg.unwrap_or_else(|_| "unknown".to_owned()))
        }
        ErrorKind::InvalidToken => JwtError::Malformed("expected header.claims.signature".to_owned()),
        // Header JSON with an `alg` jsonwebtoken does not know (`none`, say) lands here too.
        other => JwtError::Malformed(jsonwebtoken::errors::Error::from(other.clone()).to_string()),
    }
}

/// A token for `secret` issued now (what `ctl` and a replica asking a peer send).
pub fn issue(secret: &[u8; 32]) -> String {
    issue_at(secret, unix_now())
}

/// A token for `secret` with `iat` = `iat`.
pub fn issue_at(secret: &[u8; 32], iat: u64) -> String {
    let claims = Claims { iat: Some(iat), exp: None };
    // HS256 over a struct of two integers cannot fail: no key parsing, no fallible serialization.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
        .unwrap_or_default()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];
    const NOW: u64 = 1_700_000_000;

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    /// A token with any header algorithm and claims, signed by jsonwebtoken.
    fn signed(alg: Algorithm, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(&SECRET)).expect("encode")
    }

    #[test]
    fn a_token_issued_with_the_secret_verifies_and_others_do_not() {
        let token = issue(&SECRET);
        assert_eq!(verify(Some(&bearer(&token)), &SECRET), Ok(()));
        assert_eq!(verify(Some(&bearer(&token)), &[8u8; 32]), Err(JwtError::Signature));
        assert_eq!(verify(None, &SECRET), Err(JwtError::Missing));
        assert_eq!(verify(Some(&format!("Basic {token}")), &SECRET), Err(JwtError::Missing));
        assert_eq!(
            verify(Some("Bearer a.b"), &SECRET),
            Err(JwtError::Malformed("expected header.claims.signature".to_owned()))
        );
    }

    #[test]
    fn a_token_signed_by_another_engine_api_client_verifies() {
        // HMAC-SHA256 of `{"alg":"HS256","typ":"JWT"}.{"iat":1700000000}` under SECRET, computed
        // outside this crate, as op-node or a script would send it.
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDB9.\
                     q7vdxvYJozZ6UoScEnMgFSivYb-nzMGBXN-k-GD5t_8";
        assert_eq!(verify_at(Some(&bearer(token)), &SECRET, NOW), Ok(()));
        assert_eq!(issue_at(&SECRET, NOW).split('.').nth(1), token.split('.').nth(1), "same claims");
    }

    #[test]
    fn iat_is_accepted_within_60_s_either_way_and_refused_beyond() {
        for iat in [NOW - MAX_IAT_SKEW_SECS, NOW, NOW + MAX_IAT_SKEW_SECS] {
            assert_eq!(verify_at(Some(&bearer(&issue_at(&SECRET, iat))), &SECRET, NOW), Ok(()), "iat {iat}");
        }
        for iat in [NOW - MAX_IAT_SKEW_SECS - 1, NOW + MAX_IAT_SKEW_SECS + 1, 0] {
            assert_eq!(
                verify_at(Some(&bearer(&issue_at(&SECRET, iat))), &SECRET, NOW),
                Err(JwtError::IatOutOfWindow { iat, now: NOW }),
                "iat {iat}"
            );
        }
        let stale = verify_at(Some(&bearer(&issue_at(&SECRET, NOW - 61))), &SECRET, NOW).expect_err("stale");
        assert_eq!(
            stale.to_string(),
            "iat 1699999939 is 61 s from this coordinator's clock (1700000000); tokens must be issued \
             within 60 s of now (check both clocks)"
        );
    }

    #[test]
    fn a_missing_iat_a_string_iat_and_a_past_exp_are_refused() {
        let no_iat = signed(Algorithm::HS256, &serde_json::json!({ "exp": NOW + 10 }));
        assert_eq!(verify_at(Some(&bearer(&no_iat)), &SECRET, NOW), Err(JwtError::MissingIat));
        let string_iat = signed(Algorithm::HS256, &serde_json::json!({ "iat": NOW.to_string() }));
        assert!(
            matches!(verify_at(Some(&bearer(&string_iat)), &SECRET, NOW), Err(JwtError::Malformed(_))),
            "a string iat is not a time"
        );
        let expired = signed(Algorithm::HS256, &serde_json::json!({ "iat": NOW, "exp": NOW - 1 }));
        assert_eq!(
            verify_at(Some(&bearer(&expired)), &SECRET, NOW),
            Err(JwtError::Expired { exp: NOW - 1, now: NOW })
        );
        let live = signed(Algorithm::HS256, &serde_json::json!({ "iat": NOW, "exp": NOW + 1 }));
        assert_eq!(verify_at(Some(&bearer(&live)), &SECRET, NOW), Ok(()));
    }

    #[test]
    fn algorithms_other_than_hs256_are_refused_by_name() {
        let hs512 = signed(Algorithm::HS512, &serde_json::json!({ "iat": NOW }));
        let refused = verify_at(Some(&bearer(&hs512)), &SECRET, NOW);
        assert_eq!(refused, Err(JwtError::Algorithm("HS512".to_owned())));
        assert_eq!(refused.expect_err("HS512").to_string(), "unsupported algorithm HS512; use HS256");
        // `alg: none` with an empty signature, the classic forgery (base64url of
        // `{"alg":"none","typ":"JWT"}` and `{"iat":1700000000}`).
        let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpYXQiOjE3MDAwMDAwMDB9.";
        assert!(
            matches!(verify_at(Some(&bearer(unsigned)), &SECRET, NOW), Err(JwtError::Malformed(_))),
            "alg none is refused"
        );
    }

    #[test]
    fn a_header_that_is_not_base64_json_is_malformed() {
        let claims = issue_at(&SECRET, NOW);
        let rest = claims.split_once('.').map(|(_, rest)| rest).unwrap_or_default();
        // Not base64; base64 of `not json`; base64 of `{"typ":"JWT"}` (no alg).
        for head in ["!!!", "bm90IGpzb24", "eyJ0eXAiOiJKV1QifQ"] {
            let token = format!("{head}.{rest}");
            assert!(
                matches!(verify_at(Some(&bearer(&token)), &SECRET, NOW), Err(JwtError::Malformed(_))),
                "header {head}"
            );
        }
    }

    #[test]
    fn a_secret_file_holds_64_hex_digits_with_an_optional_0x() {
        let hex = "07".repeat(32);
        assert_eq!(parse_secret(&hex), Ok(SECRET));
        assert_eq!(parse_secret(&format!("  0x{hex}\n")), Ok(SECRET));
        assert_eq!(parse_secret("0x0707"), Err(SecretError::Length(4)));
        assert!(matches!(parse_secret(&"zz".repeat(32)), Err(SecretError::NotHex(_))));
    }
}
