//! Stopping without dropping an answer.
//!
//! A rotating refresh token is spent the moment the provider answers: if the process
//! stops between that answer and the commit, the grant is gone. So a stop (Ctrl-C,
//! SIGTERM, the app's quit) goes in two steps:
//!
//! 1. [`Shutdown::begin`]: from now on the [`Manager`](crate::manager::Manager) starts
//!    no provider call (each one asks [`Shutdown::begin_call`] first, which refuses);
//! 2. the front waits for [`Shutdown::idle`] — every call already made has been
//!    answered and its tokens committed — bounded by [`Shutdown::grace`], then exits.
//!
//! The front owns the signals (the CLI, the app shell); the core only counts.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, ErrorCode, Result};

/// Shared by a manager and the front that stops it. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    stopping: CancellationToken,
    calls: TaskTracker,
}

/// One provider call and the commit of its answer; the stop waits for it to drop.
#[derive(Debug)]
pub struct InFlight {
    _token: TaskTrackerToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start no provider call from now on. Idempotent.
    pub fn begin(&self) {
        self.stopping.cancel();
        self.calls.close();
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Resolves once [`Self::begin`] was called.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// Provider calls made and not yet committed.
    pub fn in_flight(&self) -> usize {
        self.calls.len()
    }

    /// Resolves once a stop has begun and every call in flight is committed (or failed).
    pub async fn idle(&self) {
        self.calls.wait().await
    }

    /// How long a front should wait for [`Self::idle`]: the longest a provider call can
    /// take (`request_timeout`), plus the journal and keyring writes after it.
    pub fn grace(request_timeout: Duration) -> Duration {
        request_timeout + Duration::from_secs(15)
    }

    /// Permission for one provider call; hold the guard until its answer is committed.
    /// Refused once a stop has begun.
    pub fn begin_call(&self) -> Result<InFlight> {
        // Counted first, checked second: a stop that begins in between sees this call
        // (and waits for it) or this call sees the stop.
        let token = self.calls.token();
        if self.is_stopping() {
            return Err(stopping());
        }
        Ok(InFlight { _token: token })
    }
}

/// The error of work not started because Authdeck is stopping.
pub fn stopping() -> Error {
    Error::new(
        ErrorCode::Busy,
        "Authdeck is stopping: this was not started (nothing changed).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_refuses_new_calls_and_waits_for_those_in_flight() {
        let shutdown = Shutdown::new();
        let call = shutdown.begin_call().unwrap();
        assert_eq!(shutdown.in_flight(), 1);
        shutdown.begin();
        assert!(shutdown.is_stopping());
        assert_eq!(shutdown.begin_call().unwrap_err().code, ErrorCode::Busy);
        assert_eq!(shutdown.in_flight(), 1, "a refused call is not counted");
        let idle = tokio::time::timeout(Duration::from_millis(50), shutdown.idle()).await;
        assert!(idle.is_err(), "not idle while a call is in flight");
        drop(call);
        tokio::time::timeout(Duration::from_secs(5), shutdown.idle())
            .await
            .expect("idle once the call is committed");
    }
}
