//! Counters of every provider request and its outcome (`GET /admin/stats`).

use serde::{Deserialize, Serialize};

/// A snapshot of the counters. The top-level fields are totals over the providers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests to provider endpoints (token, logout, me), faulted or not.
    pub requests: u64,
    /// Requests that a fault answered instead of the provider.
    pub faults_injected: u64,
    /// Token-endpoint requests that reached a provider (all three).
    pub token_requests: u64,
    /// Successful refreshes (FlowAccount and IoT).
    pub refresh_ok: u64,
    /// `invalid_grant` answers (FlowAccount).
    pub invalid_grant: u64,
    /// Rotated-out refresh tokens presented again (FlowAccount).
    pub reuse_detected: u64,
    /// Grants revoked whole, after refresh-token or code reuse (FlowAccount).
    pub families_revoked: u64,
    pub flowaccount: FlowAccountStats,
    pub fedex: FedexStats,
    pub iot: IotStats,
}

impl Stats {
    /// Fills the totals from the per-provider counters.
    pub(crate) fn snapshot(&self) -> Stats {
        let mut out = self.clone();
        out.token_requests =
            self.flowaccount.token_requests + self.fedex.token_requests + self.iot.token_requests;
        out.refresh_ok = self.flowaccount.refresh_ok + self.iot.refresh_ok;
        out.invalid_grant = self.flowaccount.invalid_grant;
        out.reuse_detected = self.flowaccount.reuse_detected;
        out.families_revoked = self.flowaccount.families_revoked;
        out
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowAccountStats {
    pub authorize_requests: u64,
    /// Authorize requests answered with an error page or an error redirect.
    pub authorize_errors: u64,
    pub logins_failed: u64,
    pub approvals: u64,
    pub denials: u64,
    pub token_requests: u64,
    pub codes_exchanged: u64,
    /// Authorization codes presented a second time.
    pub code_reuse_detected: u64,
    pub refresh_ok: u64,
    pub invalid_grant: u64,
    pub invalid_client: u64,
    pub invalid_request: u64,
    pub unsupported_grant_type: u64,
    pub reuse_detected: u64,
    pub families_revoked: u64,
    pub me_ok: u64,
    pub me_unauthorized: u64,
    /// `GET {api base}/company/info` answered with the business's details.
    #[serde(default)]
    pub company_info_ok: u64,
    /// `GET {api base}/company/info` refused (unknown, expired or revoked token).
    #[serde(default)]
    pub company_info_unauthorized: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FedexStats {
    pub token_requests: u64,
    pub tokens_issued: u64,
    pub client_credentials: u64,
    pub csp_credentials: u64,
    pub client_pc_credentials: u64,
    /// 401 NOT.AUTHORIZED.ERROR answers.
    pub not_authorized: u64,
    /// 400 BAD.REQUEST.ERROR answers.
    pub bad_request: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IotStats {
    pub token_requests: u64,
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub refresh_ok: u64,
    pub refresh_failed: u64,
    /// Wrong or missing `Authorization: Basic` client id.
    pub invalid_client: u64,
    pub bad_request: u64,
    pub logouts: u64,
    pub logouts_failed: u64,
    pub me_ok: u64,
    pub me_unauthorized: u64,
    /// Device API: `GET /shadow/data` answered with the shadow.
    #[serde(default)]
    pub shadow_reads: u64,
    /// Device API: unknown device, wrong token or no `Authorization: Device …`.
    #[serde(default)]
    pub device_unauthorized: u64,
}
