//! Token expiry on long-lived connections: every transport closes a connection when its token
//! expires (4004), unless the client refreshed it first.

use std::time::Duration;

use tokio::time::Instant;

/// When a token that expires at `exp` (Unix seconds) stops being valid, as a timer instant.
pub fn token_deadline(exp: Option<u64>) -> Option<Instant> {
    let exp_ms = exp?.saturating_mul(1000);
    let now_ms = switchboard_core::publication::now_ms();
    Some(Instant::now() + Duration::from_millis(exp_ms.saturating_sub(now_ms)))
}

pub async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
