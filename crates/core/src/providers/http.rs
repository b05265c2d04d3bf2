//! The one HTTP client every provider call goes through: rustls, timeouts, and never a
//! redirect (a token endpoint that redirects is misconfigured or hostile; following it
//! could post secrets elsewhere).

use std::time::Duration;

use crate::error::{Error, ErrorCode, Result};

/// Timeouts for provider calls.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A cheap-to-clone handle on one connection pool.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    pub fn new(settings: HttpSettings) -> Result<Self> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("Authdeck/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::new(ErrorCode::Internal, "The HTTP client could not be set up.")
                    .with_detail(e.to_string())
            })?;
        Ok(Self { inner })
    }

    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }
}
