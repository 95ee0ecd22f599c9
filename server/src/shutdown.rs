//! The process-wide draining signal: set once on SIGTERM or SIGINT, read by
//! readiness, long-lived responses (SSE replies) and WebSocket connections so
//! they can end cleanly before the grace period runs out.

use tokio::sync::watch;

/// Flips the server into draining; held by [`crate::Application`].
#[derive(Debug)]
pub struct Drain(watch::Sender<bool>);

/// A cheap, cloneable view of the draining signal.
#[derive(Debug, Clone)]
pub struct Draining(watch::Receiver<bool>);

impl Drain {
    #[must_use]
    pub fn new() -> (Self, Draining) {
        let (sender, receiver) = watch::channel(false);
        (Self(sender), Draining(receiver))
    }

    /// Starts draining; every [`Draining::started`] wakes.
    pub fn start(&self) {
        self.0.send_replace(true);
    }
}

impl Draining {
    /// Whether the server is draining now.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the server starts draining (at once if it has).
    pub async fn started(&mut self) {
        // The sender lives as long as the server: an error means it is gone, which is draining too.
        let _ = self.0.wait_for(|draining| *draining).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn started_wakes_every_view_once_draining_begins() {
        let (drain, draining) = Drain::new();
        let mut view = draining.clone();
        assert!(!draining.is_draining());
        let waiter = tokio::spawn(async move { view.started().await });
        drain.start();
        assert!(waiter.await.is_ok());
        assert!(draining.is_draining());
    }
}
