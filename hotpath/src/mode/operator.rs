//! Operator authentication as a capability type.
//!
//! Every operator action that changes the mode (a relax, an emergency reduce-only) takes an
//! [`OperatorAuthenticated`]. Its fields are private and it has exactly one constructor,
//! [`OperatorAuthenticated::verify`], which succeeds only when the presented bearer token
//! hashes to the configured secret (constant-time comparison of SHA-256 digests). So holding
//! one *is* the proof that the token was checked; there is no other way to make one.
//!
//! How coldpath obtains it: the control plane (`POST /api/v1/...` with
//! `Authorization: Bearer <token>`) and the `stoic` CLI load an [`OperatorSecret`] once at
//! start from the token file, call `verify` with the presented token and the operator id
//! (`requested_by`), answer 401 on `Err` without touching anything, and on `Ok` pass the
//! capability to `PolicyGuard`. It is neither `Clone` nor `Copy`: a relax consumes it.

use crate::domain::reason_codes::TradingMode;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Shortest bearer token accepted as a secret (bytes, after trimming).
pub const OPERATOR_TOKEN_BYTES_MIN: usize = 16;
/// Longest operator id accepted (bytes).
pub const OPERATOR_ID_BYTES_MAX: usize = 64;
/// Longest operator reason text accepted (chars), as the emergency endpoint's body (ruling 8).
pub const OPERATOR_REASON_CHARS_MAX: usize = 200;

/// Why authentication or an operator request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The presented token does not match the configured secret.
    #[error("operator token rejected")]
    TokenRejected,
    /// The configured secret is shorter than [`OPERATOR_TOKEN_BYTES_MIN`].
    #[error("operator secret shorter than {OPERATOR_TOKEN_BYTES_MIN} bytes")]
    SecretTooShort,
    /// The secret file could not be read.
    #[error("operator secret file unreadable: {0}")]
    SecretUnreadable(String),
    /// The operator id is empty, too long or not printable ASCII.
    #[error("operator id must be 1..={OPERATOR_ID_BYTES_MAX} printable ASCII bytes")]
    BadOperatorId,
    /// The reason text is longer than [`OPERATOR_REASON_CHARS_MAX`] characters.
    #[error("reason longer than {OPERATOR_REASON_CHARS_MAX} characters")]
    ReasonTooLong,
}

/// The configured operator secret: only the SHA-256 digest of the token is kept in memory.
pub struct OperatorSecret {
    digest: [u8; 32],
}

impl core::fmt::Debug for OperatorSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OperatorSecret(<redacted>)")
    }
}

impl OperatorSecret {
    /// The secret from the token's bytes (surrounding ASCII whitespace is trimmed).
    ///
    /// # Errors
    /// [`AuthError::SecretTooShort`] for a token under [`OPERATOR_TOKEN_BYTES_MIN`] bytes.
    pub fn from_token(token: &[u8]) -> Result<Self, AuthError> {
        let token = token.trim_ascii();
        if token.len() < OPERATOR_TOKEN_BYTES_MIN {
            return Err(AuthError::SecretTooShort);
        }
        Ok(Self { digest: Sha256::digest(token).into() })
    }

    /// The secret from a token file (one line; never from the repository).
    ///
    /// # Errors
    /// [`AuthError::SecretUnreadable`] or [`AuthError::SecretTooShort`].
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let bytes =
            std::fs::read(path).map_err(|e| AuthError::SecretUnreadable(e.kind().to_string()))?;
        Self::from_token(&bytes)
    }
}

/// Proof that an operator presented the right bearer token. See the module docs.
#[derive(Debug)]
pub struct OperatorAuthenticated {
    operator_id: String,
}

impl OperatorAuthenticated {
    /// Checks `presented_token` against `secret` in constant time and, on success, returns the
    /// capability for `operator_id` (the caller-declared `requested_by`).
    ///
    /// # Errors
    /// [`AuthError::TokenRejected`] for a wrong or empty token, [`AuthError::BadOperatorId`]
    /// for an id that is empty, longer than [`OPERATOR_ID_BYTES_MAX`] or not printable ASCII.
    pub fn verify(
        secret: &OperatorSecret,
        presented_token: &[u8],
        operator_id: &str,
    ) -> Result<Self, AuthError> {
        let presented: [u8; 32] = Sha256::digest(presented_token.trim_ascii()).into();
        if !constant_time_eq(&presented, &secret.digest) {
            return Err(AuthError::TokenRejected);
        }
        let id_ok = !operator_id.is_empty()
            && operator_id.len() <= OPERATOR_ID_BYTES_MAX
            && operator_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(AuthError::BadOperatorId);
        }
        Ok(Self { operator_id: operator_id.to_owned() })
    }

    /// The authenticated operator's id.
    #[must_use]
    pub fn operator_id(&self) -> &str {
        &self.operator_id
    }
}

/// An authenticated request to relax the mode to `target`, with the operator's reason.
#[derive(Debug)]
pub struct OperatorAction {
    pub(crate) auth: OperatorAuthenticated,
    pub(crate) target: TradingMode,
    pub(crate) reason: String,
}

impl OperatorAction {
    /// A relax request. The reason is free text for the audit trail (≤ 200 chars).
    ///
    /// # Errors
    /// [`AuthError::ReasonTooLong`].
    pub fn relax(
        auth: OperatorAuthenticated,
        target: TradingMode,
        reason: &str,
    ) -> Result<Self, AuthError> {
        check_reason(reason)?;
        Ok(Self { auth, target, reason: reason.to_owned() })
    }

    /// The mode the operator asks for.
    #[must_use]
    pub fn target(&self) -> TradingMode {
        self.target
    }
}

/// Rejects operator reason texts longer than [`OPERATOR_REASON_CHARS_MAX`] characters.
pub(crate) fn check_reason(reason: &str) -> Result<(), AuthError> {
    if reason.chars().count() > OPERATOR_REASON_CHARS_MAX {
        return Err(AuthError::ReasonTooLong);
    }
    Ok(())
}

/// Compares two digests without an early exit, so timing does not reveal the prefix length.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_token_authenticates() {
        let secret = OperatorSecret::from_token(b"correct horse battery staple\n").unwrap();
        assert!(
            OperatorAuthenticated::verify(&secret, b"correct horse battery staple", "ops").is_ok()
        );
        assert_eq!(
            OperatorAuthenticated::verify(&secret, b"correct horse battery stapl", "ops")
                .unwrap_err(),
            AuthError::TokenRejected
        );
        assert_eq!(
            OperatorAuthenticated::verify(&secret, b"", "ops").unwrap_err(),
            AuthError::TokenRejected
        );
        assert_eq!(
            OperatorAuthenticated::verify(&secret, b"correct horse battery staple", "")
                .unwrap_err(),
            AuthError::BadOperatorId
        );
        assert_eq!(OperatorSecret::from_token(b"short").unwrap_err(), AuthError::SecretTooShort);
    }
}
