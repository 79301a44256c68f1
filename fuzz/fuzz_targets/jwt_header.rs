//! `JwtVerifier::verify`: a token from a query string, an `Authorization` header or an `auth`
//! message, parsed (header first) before any signature is checked.
//!
//! The first byte picks the mode. Raw: the rest is the token text. Crafted: the rest is
//! `header-json \0 claims-json \0 signature`, each base64url-encoded into a token, so the
//! fuzzer reaches the header and claims parsers (`alg: none`, unknown algorithms, `kid`, `jwk`,
//! odd `exp`…). Signed: the rest is claims JSON, signed with the verifier's own secret under an
//! algorithm the first byte chooses. Properties: never panics, allocates in proportion to the
//! token, never accepts a token it did not sign with HS256, and never accepts an expired one.
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard_core::auth::{AuthError, JwtVerifier};
use switchboard_fuzz::{base64url, bounded, split_n, text};

const SECRET: &[u8] = b"fuzz-secret";

fn verifier() -> &'static JwtVerifier {
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    V.get_or_init(|| JwtVerifier::hs256(SECRET))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let v = verifier();
    match mode % 3 {
        0 => {
            let token = text(rest);
            let got = bounded(token.len(), || v.verify(&token));
            assert!(got.is_err(), "accepted a token nobody signed: {token:?}");
        }
        1 => {
            let parts = split_n(rest, 0, 3);
            let token = format!(
                "{}.{}.{}",
                base64url(parts[0]),
                base64url(parts[1]),
                base64url(parts[2])
            );
            let got = bounded(token.len(), || v.verify(&token));
            assert!(got.is_err(), "accepted a forged token: {token:?}");
        }
        _ => {
            let Ok(claims) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let alg =
                [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512][usize::from(mode / 3 % 3)];
            let Ok(token) = jsonwebtoken::encode(
                &Header::new(alg),
                &claims,
                &EncodingKey::from_secret(SECRET),
            ) else {
                return;
            };
            match bounded(token.len(), || v.verify(&token)) {
                Ok(c) => {
                    assert_eq!(alg, Algorithm::HS256, "accepted {alg:?}");
                    assert!(c.exp > now().saturating_sub(5), "accepted an expired token");
                }
                Err(AuthError::Missing) => panic!("a non-empty token reported as missing"),
                Err(_) => {}
            }
        }
    }
});
