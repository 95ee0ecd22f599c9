//! `TokenService` over PASETO v4.local (symmetric, encrypted and authenticated).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parley_kernel::UserId;
use parley_users::{AccessToken, TokenClaims, TokenError, TokenService};
use pasetors::claims::{Claims, ClaimsValidationRules};
use pasetors::errors::{ClaimValidationError, Error};
use pasetors::keys::SymmetricKey;
use pasetors::token::UntrustedToken;
use pasetors::version4::V4;
use pasetors::{Local, local};

/// Issues and verifies v4.local tokens with one symmetric key.
pub struct PasetoTokenService {
    key: SymmetricKey<V4>,
    ttl: Duration,
    verified: Verified,
}

impl PasetoTokenService {
    /// # Errors
    /// `TokenError::Issue` if the key is not usable.
    pub fn new(key: &[u8; 32], ttl: Duration) -> Result<Self, TokenError> {
        let key = SymmetricKey::<V4>::from(key).map_err(|_| TokenError::Issue)?;
        Ok(Self { key, ttl, verified: Verified::default() })
    }

    /// Decrypts and validates `token`: its user and when it expires.
    fn decrypt(&self, token: &str) -> Result<(UserId, Option<DateTime<Utc>>), TokenError> {
        let untrusted = UntrustedToken::<Local, V4>::try_from(token).map_err(|_| TokenError::Invalid)?;
        let trusted =
            local::decrypt(&self.key, &untrusted, &ClaimsValidationRules::new(), None, None).map_err(|e| match e {
                Error::ClaimValidation(ClaimValidationError::Exp) => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = trusted.payload_claims().ok_or(TokenError::Invalid)?;
        let claim = |name| claims.get_claim(name).and_then(|value| value.as_str());
        let user = claim("sub").and_then(|sub| sub.parse().ok()).ok_or(TokenError::Invalid)?;
        let expires = claim("exp").and_then(|exp| DateTime::parse_from_rfc3339(exp).ok()).map(|exp| exp.to_utc());
        Ok((user, expires))
    }
}

/// Tokens already verified, with their user and expiry, so that a client's
/// every request does not pay base64, BLAKE2b and XChaCha20 again (about a
/// quarter of the CPU of creating a task; docs/performance.md).
///
/// Keyed by the whole token text: the same text is the same authenticated
/// token, and a tampered one never matches. The map's hasher is randomly
/// keyed per process, so lookups reveal nothing useful through timing.
/// Bounded: emptied when full, which only costs some decryptions again.
#[derive(Default)]
struct Verified {
    entries: Mutex<HashMap<Box<str>, Remembered>>,
}

/// A verified token's user and expiry.
type Remembered = (UserId, DateTime<Utc>);

impl Verified {
    const CAPACITY: usize = 8192;

    /// The user and expiry of `token` if it was verified and has not expired at `now`.
    fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Remembered> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(token).filter(|(_, expires)| now < *expires).copied()
    }

    fn insert(&self, token: &str, user: UserId, expires: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(token.into(), (user, expires));
    }
}

impl TokenService for PasetoTokenService {
    fn issue(&self, user: UserId) -> Result<AccessToken, TokenError> {
        let mut claims = Claims::new_expires_in(&self.ttl).map_err(|_| TokenError::Issue)?;
        claims.subject(&user.to_string()).map_err(|_| TokenError::Issue)?;
        claims.token_identifier(&uuid::Uuid::new_v4().to_string()).map_err(|_| TokenError::Issue)?;
        let token = local::encrypt(&self.key, &claims, None, None).map_err(|_| TokenError::Issue)?;
        Ok(AccessToken { token, expires_in: self.ttl.as_secs() })
    }

    fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        if let Some((user, _)) = self.verified.get(token, Utc::now()) {
            return Ok(user);
        }
        let (user, expires) = self.decrypt(token)?;
        if let Some(expires) = expires {
            self.verified.insert(token, user, expires);
        }
        Ok(user)
    }

    fn claims(&self, token: &str) -> Result<TokenClaims, TokenError> {
        if let Some((user, expires_at)) = self.verified.get(token, Utc::now()) {
            return Ok(TokenClaims { user, expires_at });
        }
        let (user, expires) = self.decrypt(token)?;
        let expires_at = expires.ok_or(TokenError::Invalid)?;
        self.verified.insert(token, user, expires_at);
        Ok(TokenClaims { user, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(key: u8) -> PasetoTokenService {
        PasetoTokenService::new(&[key; 32], Duration::from_secs(60)).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn issued_token_verifies_to_its_user() {
        let tokens = service(7);
        let user = UserId::new();
        let token = tokens.issue(user).map(|t| t.token).unwrap_or_default();
        assert!(token.starts_with("v4.local."));
        assert_eq!(tokens.verify(&token), Ok(user));
    }

    #[test]
    fn claims_give_the_user_and_the_expiry_issued() {
        let tokens = service(8);
        let user = UserId::new();
        let before = Utc::now();
        let token = tokens.issue(user).map(|t| t.token).unwrap_or_default();
        let claims = tokens.claims(&token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.user, user);
        let ttl = claims.expires_at - before;
        assert!(ttl <= chrono::Duration::seconds(61) && ttl >= chrono::Duration::seconds(59), "{ttl}");
        assert_eq!(tokens.claims(&token), Ok(claims), "from the cache");
        assert_eq!(tokens.claims("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn token_from_another_key_is_invalid() {
        let token = service(1).issue(UserId::new()).map(|t| t.token).unwrap_or_default();
        assert_eq!(service(2).verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn tampered_and_garbage_tokens_are_invalid() {
        let tokens = service(3);
        let mut token = tokens.issue(UserId::new()).map(|t| t.token).unwrap_or_default();
        let last = token.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
        token.push(last);
        assert_eq!(tokens.verify(&token), Err(TokenError::Invalid));
        assert_eq!(tokens.verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let verified = Verified::default();
        let (user, now) = (UserId::new(), Utc::now());
        verified.insert("v4.local.a", user, now + chrono::Duration::seconds(10));
        assert_eq!(verified.get("v4.local.a", now).map(|(user, _)| user), Some(user));
        assert_eq!(verified.get("v4.local.b", now), None);
        assert_eq!(verified.get("v4.local.a", now + chrono::Duration::seconds(10)), None);
    }

    #[test]
    fn the_verified_tokens_stay_bounded() {
        let verified = Verified::default();
        let expires = Utc::now() + chrono::Duration::seconds(10);
        for n in 0..=Verified::CAPACITY {
            verified.insert(&format!("v4.local.{n}"), UserId::new(), expires);
        }
        let len = verified.entries.lock().map(|entries| entries.len()).unwrap_or_default();
        assert!((1..=Verified::CAPACITY).contains(&len), "{len}");
    }

    #[test]
    fn a_remembered_token_still_verifies_to_its_user_and_a_tampered_one_does_not() {
        let tokens = service(5);
        let user = UserId::new();
        let token = tokens.issue(user).map(|t| t.token).unwrap_or_default();
        assert_eq!(tokens.verify(&token), Ok(user));
        assert_eq!(tokens.verify(&token), Ok(user), "from the cache");
        let tampered = format!("{token}A");
        assert_eq!(tokens.verify(&tampered), Err(TokenError::Invalid));
    }

    #[test]
    fn expired_token_is_expired() {
        let tokens = service(4);
        let mut claims = Claims::new().unwrap_or_else(|_| unreachable!());
        claims.issued_at("2019-01-01T00:00:00+00:00").unwrap_or_else(|_| unreachable!());
        claims.not_before("2019-01-01T00:00:00+00:00").unwrap_or_else(|_| unreachable!());
        claims.subject(&UserId::new().to_string()).unwrap_or_else(|_| unreachable!());
        claims.expiration("2020-01-01T00:00:00+00:00").unwrap_or_else(|_| unreachable!());
        let token = local::encrypt(&tokens.key, &claims, None, None).unwrap_or_default();
        assert_eq!(tokens.verify(&token), Err(TokenError::Expired));
    }
}
