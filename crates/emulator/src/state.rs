//! The emulator's one shared state: the clock, the fault queue, the counters and each
//! provider's store, behind one mutex (never held across an `.await`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;

use crate::config::EmulatorConfig;
use crate::fault::{FaultQueue, Provider};
use crate::stats::Stats;
use crate::{fedex, flowaccount, iot};

pub(crate) type AppState = Arc<Shared>;

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// HS256 key for the JWTs the FedEx and IoT stand-ins sign; new on every start.
    pub(crate) jwt_key: [u8; 32],
}

pub(crate) struct Inner {
    /// Emulator time = real time + this offset (`advance_clock`).
    pub(crate) clock_offset: chrono::Duration,
    pub(crate) latency: Duration,
    pub(crate) faults: FaultQueue,
    pub(crate) stats: Stats,
    pub(crate) flowaccount: flowaccount::Store,
    pub(crate) fedex: fedex::Store,
    pub(crate) iot: iot::Store,
}

impl Inner {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }
}

impl Shared {
    pub(crate) fn new(config: EmulatorConfig) -> AppState {
        let mut jwt_key = [0u8; 32];
        rand::rng().fill_bytes(&mut jwt_key);
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                clock_offset: chrono::Duration::zero(),
                latency: config.latency,
                faults: FaultQueue::new(config.faults),
                stats: Stats::default(),
                flowaccount: flowaccount::Store::new(config.flowaccount),
                fedex: fedex::Store::new(config.fedex),
                iot: iot::Store::new(config.iot),
            }),
            jwt_key,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the whole emulator down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The door every provider request (token, logout, me) goes through: counts it, waits
/// the configured latency, and answers with the armed fault if one matches.
pub(crate) async fn gate(state: &AppState, provider: Provider) -> Option<Response> {
    let (latency, fault) = {
        let mut inner = state.lock();
        inner.stats.requests += 1;
        let fault = inner.faults.take(provider);
        if fault.is_some() {
            inner.stats.faults_injected += 1;
        }
        (inner.latency, fault)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let kind = fault?;
    tracing::debug!(?provider, ?kind, "fault injected");
    Some(crate::fault_response::respond(provider, kind).await)
}

/// An opaque random token: `bytes` bytes from the OS-seeded CSPRNG, base64url.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}
