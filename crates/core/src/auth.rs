//! JWT verification, identities and channel permissions.
//!
//! The algorithm is pinned by configuration, never taken from the token header, so a token
//! signed with another algorithm (or `alg: none`) is rejected. Permission checks live here, in
//! one place, so every transport answers the same question the same way.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::channel::ChannelName;
use crate::publication::Audience;

/// What a token holder may do beyond reading public channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A field agent: the default; reads the agent DTOs.
    #[default]
    Agent,
    /// Headquarters: writes missions and reads the richer HQ DTOs.
    Hq,
    /// A data pipeline: posts city metrics.
    Pipeline,
    /// An operator: may read and publish on every channel.
    Admin,
}

impl Role {
    /// The wire name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Hq => "hq",
            Self::Pipeline => "pipeline",
            Self::Admin => "admin",
        }
    }

    /// Parses a role name as used in tokens and on the command line.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Self::Agent),
            "hq" => Some(Self::Hq),
            "pipeline" => Some(Self::Pipeline),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Which DTO audience a holder of this role receives.
    pub fn audience(self) -> Audience {
        match self {
            Self::Hq | Self::Admin => Audience::Hq,
            Self::Agent | Self::Pipeline => Audience::Agent,
        }
    }
}

/// The claims Switchboard reads from a token.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id; also names the user's personal channel `user:<sub>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, seconds since the Unix epoch. Required.
    pub exp: u64,
    /// Role; `agent` when absent.
    #[serde(default)]
    pub role: Role,
    /// Channel patterns this token may read (`city:*`, `room:42`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claims")
            .field("sub", &self.sub)
            .field("exp", &self.exp)
            .field("role", &self.role)
            .field("channels", &self.channels)
            .finish()
    }
}

/// Why a token was refused. The variants map to close codes 4001, 4002 and 4004.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token where one is needed.
    #[error("Authentication required")]
    Missing,
    /// Malformed, wrong signature, wrong algorithm, missing `exp`, unknown role…
    #[error("Invalid token")]
    Invalid,
    /// Signature fine, but `exp` has passed.
    #[error("Token expired")]
    Expired,
}

/// Verifies tokens. Each configured key is pinned to one algorithm (HS256 for the shared
/// secret; RS256 or ES256 for a public key), and a token is only ever checked with the key of
/// the algorithm it names, so `alg: none`, an unconfigured algorithm, or an HS256 token "signed"
/// with the public key as the HMAC secret are all refused.
#[derive(Clone)]
pub struct JwtVerifier {
    keys: Vec<(Algorithm, DecodingKey, Validation)>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        let algs: Vec<_> = self.keys.iter().map(|(a, _, _)| *a).collect();
        f.debug_struct("JwtVerifier")
            .field("algorithms", &algs)
            .finish_non_exhaustive()
    }
}

/// Why a public key file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("not an RSA or EC (P-256) public key in PEM form")]
pub struct KeyError;

impl JwtVerifier {
    /// An HS256 verifier for a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with_key(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// A verifier for one key and its pinned algorithm.
    pub fn with_key(key: DecodingKey, algorithm: Algorithm) -> Self {
        Self { keys: Vec::new() }.and_key(key, algorithm)
    }

    /// A verifier with no key yet (every token is refused until one is added).
    pub fn empty() -> Self {
        Self { keys: Vec::new() }
    }

    /// Adds a key pinned to `algorithm`.
    pub fn and_key(mut self, key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        // A token that is not valid yet is refused like an expired one would be.
        validation.validate_nbf = true;
        // Expiry is exact: a client told "expired" must not be let in for another minute.
        validation.leeway = 0;
        validation.validate_aud = false;
        self.keys.retain(|(a, _, _)| *a != algorithm);
        self.keys.push((algorithm, key, validation));
        self
    }

    /// Adds a PEM public key: RSA keys verify RS256, EC P-256 keys verify ES256.
    pub fn and_public_key_pem(self, pem: &[u8]) -> Result<Self, KeyError> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(self.and_key(key, Algorithm::RS256));
        }
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            return Ok(self.and_key(key, Algorithm::ES256));
        }
        Err(KeyError)
    }

    /// The algorithms this verifier accepts.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        self.keys.iter().map(|(a, _, _)| *a).collect()
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        // RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` names an extension it
        // does not understand; this verifier understands none.
        if header.crit.is_some() {
            return Err(AuthError::Invalid);
        }
        let Some((_, key, validation)) = self.keys.iter().find(|(a, _, _)| *a == header.alg) else {
            return Err(AuthError::Invalid);
        };
        match jsonwebtoken::decode::<Claims>(token, key, validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(AuthError::Expired),
            Err(_) => Err(AuthError::Invalid),
        }
    }
}

/// Signs HS256 tokens; used by `switchboard token`, the demo tokens printed at start, and tests.
#[derive(Clone)]
pub struct JwtSigner {
    key: EncodingKey,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSigner(..)")
    }
}

impl JwtSigner {
    /// A signer for an HS256 shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
        }
    }

    /// Signs the claims. Fails only if the claims cannot be serialized, which they always can.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
    }
}

/// Who is on the other end of a connection or request, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`; `None` for anonymous clients and tokens without one.
    pub user: Option<String>,
    /// The role; anonymous clients are agents.
    pub role: Role,
    /// Channel patterns granted by the token.
    pub channels: Vec<String>,
    /// When the token expires (seconds since the epoch); `None` for anonymous.
    pub expires_at: Option<u64>,
}

impl Identity {
    /// An unauthenticated client.
    pub fn anonymous() -> Self {
        Self {
            user: None,
            role: Role::Agent,
            channels: Vec::new(),
            expires_at: None,
        }
    }

    /// The identity a verified token describes.
    pub fn from_claims(claims: Claims) -> Self {
        Self {
            user: claims.sub.filter(|s| !s.is_empty()),
            role: claims.role,
            channels: claims.channels,
            expires_at: Some(claims.exp),
        }
    }

    /// Whether a token was presented.
    pub fn is_authenticated(&self) -> bool {
        self.expires_at.is_some()
    }

    /// The DTO audience this identity receives.
    pub fn audience(&self) -> Audience {
        self.role.audience()
    }
}

/// Whether `pattern` grants `channel`. A pattern is either an exact name or ends in `*`,
/// which matches one non-empty segment (no further `:`), so `city:*` grants `city:nairobi`
/// but not `city:nairobi:raw`.
pub fn pattern_matches(pattern: &str, channel: &str) -> bool {
    match pattern.strip_suffix('*') {
        None => pattern == channel,
        Some(prefix) => channel
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(':')),
    }
}

/// The permission rules of SPEC §3, parameterised by configuration.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    /// Namespaces anyone may read (`auth.public_namespaces`).
    pub public_namespaces: Vec<String>,
}

impl AccessPolicy {
    /// Whether `who`, on connection `conn_id`, may subscribe to `channel`.
    pub fn can_read(&self, who: &Identity, conn_id: &str, channel: &ChannelName) -> bool {
        let ns = channel.namespace();
        match ns {
            // Personal channels: only their owner (admins may watch any).
            "conn" => channel.suffix() == Some(conn_id) || who.role == Role::Admin,
            "user" => {
                who.role == Role::Admin
                    || (who.user.is_some() && channel.suffix() == who.user.as_deref())
            }
            _ => {
                who.role == Role::Admin
                    || self.public_namespaces.iter().any(|p| p == ns)
                    || who
                        .channels
                        .iter()
                        .any(|p| pattern_matches(p, channel.as_str()))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims(role: Role, exp: u64) -> Claims {
        Claims {
            sub: Some("u1".into()),
            exp,
            role,
            channels: vec!["city:*".into()],
        }
    }

    #[test]
    fn round_trip_and_failures() {
        let s = JwtSigner::hs256(b"secret");
        let v = JwtVerifier::hs256(b"secret");
        let t = s.sign(&claims(Role::Hq, now() + 60)).unwrap();
        assert_eq!(v.verify(&t).unwrap().role, Role::Hq);

        let expired = s.sign(&claims(Role::Hq, now() - 10)).unwrap();
        assert_eq!(v.verify(&expired), Err(AuthError::Expired));

        let other = JwtVerifier::hs256(b"other");
        assert_eq!(other.verify(&t), Err(AuthError::Invalid));
        assert_eq!(v.verify("not.a.token"), Err(AuthError::Invalid));
        assert_eq!(v.verify(""), Err(AuthError::Missing));
    }

    #[test]
    fn alg_none_and_missing_exp_are_rejected() {
        use base64_url as b64;
        let v = JwtVerifier::hs256(b"secret");
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64(format!(r#"{{"sub":"x","exp":{},"role":"hq"}}"#, now() + 60).as_bytes());
        assert_eq!(
            v.verify(&format!("{header}.{body}.")),
            Err(AuthError::Invalid)
        );
        // Signed correctly, but without exp.
        #[derive(Serialize)]
        struct NoExp {
            sub: String,
        }
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp { sub: "x".into() },
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(v.verify(&t), Err(AuthError::Invalid));
        // HS384 with the right secret is still the wrong algorithm.
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(Role::Hq, now() + 60),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(v.verify(&t), Err(AuthError::Invalid));
    }

    /// Minimal unpadded base64url, enough to hand-craft a token header in a test.
    fn base64_url(input: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("city:*", "city:nairobi"));
        assert!(!pattern_matches("city:*", "city:"));
        assert!(!pattern_matches("city:*", "city:a:b"));
        assert!(!pattern_matches("city:*", "cityx:a"));
        assert!(pattern_matches("room:42", "room:42"));
        assert!(!pattern_matches("room:42", "room:420"));
    }

    #[test]
    fn policy() {
        let p = AccessPolicy {
            public_namespaces: vec!["missions".into(), "lobby".into(), "room".into()],
        };
        let anon = Identity::anonymous();
        let ch = |s| ChannelName::parse(s).unwrap();
        assert!(p.can_read(&anon, "c1", &ch("missions")));
        assert!(p.can_read(&anon, "c1", &ch("room:7")));
        assert!(p.can_read(&anon, "c1", &ch("conn:c1")));
        assert!(!p.can_read(&anon, "c1", &ch("conn:c2")));
        assert!(!p.can_read(&anon, "c1", &ch("city:nairobi")));
        assert!(!p.can_read(&anon, "c1", &ch("user:u1")));
        let u = Identity::from_claims(claims(Role::Agent, now() + 60));
        assert!(p.can_read(&u, "c1", &ch("city:nairobi")));
        assert!(p.can_read(&u, "c1", &ch("user:u1")));
        assert!(!p.can_read(&u, "c1", &ch("user:u2")));
        assert!(!p.can_read(&u, "c1", &ch("payments")));
    }
}
