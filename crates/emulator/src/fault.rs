//! Faults: the ways a real provider (or the gateway in front of it) misbehaves.
//!
//! A fault applies to provider endpoints only (token, logout, me), never to /admin or
//! the authorize pages, and pre-empts the request: the provider never sees it.
//!
//! String form (`--fault`, `POST /admin/faults` with a JSON string):
//! `[SCOPE:]KIND[:ARG…]` where SCOPE is `all` (default), `flowaccount` (`fa`), `fedex`,
//! `iot`, or `flowaccount-api` (`fa-api`: FlowAccount's API calls such as
//! `/company/info` only, not its token endpoint); KIND is `500`/`502`/`503` (any 5xx), `429`, `hang`, `reset`, `malformed-json`,
//! `html` (502) or `html:STATUS`, `no-access-token`; ARGs are `retry=N` (429's
//! Retry-After, default 1) and `times=N` (only the next N matching requests).
//! Examples: `503`, `fedex:500`, `flowaccount:429:retry=5`, `iot:reset`, `hang`,
//! `malformed-json:times=1`, `html:502`, `no-access-token`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One armed fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub scope: FaultScope,
    pub kind: FaultKind,
    /// `None`: until cleared. `Some(n)`: the next `n` matching requests.
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    /// A fault on every provider until cleared.
    pub fn always(kind: FaultKind) -> Self {
        Fault {
            scope: FaultScope::All,
            kind,
            times: None,
        }
    }

    /// A fault on the next `times` requests to `scope`.
    pub fn next(scope: FaultScope, kind: FaultKind, times: u32) -> Self {
        Fault {
            scope,
            kind,
            times: Some(times),
        }
    }
}

/// Which provider's endpoints a fault hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultScope {
    #[default]
    All,
    /// FlowAccount's token endpoint and its API.
    #[serde(rename = "flowaccount", alias = "fa", alias = "flow_account")]
    FlowAccount,
    Fedex,
    Iot,
    /// FlowAccount's API calls only (`/company/info`): the token endpoint still works.
    #[serde(rename = "flowaccount_api", alias = "fa_api")]
    FlowAccountApi,
}

impl FaultScope {
    pub(crate) fn covers(self, provider: Provider) -> bool {
        match self {
            FaultScope::All => true,
            FaultScope::FlowAccount => {
                matches!(provider, Provider::FlowAccount | Provider::FlowAccountApi)
            }
            FaultScope::Fedex => provider == Provider::Fedex,
            FaultScope::Iot => provider == Provider::Iot,
            FaultScope::FlowAccountApi => provider == Provider::FlowAccountApi,
        }
    }
}

/// The emulated providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Provider {
    FlowAccount,
    Fedex,
    Iot,
    /// FlowAccount's API (`{api base}/company/info`), as opposed to its token endpoint.
    FlowAccountApi,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// 5xx with a body in the provider's own error shape.
    ServerError { status: u16 },
    /// 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// Accept the request and never answer (until shutdown).
    Hang,
    /// 200 `application/json` with a truncated body.
    MalformedJson,
    /// A gateway's HTML error page, `text/html`.
    HtmlBody { status: u16 },
    /// Close the TCP connection (RST) without any response.
    Reset,
    /// 200 JSON with `token_type` and `expires_in` but no `access_token`.
    MissingAccessToken,
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut parts = spec.trim().split(':').map(str::trim).peekable();
        let mut scope = FaultScope::All;
        if let Some(first) = parts.peek() {
            let named = match first.to_ascii_lowercase().as_str() {
                "all" => Some(FaultScope::All),
                "flowaccount" | "fa" => Some(FaultScope::FlowAccount),
                "fedex" => Some(FaultScope::Fedex),
                "iot" => Some(FaultScope::Iot),
                "flowaccount-api" | "fa-api" => Some(FaultScope::FlowAccountApi),
                _ => None,
            };
            if let Some(named) = named {
                scope = named;
                parts.next();
            }
        }
        let kind_word = parts
            .next()
            .filter(|w| !w.is_empty())
            .ok_or_else(|| format!("fault {spec:?}: missing kind"))?
            .to_ascii_lowercase();
        let mut times = None;
        let mut retry = None;
        let mut status_arg = None;
        for arg in parts {
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("fault {spec:?}: {arg:?} is not a number"))
            };
            match arg.split_once('=') {
                Some(("times", v)) => times = Some(number(v)? as u32),
                Some(("retry", v)) | Some(("retry_after", v)) => retry = Some(number(v)?),
                Some(("status", v)) => status_arg = Some(number(v)? as u16),
                None if !arg.is_empty() => status_arg = Some(number(arg)? as u16),
                _ => return Err(format!("fault {spec:?}: unknown argument {arg:?}")),
            }
        }
        let kind = match kind_word.as_str() {
            "429" | "rate-limit" | "rate-limited" => FaultKind::RateLimited {
                retry_after_secs: retry.unwrap_or(1),
            },
            "hang" => FaultKind::Hang,
            "reset" => FaultKind::Reset,
            "malformed-json" | "malformed" => FaultKind::MalformedJson,
            "html" => FaultKind::HtmlBody {
                status: status_arg.unwrap_or(502),
            },
            "no-access-token" | "missing-access-token" => FaultKind::MissingAccessToken,
            "server-error" => FaultKind::ServerError {
                status: status_arg.unwrap_or(500),
            },
            number => match number.parse::<u16>() {
                Ok(status) if (500..=599).contains(&status) => FaultKind::ServerError { status },
                _ => return Err(format!("fault {spec:?}: unknown kind {number:?}")),
            },
        };
        if let FaultKind::HtmlBody { status } | FaultKind::ServerError { status } = kind {
            if !(400..=599).contains(&status) {
                return Err(format!("fault {spec:?}: status {status} is not an error"));
            }
        }
        Ok(Fault { scope, kind, times })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            FaultScope::All => {}
            FaultScope::FlowAccount => f.write_str("flowaccount:")?,
            FaultScope::Fedex => f.write_str("fedex:")?,
            FaultScope::Iot => f.write_str("iot:")?,
            FaultScope::FlowAccountApi => f.write_str("flowaccount-api:")?,
        }
        match &self.kind {
            FaultKind::ServerError { status } => write!(f, "{status}")?,
            FaultKind::RateLimited { retry_after_secs } => {
                write!(f, "429:retry={retry_after_secs}")?
            }
            FaultKind::Hang => f.write_str("hang")?,
            FaultKind::MalformedJson => f.write_str("malformed-json")?,
            FaultKind::HtmlBody { status } => write!(f, "html:{status}")?,
            FaultKind::Reset => f.write_str("reset")?,
            FaultKind::MissingAccessToken => f.write_str("no-access-token")?,
        }
        if let Some(times) = self.times {
            write!(f, ":times={times}")?;
        }
        Ok(())
    }
}

/// The armed faults, first match wins; a counted fault disarms itself when spent.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    faults: Vec<Fault>,
}

impl FaultQueue {
    pub(crate) fn new(faults: Vec<Fault>) -> Self {
        FaultQueue {
            faults: faults.into_iter().filter(|f| f.times != Some(0)).collect(),
        }
    }

    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times != Some(0) {
            self.faults.push(fault);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        self.faults.clone()
    }

    /// Takes the fault for one request to `provider`, if any is armed.
    pub(crate) fn take(&mut self, provider: Provider) -> Option<FaultKind> {
        let index = self.faults.iter().position(|f| f.scope.covers(provider))?;
        let fault = &mut self.faults[index];
        let kind = fault.kind.clone();
        if let Some(left) = fault.times.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.faults.remove(index);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brief_examples_parse_and_print_back() {
        for spec in [
            "503",
            "500",
            "fedex:500",
            "flowaccount:429:retry=5",
            "iot:reset",
            "hang",
            "malformed-json:times=1",
            "html:502",
            "no-access-token",
            "flowaccount-api:500",
            "fa-api:html:502:times=1",
            "flowaccount-api:malformed-json",
        ] {
            let fault: Fault = spec.parse().expect(spec);
            let again: Fault = fault.to_string().parse().expect(spec);
            assert_eq!(fault, again, "{spec}");
        }
        let fault: Fault = "flowaccount:429:retry=5".parse().expect("parses");
        assert_eq!(fault.scope, FaultScope::FlowAccount);
        assert_eq!(
            fault.kind,
            FaultKind::RateLimited {
                retry_after_secs: 5
            }
        );
        let fault: Fault = "malformed-json:times=1".parse().expect("parses");
        assert_eq!(fault.times, Some(1));
        assert_eq!(fault.scope, FaultScope::All);
    }

    #[test]
    fn nonsense_is_refused() {
        for spec in [
            "",
            "fedex:",
            "200",
            "teapot",
            "html:200",
            "429:retry=x",
            "503:frob=1",
        ] {
            assert!(spec.parse::<Fault>().is_err(), "{spec:?} should not parse");
        }
    }

    #[test]
    fn json_form_is_tagged() {
        let fault: Fault = serde_json::from_str(
            r#"{"scope":"fedex","kind":{"type":"server_error","status":503},"times":2}"#,
        )
        .expect("json");
        assert_eq!(
            fault,
            Fault::next(FaultScope::Fedex, FaultKind::ServerError { status: 503 }, 2)
        );
        let fault: Fault = serde_json::from_str(r#"{"kind":{"type":"hang"}}"#).expect("json");
        assert_eq!(fault, Fault::always(FaultKind::Hang));
    }

    #[test]
    fn counted_faults_run_out_and_scopes_filter() {
        let mut queue = FaultQueue::new(vec![
            Fault::next(FaultScope::Fedex, FaultKind::Reset, 2),
            Fault::always(FaultKind::Hang),
        ]);
        assert_eq!(queue.take(Provider::Iot), Some(FaultKind::Hang));
        assert_eq!(queue.take(Provider::Fedex), Some(FaultKind::Reset));
        assert_eq!(queue.take(Provider::Fedex), Some(FaultKind::Reset));
        assert_eq!(queue.take(Provider::Fedex), Some(FaultKind::Hang));
        queue.clear();
        assert_eq!(queue.take(Provider::FlowAccount), None);
    }

    #[test]
    fn an_api_fault_spares_the_token_endpoint_and_a_flowaccount_fault_hits_both() {
        let mut queue = FaultQueue::new(vec![Fault::always(FaultKind::Reset)]);
        queue.clear();
        queue.push("flowaccount-api:500".parse().expect("parses"));
        assert_eq!(queue.take(Provider::FlowAccount), None);
        assert_eq!(
            queue.take(Provider::FlowAccountApi),
            Some(FaultKind::ServerError { status: 500 })
        );
        queue.clear();
        queue.push("flowaccount:503".parse().expect("parses"));
        assert!(queue.take(Provider::FlowAccountApi).is_some());
        assert!(queue.take(Provider::FlowAccount).is_some());
        assert_eq!(queue.take(Provider::Fedex), None);
    }
}
