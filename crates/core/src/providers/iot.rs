//! The IoT platform (NEXPIE / NETPIE family): password grant, JWT user tokens, and a
//! server-side logout (PROVIDERS.md §3).
//!
//! 1. [`login`]: username + password (used once, never stored) for tokens.
//! 2. [`refresh`]: refresh token + `userid` for new tokens.
//! 3. [`logout`]: revoke both tokens; local secrets go only after the server said yes.
//!
//! `expires_in` here is an expiry **timestamp**, not a duration [seed]; real servers
//! vary, so [`normalise_expires_in`] accepts all three forms and the JWT's `exp` is used
//! to check it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::model::{Expiry, ExpirySource, IotBasicAuth, IotBodyEncoding, Provider};
use crate::providers::error;
use crate::providers::http::{BodyEncoding, FormPost, TokenJson};
use crate::providers::json::number_of;
use crate::providers::Operation;
use crate::providers::{jwt, HttpClient, IssuedTokens};
use crate::secret::{AnySecret, Password, RefreshToken};

/// `expires_in` and the JWT `exp` may differ by this much before we say so.
pub const EXPIRY_TOLERANCE: Duration = Duration::minutes(5);

/// One IoT application client at one deployment.
#[derive(Debug, Clone, Copy)]
pub struct IotClient<'a> {
    pub token_url: &'a Url,
    pub logout_url: &'a Url,
    pub client_id: &'a str,
    pub basic: IotBasicAuth,
    pub body: IotBodyEncoding,
}

impl IotClient<'_> {
    /// `Authorization: Basic <Application Client ID>` [seed], raw by default; the RFC
    /// form is base64 of `urlencode(id) + ":"` (RFC 6749 §2.3.1; no client secret).
    fn authorization(&self) -> String {
        match self.basic {
            IotBasicAuth::Raw => format!("Basic {}", self.client_id),
            IotBasicAuth::Base64 => {
                let id: String =
                    url::form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
                format!("Basic {}", STANDARD.encode(format!("{id}:")))
            }
        }
    }

    fn post<'a>(
        &'a self,
        url: &'a Url,
        op: Operation,
        fields: Vec<(&'static str, &'a str)>,
        secrets: Vec<&'a dyn AnySecret>,
    ) -> FormPost<'a> {
        FormPost {
            provider: Provider::Iot,
            op,
            url,
            authorization: Some(self.authorization()),
            encoding: match self.body {
                IotBodyEncoding::Form => BodyEncoding::Form,
                IotBodyEncoding::Multipart => BodyEncoding::Multipart,
            },
            fields,
            secrets,
        }
    }
}

/// Step 1: `grant_type=password`, `username`, `password`. The password goes into this
/// one request body and nowhere else (RFC 6749 §4.3.2).
pub async fn login(
    http: &HttpClient,
    c: &IotClient<'_>,
    username: &str,
    password: &Password,
    now: DateTime<Utc>,
) -> Result<IssuedTokens> {
    let fields = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password.expose()),
    ];
    let json = c
        .post(
            c.token_url,
            Operation::PasswordLogin,
            fields,
            vec![password],
        )
        .token(http)
        .await?;
    Ok(issued(&json, now, None))
}

/// Step 2: `grant_type=refresh_token`, `refresh_token`, `userid`.
pub async fn refresh(
    http: &HttpClient,
    c: &IotClient<'_>,
    refresh_token: &RefreshToken,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<IssuedTokens> {
    let fields = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
        ("userid", user_id),
    ];
    let json = c
        .post(c.token_url, Operation::Refresh, fields, vec![refresh_token])
        .token(http)
        .await?;
    Ok(issued(&json, now, Some(user_id)))
}

/// Step 3: `POST {auth_url}/user/logout` with `refresh_token`. Succeeds only when the
/// HTTP status is 2xx **and** the body's `status` (if any) is 2xx **and** its `error` is
/// empty. The body's `result` is the revoked token: it is never read out.
pub async fn logout(
    http: &HttpClient,
    c: &IotClient<'_>,
    refresh_token: &RefreshToken,
) -> Result<()> {
    let post = c.post(
        c.logout_url,
        Operation::Logout,
        vec![("refresh_token", refresh_token.expose())],
        vec![refresh_token],
    );
    let answer = post.send(http).await?;
    let text = String::from_utf8_lossy(&answer.body);
    if text.trim().is_empty() {
        return Ok(());
    }
    let Ok(body) = serde_json::from_str::<Value>(text.trim()) else {
        // A 2xx that is not JSON (a captive portal, a proxy page) is not a confirmation.
        return Err(Error::new(
            ErrorCode::InvalidResponse,
            "The IoT platform did not confirm the logout: try again.",
        )
        .with_detail(format!("HTTP {}; logout answer is not JSON", answer.status)));
    };
    match error::embedded_error_status(&body) {
        None => Ok(()),
        Some(status) => Err(error::from_response(
            Provider::Iot,
            Operation::Logout,
            status,
            None,
            &answer.body,
            &[refresh_token],
        )),
    }
}

/// `expires_in` as sent: a number or numeric string. Above 1e12 it is epoch
/// milliseconds, above 1e9 epoch seconds, otherwise seconds from `now`.
pub fn normalise_expires_in(value: &Value, now: DateTime<Utc>) -> Option<Expiry> {
    let n = number_of(value)?;
    if n < 0.0 {
        return None;
    }
    if n > 1e12 {
        Some(Expiry::new(
            DateTime::from_timestamp_millis(n.round() as i64)?,
            ExpirySource::EpochMillis,
        ))
    } else if n > 1e9 {
        Some(Expiry::new(
            DateTime::from_timestamp_millis((n * 1000.0).round() as i64)?,
            ExpirySource::EpochSeconds,
        ))
    } else {
        Expiry::in_seconds(now, n, ExpirySource::RelativeSeconds)
    }
}

/// Picks the access-token expiry from `expires_in` and the JWT's `exp`: when both exist
/// and differ by more than [`EXPIRY_TOLERANCE`], the earlier wins and a warning says so.
fn reconcile(
    expires_in: Option<Expiry>,
    jwt_exp: Option<DateTime<Utc>>,
    warnings: &mut Vec<String>,
) -> Option<Expiry> {
    match (expires_in, jwt_exp) {
        (None, None) => None,
        (None, Some(exp)) => Some(Expiry::new(exp, ExpirySource::JwtExp)),
        (Some(e), None) => Some(e),
        (Some(e), Some(exp)) => {
            let gap = (e.at - exp).abs();
            if gap <= EXPIRY_TOLERANCE {
                return Some(e);
            }
            warnings.push(format!(
                "expires_in ({}, read as {}) and the access token's exp ({}) differ by {} seconds; using the earlier.",
                e.at.to_rfc3339(),
                source_name(e.source),
                exp.to_rfc3339(),
                gap.num_seconds()
            ));
            if exp < e.at {
                Some(Expiry::new(exp, ExpirySource::JwtExp))
            } else {
                Some(e)
            }
        }
    }
}

fn source_name(s: ExpirySource) -> &'static str {
    match s {
        ExpirySource::RelativeSeconds => "seconds from now",
        ExpirySource::EpochSeconds => "epoch seconds",
        ExpirySource::EpochMillis => "epoch milliseconds",
        ExpirySource::JwtExp => "JWT exp",
        ExpirySource::Estimated => "an estimate",
    }
}

/// The user id: `userinfo`'s `id`, `userid`, `user_id` or `_id`, else the JWT's
/// `ctx.owner` [guess, PROVIDERS.md §3].
fn user_id_of(userinfo: Option<&Value>, jwt: Option<&crate::model::JwtSummary>) -> Option<String> {
    let from_userinfo = userinfo.and_then(|u| {
        ["id", "userid", "user_id", "_id"]
            .into_iter()
            .find_map(|k| match u.get(k)? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    });
    from_userinfo.or_else(|| jwt.and_then(jwt::ctx_owner))
}

/// The response of steps 1 and 2: `access_token` (JWT), `token_type`, `expires_in`,
/// `refresh_token`, `scope`, `userinfo` (login only).
pub(crate) fn issued(
    json: &TokenJson,
    now: DateTime<Utc>,
    sent_user_id: Option<&str>,
) -> IssuedTokens {
    let access_token = json.access_token();
    let jwt = jwt::decode(access_token.expose());
    let mut warnings = Vec::new();
    let expires_in = json
        .value("expires_in")
        .and_then(|v| normalise_expires_in(v, now));
    let access_expires = reconcile(expires_in, jwt.as_ref().and_then(jwt::exp), &mut warnings);
    let userinfo = json.value("userinfo").filter(|v| v.is_object()).cloned();
    let user_id =
        user_id_of(userinfo.as_ref(), jwt.as_ref()).or_else(|| sent_user_id.map(str::to_owned));
    IssuedTokens {
        access_token,
        refresh_token: json.refresh_token(),
        token_type: json.string("token_type"),
        scope: json.string("scope"),
        access_expires,
        // The platform does not say how long a refresh token lives.
        refresh_expires: None,
        support_code: None,
        userinfo,
        user_id,
        jwt,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
    }

    #[test]
    fn expires_in_epoch_millis() {
        let at = now() + Duration::days(1);
        let e = normalise_expires_in(&json!(at.timestamp_millis()), now()).unwrap();
        assert_eq!(e, Expiry::new(at, ExpirySource::EpochMillis));
    }

    #[test]
    fn expires_in_epoch_seconds() {
        let at = now() + Duration::days(1);
        let e = normalise_expires_in(&json!(at.timestamp()), now()).unwrap();
        assert_eq!(e, Expiry::new(at, ExpirySource::EpochSeconds));
    }

    #[test]
    fn expires_in_relative_seconds() {
        let e = normalise_expires_in(&json!(86400), now()).unwrap();
        assert_eq!(
            e,
            Expiry::new(now() + Duration::days(1), ExpirySource::RelativeSeconds)
        );
    }

    #[test]
    fn expires_in_as_string_and_junk() {
        let at = now() + Duration::hours(2);
        let e = normalise_expires_in(&json!(at.timestamp().to_string()), now()).unwrap();
        assert_eq!(e, Expiry::new(at, ExpirySource::EpochSeconds));
        let e = normalise_expires_in(&json!(" 3600 "), now()).unwrap();
        assert_eq!(e.source, ExpirySource::RelativeSeconds);
        for junk in [
            json!("tomorrow"),
            json!(null),
            json!(-5),
            json!({"a":1}),
            json!(true),
        ] {
            assert_eq!(normalise_expires_in(&junk, now()), None, "{junk}");
        }
    }

    #[test]
    fn jwt_exp_agreeing_keeps_expires_in() {
        let at = now() + Duration::days(1);
        let mut w = Vec::new();
        let e = reconcile(
            Some(Expiry::new(at, ExpirySource::EpochSeconds)),
            Some(at + Duration::minutes(4)),
            &mut w,
        );
        assert_eq!(e, Some(Expiry::new(at, ExpirySource::EpochSeconds)));
        assert!(w.is_empty());
    }

    #[test]
    fn jwt_exp_mismatch_uses_the_earlier_and_warns() {
        let exp = now() + Duration::hours(1);
        let mut w = Vec::new();
        // expires_in says a day, the token says an hour: trust the hour.
        let e = reconcile(
            Some(Expiry::new(
                now() + Duration::days(1),
                ExpirySource::RelativeSeconds,
            )),
            Some(exp),
            &mut w,
        );
        assert_eq!(e, Some(Expiry::new(exp, ExpirySource::JwtExp)));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("differ by"), "{}", w[0]);
        // The other way round: expires_in is earlier.
        let mut w = Vec::new();
        let early = Expiry::new(now() + Duration::minutes(10), ExpirySource::EpochMillis);
        assert_eq!(reconcile(Some(early), Some(exp), &mut w), Some(early));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn missing_expires_in_falls_back_to_jwt_exp() {
        let exp = now() + Duration::hours(3);
        let mut w = Vec::new();
        assert_eq!(
            reconcile(None, Some(exp), &mut w),
            Some(Expiry::new(exp, ExpirySource::JwtExp))
        );
        assert_eq!(reconcile(None, None, &mut w), None);
        assert!(w.is_empty());
    }

    #[test]
    fn issued_parses_a_login_answer() {
        let exp = now() + Duration::days(1);
        let access = jwt::tests::make(&json!({
            "ctx": {"owner": "U974814773204"}, "iat": now().timestamp(),
            "exp": exp.timestamp(), "expireIn": 86400, "iss": "cer:usertoken"
        }));
        let map = json!({
            "access_token": access, "token_type": "Bearer",
            "expires_in": exp.timestamp_millis().to_string(),
            "refresh_token": "rt-1", "scope": "", "userinfo": {"username": "operator"},
            "extra": [1, 2, 3]
        });
        let Value::Object(map) = map else {
            unreachable!()
        };
        let t = issued(&TokenJson::for_tests(map), now(), None);
        assert_eq!(
            t.access_expires,
            Some(Expiry::new(exp, ExpirySource::EpochMillis))
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.user_id.as_deref(), Some("U974814773204"));
        assert_eq!(t.token_type.as_deref(), Some("Bearer"));
        assert_eq!(t.scope, None);
        assert_eq!(t.refresh_token.unwrap().expose(), "rt-1");
        assert_eq!(t.userinfo.unwrap()["username"], "operator");
        assert_eq!(t.jwt.unwrap().claims["iss"], "cer:usertoken");
    }

    #[test]
    fn user_id_prefers_userinfo_in_order() {
        let u = json!({"_id": "d", "user_id": "c", "userid": "b"});
        assert_eq!(user_id_of(Some(&u), None).as_deref(), Some("b"));
        let u = json!({"id": 42, "userid": "b"});
        assert_eq!(user_id_of(Some(&u), None).as_deref(), Some("42"));
        let u = json!({"id": "", "_id": "x"});
        assert_eq!(user_id_of(Some(&u), None).as_deref(), Some("x"));
        assert_eq!(user_id_of(None, None), None);
    }

    #[test]
    fn basic_header_raw_or_rfc_form() {
        let url = Url::parse("https://authx.example/oauth/token").unwrap();
        let mut c = IotClient {
            token_url: &url,
            logout_url: &url,
            client_id: "my app:1",
            basic: IotBasicAuth::Raw,
            body: IotBodyEncoding::Form,
        };
        assert_eq!(c.authorization(), "Basic my app:1");
        c.basic = IotBasicAuth::Base64;
        // urlencode("my app:1") = "my+app%3A1", then ":" and base64.
        assert_eq!(
            c.authorization(),
            format!("Basic {}", STANDARD.encode("my+app%3A1:"))
        );
    }
}
