//! Reading the caller's identity from a REST request (`Authorization: Bearer …`).

use axum::http::HeaderMap;
use switchboard_core::auth::{AuthError, Identity, JwtVerifier, Role};

use super::error::ApiError;

/// The bearer token of a request, if any. A present but non-Bearer header is malformed.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Invalid)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.is_empty() {
                Err(AuthError::Missing)
            } else {
                Ok(Some(token))
            }
        }
        _ => Err(AuthError::Invalid),
    }
}

/// The caller: anonymous without a header; a 401 for a bad token.
pub fn identify(verifier: &JwtVerifier, headers: &HeaderMap) -> Result<Identity, ApiError> {
    Ok(match bearer(headers)? {
        None => Identity::anonymous(),
        Some(token) => Identity::from_claims(verifier.verify(token)?),
    })
}

/// The caller, who must hold one of `roles` (admins always may).
pub fn require_role(
    verifier: &JwtVerifier,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Identity, ApiError> {
    let who = identify(verifier, headers)?;
    if !who.is_authenticated() {
        return Err(AuthError::Missing.into());
    }
    if who.role == Role::Admin || roles.contains(&who.role) {
        Ok(who)
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden(&format!(
            "Forbidden: requires role {}",
            names.join(" or ")
        )))
    }
}
