//! The per-user request budget shared by chat and ChatKit.

use parley_kernel::UserId;

/// The outcome of spending one request of a user's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Requests the budget holds.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the budget is whole again.
    pub reset_seconds: u64,
    /// When refused: seconds until one more request is allowed.
    pub retry_after_seconds: u64,
}

/// Keeps each user's request budget: in this process, or shared by every
/// instance (Redis), hence async.
#[cfg_attr(test, mockall::automock)]
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Spends one request of `user`'s budget, if any is left. A shared budget
    /// that cannot be reached answers from a local one rather than failing.
    async fn check(&self, user: UserId) -> RateDecision;
}
