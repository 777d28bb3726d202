//! What to do after a push attempt (RFC 8030 §5 and §8.4), as a plain
//! function of the answer, the attempt count and the message's remaining
//! TTL: delivered, subscription gone, retry later, or give up.

use super::client::{Answer, SendError};

/// Most attempts per message.
pub(crate) const MAX_ATTEMPTS: u32 = 6;
/// First backoff; doubles each attempt.
const BASE_BACKOFF: u64 = 2;
/// Longest wait we honour from `Retry-After` or backoff.
const MAX_BACKOFF: u64 = 600;

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx: the push service has it.
    Delivered,
    /// 404/410: the subscription is gone; remove it.
    Gone,
    /// 429/5xx/network: try again after this many seconds.
    Retry(u64),
    /// Give up; the label says why (`rejected`, `expired`, `failed`, `forbidden`).
    Drop(&'static str),
}

impl Verdict {
    /// The `outcome` label of `botcall_push_messages_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Gone => "gone",
            Verdict::Retry(_) => "retried",
            Verdict::Drop(l) => l,
        }
    }
}

/// Judges attempt number `attempt` (1-based) that ended `elapsed` seconds
/// after the message was created, for a message that lives `ttl` seconds.
pub(crate) fn judge(
    result: &Result<Answer, SendError>,
    attempt: u32,
    elapsed: u64,
    ttl: u64,
) -> Verdict {
    let retry_after = match result {
        Ok(a) if (200..300).contains(&a.status) => return Verdict::Delivered,
        Ok(a) if a.status == 404 || a.status == 410 => return Verdict::Gone,
        Ok(a) if a.status == 429 || a.status >= 500 => a.retry_after,
        // 400 (bad request), 401/403 (VAPID refused), 413 (too large):
        // sending the same again would fail the same way.
        Ok(_) => return Verdict::Drop("rejected"),
        Err(SendError::Forbidden(_)) => return Verdict::Drop("forbidden"),
        Err(SendError::NoTls) => return Verdict::Drop("failed"),
        Err(_) => None,
    };
    if attempt >= MAX_ATTEMPTS {
        return Verdict::Drop("expired");
    }
    let backoff = BASE_BACKOFF
        .saturating_mul(1 << (attempt.saturating_sub(1)).min(20))
        .min(MAX_BACKOFF);
    let wait = retry_after.unwrap_or(backoff).clamp(1, MAX_BACKOFF);
    if elapsed.saturating_add(wait) >= ttl {
        // The push service would drop it anyway: the person no longer needs it.
        return Verdict::Drop("expired");
    }
    Verdict::Retry(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(status: u16, retry_after: Option<u64>) -> Result<Answer, SendError> {
        Ok(Answer {
            status,
            retry_after,
        })
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(&ans(201, None), 1, 0, 60), Verdict::Delivered);
        assert_eq!(judge(&ans(410, None), 1, 0, 60), Verdict::Gone);
        assert_eq!(judge(&ans(404, None), 1, 0, 60), Verdict::Gone);
        assert_eq!(judge(&ans(429, Some(3)), 1, 0, 60), Verdict::Retry(3));
        assert_eq!(judge(&ans(503, None), 1, 0, 60), Verdict::Retry(2));
        assert_eq!(judge(&ans(503, None), 3, 10, 60), Verdict::Retry(8));
        assert_eq!(judge(&Err(SendError::Timeout), 2, 0, 60), Verdict::Retry(4));
        // Retry-After beyond the TTL: not worth it.
        assert_eq!(
            judge(&ans(429, Some(120)), 1, 0, 60),
            Verdict::Drop("expired")
        );
        assert_eq!(judge(&ans(500, None), 1, 59, 60), Verdict::Drop("expired"));
        assert_eq!(
            judge(&ans(500, None), MAX_ATTEMPTS, 0, 3600),
            Verdict::Drop("expired")
        );
        assert_eq!(judge(&ans(403, None), 1, 0, 60), Verdict::Drop("rejected"));
        assert_eq!(judge(&ans(413, None), 1, 0, 60), Verdict::Drop("rejected"));
        assert_eq!(
            judge(
                &Err(SendError::Forbidden("10.0.0.1".parse().unwrap())),
                1,
                0,
                60
            ),
            Verdict::Drop("forbidden")
        );
        // A zero Retry-After still waits a second.
        assert_eq!(judge(&ans(429, Some(0)), 1, 0, 60), Verdict::Retry(1));
    }
}
