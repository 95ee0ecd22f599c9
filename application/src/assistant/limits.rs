//! The bounds on one assistant reply, and the cut-off (deadline or stop
//! signal) that every wait on the model races against.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either, select};

/// How far one reply may go. They apply to every model, the offline one too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Tool calls run per reply across all rounds; later ones are answered
    /// to the model as errors, not run.
    pub max_tool_calls: usize,
    /// Characters of reply text kept; past it the reply ends.
    pub max_reply_chars: usize,
    /// Bytes of arguments one tool call may carry; past it the reply ends.
    pub max_argument_bytes: usize,
    /// The whole reply, every model turn and tool included, ends by then.
    pub reply_timeout: Duration,
    /// Characters of history (system prompt included) sent per model turn.
    pub context_chars: usize,
    /// Which changes wait for the user's approval (`ASSISTANT_APPROVAL`).
    pub approval: parley_tasks::Approval,
}

impl ReplyLimits {
    /// The contract's fixed caps: 8,000 characters of text, 4 KiB of arguments.
    pub const REPLY_CHARS: usize = 8000;
    pub const ARGUMENT_BYTES: usize = 4096;
}

impl Default for ReplyLimits {
    fn default() -> Self {
        Self {
            max_tool_calls: 10,
            max_reply_chars: Self::REPLY_CHARS,
            max_argument_bytes: Self::ARGUMENT_BYTES,
            reply_timeout: Duration::from_secs(120),
            context_chars: 24_000,
            approval: parley_tasks::Approval::default(),
        }
    }
}

/// Why a reply ended before the model finished it. What it produced so far
/// is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyCut {
    #[error("the model kept calling tools after its tool-call budget was spent")]
    ToolCalls,
    #[error("the reply text passed its length cap")]
    Length,
    #[error("a tool call's arguments passed their size cap")]
    Arguments,
    #[error("the reply passed its deadline")]
    Deadline,
    #[error("the reply was stopped because the server is shutting down")]
    Stopped,
}

/// Fires once, at the deadline or when the stop signal resolves, whichever
/// comes first; it is never polled again after it fired.
pub(super) struct Cutoff {
    pending: Option<BoxFuture<'static, ReplyCut>>,
    fired: Option<ReplyCut>,
}

impl Cutoff {
    pub(super) fn new(deadline: BoxFuture<'static, ()>, stop: BoxFuture<'static, ()>) -> Self {
        let pending = async move {
            match select(deadline, stop).await {
                Either::Left(_) => ReplyCut::Deadline,
                Either::Right(_) => ReplyCut::Stopped,
            }
        }
        .boxed();
        Self { pending: Some(pending), fired: None }
    }

    /// The cut, if it has fired by now.
    pub(super) fn check(&mut self) -> Option<ReplyCut> {
        if self.fired.is_none()
            && let Some(pending) = self.pending.as_mut()
            && let Some(cut) = pending.as_mut().now_or_never()
        {
            self.fire(cut);
        }
        self.fired
    }

    /// `work`'s output, unless the cut fires first.
    pub(super) async fn race<F: Future + Unpin>(&mut self, work: F) -> Result<F::Output, ReplyCut> {
        if let Some(cut) = self.check() {
            return Err(cut);
        }
        let Some(pending) = self.pending.as_mut() else {
            return Err(self.fired.unwrap_or(ReplyCut::Deadline));
        };
        match select(work, pending.as_mut()).await {
            Either::Left((output, _)) => Ok(output),
            Either::Right((cut, _)) => {
                self.fire(cut);
                Err(cut)
            }
        }
    }

    fn fire(&mut self, cut: ReplyCut) {
        self.fired = Some(cut);
        self.pending = None;
    }
}
