//! `TokenService` over PASETO v4.local (symmetric, encrypted and authenticated).

use std::time::Duration;

use parley_kernel::UserId;
use parley_users::{AccessToken, TokenError, TokenService};
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
}

impl PasetoTokenService {
    /// # Errors
    /// `TokenError::Issue` if the key is not usable.
    pub fn new(key: &[u8; 32], ttl: Duration) -> Result<Self, TokenError> {
        let key = SymmetricKey::<V4>::from(key).map_err(|_| TokenError::Issue)?;
        Ok(Self { key, ttl })
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
        let untrusted = UntrustedToken::<Local, V4>::try_from(token).map_err(|_| TokenError::Invalid)?;
        let trusted =
            local::decrypt(&self.key, &untrusted, &ClaimsValidationRules::new(), None, None).map_err(|e| match e {
                Error::ClaimValidation(ClaimValidationError::Exp) => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = trusted.payload_claims().ok_or(TokenError::Invalid)?;
        claims.get_claim("sub").and_then(|sub| sub.as_str()).and_then(|sub| sub.parse().ok()).ok_or(TokenError::Invalid)
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
