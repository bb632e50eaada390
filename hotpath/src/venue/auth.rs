//! Authentication: API credentials (redacted in Debug, never logged), the
//! `client_signature` HMAC, auth/refresh request building and the token's life cycle.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::methods;
use super::request::RequestBuf;

/// A secret string: Debug and Display print `<redacted>`; the bytes are zeroed on drop.
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The secret text: call sites are the request writer and the HMAC only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocator reuses the memory. Refilling
        // with NUL chars of the same length rewrites the same buffer (no reallocation)
        // and keeps the String valid UTF-8 without unsafe code.
        let len = self.0.len();
        self.0.clear();
        self.0.extend(std::iter::repeat_n('\0', len));
    }
}

/// An API key.
#[derive(Debug)]
pub struct Credentials {
    /// Client id (not secret, but only shown in Debug).
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
}

/// Why credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The environment variable is unset or empty.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("cannot read credentials file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not `{"client_id": "...", "client_secret": "..."}`.
    #[error("credentials file is not {{\"client_id\",\"client_secret\"}} JSON")]
    Format,
}

impl Credentials {
    /// From two environment variables (names come from config).
    ///
    /// # Errors
    /// [`CredentialsError::MissingEnv`].
    pub fn from_env(id_var: &str, secret_var: &str) -> Result<Self, CredentialsError> {
        let get = |v: &str| match std::env::var(v) {
            Ok(s) if !s.is_empty() => Ok(s),
            _ => Err(CredentialsError::MissingEnv(v.to_owned())),
        };
        Ok(Self { client_id: get(id_var)?, client_secret: Secret::new(get(secret_var)?) })
    }

    /// From a JSON file `{"client_id": "...", "client_secret": "..."}`.
    ///
    /// # Errors
    /// [`CredentialsError::Io`] or [`CredentialsError::Format`] (the error never echoes
    /// the file's contents).
    pub fn from_file(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path)?;
        let text = Secret::new(text);
        let v: serde_json::Value =
            serde_json::from_str(text.expose()).map_err(|_| CredentialsError::Format)?;
        let id = v.get("client_id").and_then(|x| x.as_str()).ok_or(CredentialsError::Format)?;
        let secret =
            v.get("client_secret").and_then(|x| x.as_str()).ok_or(CredentialsError::Format)?;
        if id.is_empty() || secret.is_empty() {
            return Err(CredentialsError::Format);
        }
        Ok(Self { client_id: id.to_owned(), client_secret: Secret::new(secret.to_owned()) })
    }
}

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthGrant {
    /// Send id and secret (only over TLS or loopback).
    ClientCredentials,
    /// Send an HMAC-SHA256 signature; the secret never leaves the process.
    ClientSignature,
}

/// `lowercase_hex(HMAC_SHA256(secret, "{timestamp}\n{nonce}\n{data}"))` (§3.2).
#[must_use]
pub fn client_signature(secret: &str, timestamp_ms: i64, nonce: &str, data: &str) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A single-use nonce: 16 hex chars from a hash of time, a counter and the process id.
#[must_use]
pub fn make_nonce(now_ns: u128, counter: u64) -> String {
    let mut h = Sha256::new();
    h.update(now_ns.to_le_bytes());
    h.update(counter.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    hex::encode(&h.finalize()[..8])
}

/// Writes a `public/auth` request.
pub fn write_auth_request<'b>(
    buf: &'b mut RequestBuf,
    id: u64,
    creds: &Credentials,
    grant: AuthGrant,
    now_ms: i64,
    nonce: &str,
    scope: Option<&str>,
) -> &'b [u8] {
    buf.begin(id, methods::AUTH);
    write_auth_params(buf, creds, grant, now_ms, nonce, scope);
    buf.finish()
}

/// Writes the params of a `public/auth` request into a started request.
pub fn write_auth_params(
    buf: &mut RequestBuf,
    creds: &Credentials,
    grant: AuthGrant,
    now_ms: i64,
    nonce: &str,
    scope: Option<&str>,
) {
    match grant {
        AuthGrant::ClientCredentials => {
            buf.str("grant_type", "client_credentials")
                .str("client_id", &creds.client_id)
                .str("client_secret", creds.client_secret.expose());
        }
        AuthGrant::ClientSignature => {
            let sig = client_signature(creds.client_secret.expose(), now_ms, nonce, "");
            buf.str("grant_type", "client_signature")
                .str("client_id", &creds.client_id)
                .int("timestamp", now_ms)
                .str("nonce", nonce)
                .str("data", "")
                .str("signature", &sig);
        }
    }
    if let Some(s) = scope {
        buf.str("scope", s);
    }
}

/// Writes the params of a `public/auth` refresh into a started request.
pub fn write_refresh_params(buf: &mut RequestBuf, refresh_token: &Secret) {
    buf.str("grant_type", "refresh_token").str("refresh_token", refresh_token.expose());
}

/// The current token pair and when to refresh it.
#[derive(Debug)]
pub struct TokenState {
    /// Bearer token (unused over an authenticated socket, kept for HTTP).
    pub access_token: Secret,
    /// Refresh token.
    pub refresh_token: Secret,
    /// Granted scopes, as the venue returned them.
    pub scope: String,
    obtained_ms: i64,
    expires_in_s: i64,
}

impl TokenState {
    /// From an auth result received at `now_ms`.
    #[must_use]
    pub fn new(r: &super::messages::AuthResult<'_>, now_ms: i64) -> Self {
        Self {
            access_token: Secret::new(r.access_token.to_owned()),
            refresh_token: Secret::new(r.refresh_token.to_owned()),
            scope: r.scope.to_owned(),
            obtained_ms: now_ms,
            expires_in_s: r.expires_in,
        }
    }

    /// Expiry time, ms.
    #[must_use]
    pub fn expires_at_ms(&self) -> i64 {
        self.obtained_ms.saturating_add(self.expires_in_s.saturating_mul(1000))
    }

    /// When to refresh: at 80 % of the lifetime, and never later than 60 s before
    /// expiry, so a slow reply cannot leave us with a dead token.
    #[must_use]
    pub fn refresh_at_ms(&self) -> i64 {
        let life_ms = self.expires_in_s.saturating_mul(1000);
        let at_80 = self.obtained_ms.saturating_add(life_ms / 5 * 4);
        at_80.min(self.expires_at_ms().saturating_sub(60_000)).max(self.obtained_ms)
    }

    /// True when a refresh is due.
    #[must_use]
    pub fn needs_refresh(&self, now_ms: i64) -> bool {
        now_ms >= self.refresh_at_ms()
    }

    /// True when the granted scope contains `token` (e.g. `trade:read_write`).
    #[must_use]
    pub fn has_scope(&self, token: &str) -> bool {
        self.scope.split(' ').any(|t| t == token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_test_vector() {
        // protocol §3.2 / samples INDEX.md: secret AMANDASECRECT, ts 1576074319000,
        // nonce 1iqt2wls, empty data.
        assert_eq!(
            client_signature("AMANDASECRECT", 1_576_074_319_000, "1iqt2wls", ""),
            "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"
        );
    }

    #[test]
    fn signature_request_matches_the_sample() {
        let creds = Credentials {
            client_id: "AMANDA".into(),
            client_secret: Secret::new("AMANDASECRECT".into()),
        };
        let mut buf = RequestBuf::default();
        let bytes = write_auth_request(
            &mut buf,
            9929,
            &creds,
            AuthGrant::ClientSignature,
            1_576_074_319_000,
            "1iqt2wls",
            None,
        )
        .to_vec();
        let ours: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/venue_samples/auth_request_client_signature.json"
        );
        let sample: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(ours, sample);
        assert!(!String::from_utf8_lossy(&bytes).contains("AMANDASECRECT"));
    }

    #[test]
    fn secrets_are_redacted() {
        let creds =
            Credentials { client_id: "id".into(), client_secret: Secret::new("s3cr3t".into()) };
        let dbg = format!("{creds:?}");
        assert!(!dbg.contains("s3cr3t"));
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn credentials_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        std::fs::write(&p, r#"{"client_id":"a","client_secret":"b"}"#).unwrap();
        let c = Credentials::from_file(&p).unwrap();
        assert_eq!((c.client_id.as_str(), c.client_secret.expose()), ("a", "b"));
        std::fs::write(&p, "client_secret=oops").unwrap();
        let e = Credentials::from_file(&p).unwrap_err();
        assert!(!e.to_string().contains("oops"));
        assert!(matches!(
            Credentials::from_env("STOIC_TEST_SURELY_UNSET_ID", "STOIC_TEST_SURELY_UNSET_S"),
            Err(CredentialsError::MissingEnv(_))
        ));
    }

    #[test]
    fn refresh_schedule() {
        let r = super::super::messages::AuthResult {
            access_token: "a",
            refresh_token: "r",
            expires_in: 900,
            scope: "connection trade:read_write",
            token_type: "bearer",
        };
        let t = TokenState::new(&r, 1_000_000);
        assert_eq!(t.refresh_at_ms(), 1_000_000 + 720_000);
        assert!(!t.needs_refresh(1_719_999));
        assert!(t.needs_refresh(1_720_000));
        assert!(t.has_scope("trade:read_write"));
        assert!(!t.has_scope("trade:read"));
        // Short tokens refresh 60 s before expiry at the latest.
        let r = super::super::messages::AuthResult { expires_in: 100, ..r };
        let t = TokenState::new(&r, 0);
        assert_eq!(t.refresh_at_ms(), 40_000);
        assert!(format!("{t:?}").contains("<redacted>"));
    }
}
