//! FlowAccount: OAuth 2.0 authorization code flow (PROVIDERS.md §1).
//!
//! 1. [`authorize_url`]: where the system browser goes.
//! 2. [`exchange_code`]: the code from the redirect, for tokens.
//! 3. [`refresh`]: a rotated refresh token, for new tokens. Only the newest refresh
//!    token works, and it lives about a day from the latest token request.
//! 4. [`company_info`]: who the access token belongs to (item 9), read-only.

use chrono::{DateTime, Duration, Utc};
use url::Url;

use serde_json::Value;

use crate::error::{Error, ErrorCode, Result};
use crate::model::{CompanyInfo, Expiry, ExpirySource, Provider};
use crate::providers::http::{get_with_bearer, BodyEncoding, FormPost, TokenJson};
use crate::providers::json::string_of;
use crate::providers::redact::{truncate, Redactor};
use crate::providers::{jwt, presets, HttpClient, IssuedTokens, Operation};
use crate::secret::{
    AccessToken, AnySecret, AuthorizationCode, ClientSecret, PkceVerifier, RefreshToken,
};

/// Without `offline_access` no refresh token is issued [seed §"การขอ authorization code"].
pub const SCOPE: &str = "flowaccount-api offline_access";

/// A refresh token lives "about 1 day from the latest token request" [seed]; the
/// provider does not say when, so this is an estimate.
pub const REFRESH_WINDOW: Duration = Duration::days(1);

/// The authorize URL with the query of step 1: `response_type=code`, the scope,
/// `client_id`, `redirect_uri` (exactly as registered), `state`, and a PKCE S256
/// challenge when the client has PKCE switched on. Query parameters already on
/// `authorize_url` are kept.
pub fn authorize_url(
    authorize_url: &Url,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    code_challenge: Option<&str>,
) -> Url {
    let mut url = authorize_url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("scope", SCOPE)
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        if let Some(challenge) = code_challenge {
            q.append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    url
}

/// Step 3: trade the authorization code (150 minutes, single use) for tokens.
#[allow(clippy::too_many_arguments)] // one argument per form field of the seed
pub async fn exchange_code(
    http: &HttpClient,
    token_url: &Url,
    client_id: &str,
    client_secret: &ClientSecret,
    code: &AuthorizationCode,
    redirect_uri: &str,
    code_verifier: Option<&PkceVerifier>,
    now: DateTime<Utc>,
) -> Result<IssuedTokens> {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", redirect_uri),
        ("client_id", client_id),
        ("client_secret", client_secret.expose()),
    ];
    let mut secrets: Vec<&dyn AnySecret> = vec![client_secret, code];
    if let Some(verifier) = code_verifier {
        fields.push(("code_verifier", verifier.expose()));
        secrets.push(verifier);
    }
    let json = post(token_url, Operation::AuthorizationCode, fields, secrets)
        .token(http)
        .await?;
    Ok(issued(&json, now))
}

/// Step 4: a new access token and a **new** refresh token; the caller must store the
/// new refresh token before anything else uses the new access token.
pub async fn refresh(
    http: &HttpClient,
    token_url: &Url,
    client_id: &str,
    client_secret: &ClientSecret,
    refresh_token: &RefreshToken,
    now: DateTime<Utc>,
) -> Result<IssuedTokens> {
    let fields = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
        ("client_id", client_id),
        ("client_secret", client_secret.expose()),
    ];
    let json = post(
        token_url,
        Operation::Refresh,
        fields,
        vec![client_secret, refresh_token],
    )
    .token(http)
    .await?;
    let mut tokens = issued(&json, now);
    // The window slides with every token request, even one that returned no new
    // refresh token (the old one then stays in use, RFC 6749 §6).
    tokens.refresh_expires = Some(refresh_expiry(now));
    Ok(tokens)
}

fn post<'a>(
    url: &'a Url,
    op: Operation,
    fields: Vec<(&'static str, &'a str)>,
    secrets: Vec<&'a dyn AnySecret>,
) -> FormPost<'a> {
    FormPost {
        provider: Provider::FlowAccount,
        op,
        url,
        authorization: None,
        encoding: BodyEncoding::Form,
        fields,
        secrets,
    }
}

/// The response of steps 3 and 4: `access_token`, `expires_in` (relative seconds),
/// `token_type`, `supportCode` (absent from the official SDK schema: lenient),
/// `refresh_token`, `scope`.
pub(crate) fn issued(json: &TokenJson, now: DateTime<Utc>) -> IssuedTokens {
    let access_token = json.access_token();
    let refresh_token = json.refresh_token();
    IssuedTokens {
        jwt: jwt::decode(access_token.expose()),
        refresh_expires: refresh_token.as_ref().map(|_| refresh_expiry(now)),
        access_token,
        refresh_token,
        token_type: json.string("token_type"),
        scope: json.string("scope"),
        access_expires: json.relative_expiry(now),
        support_code: ["supportCode", "support_code", "SupportCode"]
            .into_iter()
            .find_map(|k| json.string(k)),
        userinfo: None,
        user_id: None,
        warnings: Vec::new(),
    }
}

/// Item 9: `GET {api base}/company/info` with `Authorization: Bearer <access token>`.
/// The SDK's answer is `{status, message, code, data: {companyId, compnayName,
/// companyTaxId, companyBranch, …}}`; a bare object is read too, both spellings of the
/// name are accepted, and every field is optional.
pub async fn company_info(
    http: &HttpClient,
    api_base: &Url,
    access_token: &AccessToken,
    now: DateTime<Utc>,
) -> Result<CompanyInfo> {
    let url = presets::api_url(api_base, "company/info");
    let answer = get_with_bearer(
        http,
        Provider::FlowAccount,
        Operation::CompanyInfo,
        &url,
        access_token,
    )
    .await?;
    parse_company_info(answer.status, &answer.body, access_token, now)
}

/// The longest company field kept, in characters.
const COMPANY_FIELD_CHARS: usize = 200;

/// Parses a 2xx `/company/info` body (pure: tested on its own). Every kept string passes
/// the [`Redactor`] (the access token redacted if echoed, escapes and controls removed).
pub(crate) fn parse_company_info(
    status: u16,
    body: &[u8],
    access_token: &AccessToken,
    now: DateTime<Utc>,
) -> Result<CompanyInfo> {
    let redactor = Redactor::new(&[access_token], Vec::new());
    let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return Err(Error::new(
            ErrorCode::InvalidResponse,
            "FlowAccount's company details were not readable (not JSON): try again later.",
        )
        .with_detail(format!(
            "HTTP {status}; not JSON: {}",
            redactor.excerpt(&text)
        )));
    };
    // `status: false` in a 2xx: the API's own refusal.
    if top.get("status") == Some(&Value::Bool(false)) {
        let said = top
            .get("message")
            .and_then(string_of)
            .map(|m| redactor.excerpt(&m))
            .unwrap_or_default();
        return Err(Error::new(
            ErrorCode::ProviderError,
            "FlowAccount would not give this business's details: try again later.",
        )
        .with_detail(format!("HTTP {status}; status false; message: {said}")));
    }
    let data = match top.get("data") {
        Some(Value::Object(data)) => data,
        _ => &top,
    };
    let field = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| data.get(*k).and_then(string_of))
            .map(|v| truncate(redactor.clean(&v).trim(), COMPANY_FIELD_CHARS))
            .filter(|v| !v.is_empty())
    };
    let info = CompanyInfo {
        id: field(&["companyId", "CompanyId", "company_id"]),
        name: field(&[
            "compnayName",
            "companyName",
            "CompnayName",
            "CompanyName",
            "companyNameEn",
        ]),
        tax_id: field(&["companyTaxId", "CompanyTaxId", "taxId"]),
        branch: field(&["companyBranch", "CompanyBranch", "companyBranchEn"]),
        at: now,
    };
    if info.id.is_none() && info.name.is_none() && info.tax_id.is_none() && info.branch.is_none() {
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        return Err(Error::new(
            ErrorCode::InvalidResponse,
            "FlowAccount answered without any of the business's details: try again later.",
        )
        .with_detail(format!(
            "HTTP {status}; fields: [{}]",
            redactor.excerpt(&keys.join(", "))
        )));
    }
    Ok(info)
}

fn refresh_expiry(now: DateTime<Utc>) -> Expiry {
    Expiry::new(now + REFRESH_WINDOW, ExpirySource::Estimated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_carries_the_seed_query_url_encoded() {
        let base = Url::parse("https://sandbox-auth.flowaccount.com/connect/authorize").unwrap();
        let url = authorize_url(
            &base,
            "my client",
            "com.authdeck.desktop:/oauth/callback",
            "st&te=1",
            None,
        );
        assert_eq!(
            url.as_str(),
            "https://sandbox-auth.flowaccount.com/connect/authorize?response_type=code\
             &scope=flowaccount-api+offline_access&client_id=my+client\
             &redirect_uri=com.authdeck.desktop%3A%2Foauth%2Fcallback&state=st%26te%3D1"
        );
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("scope".into(), SCOPE.into())));
        assert!(pairs.contains(&("state".into(), "st&te=1".into())));
        assert!(!pairs.iter().any(|(k, _)| k.starts_with("code_challenge")));
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn company_info_reads_the_sdk_envelope_either_spelling_and_a_bare_object() {
        let token = AccessToken::new("at-CANARY-1");
        let sdk = r#"{"status":true,"message":"","code":0,"data":{"companyId":6,"compnayName":"Siam Trading","companyTaxId":"0105558096348","companyBranch":"สำนักงานใหญ่"}}"#;
        let info = parse_company_info(200, sdk.as_bytes(), &token, now()).unwrap();
        assert_eq!(info.id.as_deref(), Some("6"));
        assert_eq!(info.name.as_deref(), Some("Siam Trading"));
        assert_eq!(info.tax_id.as_deref(), Some("0105558096348"));
        assert_eq!(info.branch.as_deref(), Some("สำนักงานใหญ่"));
        assert_eq!(info.at, now());
        let fixed = br#"{"data":{"companyName":"Fixed Spelling"}}"#;
        let info = parse_company_info(200, fixed, &token, now()).unwrap();
        assert_eq!(info.name.as_deref(), Some("Fixed Spelling"));
        assert_eq!((info.id, info.tax_id, info.branch), (None, None, None));
        let bare = br#"{"compnayName":"Bare","companyTaxId":105558096348}"#;
        let info = parse_company_info(200, bare, &token, now()).unwrap();
        assert_eq!(info.name.as_deref(), Some("Bare"));
        assert_eq!(info.tax_id.as_deref(), Some("105558096348"));
    }

    #[test]
    fn company_text_is_cleaned_and_junk_is_an_error_that_names_no_token() {
        let token = AccessToken::new("at-CANARY-1");
        let evil = r#"{"data":{"compnayName":"Evil \u001b[2J\u202eCo at-CANARY-1","companyBranch":"   "}}"#;
        let info = parse_company_info(200, evil.as_bytes(), &token, now()).unwrap();
        let name = info.name.unwrap();
        assert!(
            !name.contains("CANARY") && !name.contains('\u{1b}') && !name.contains('\u{202e}'),
            "{name}"
        );
        assert!(name.starts_with("Evil"), "{name}");
        assert_eq!(info.branch, None, "blank is absent");
        let junk: [&[u8]; 5] = [
            b"<html>at-CANARY-1</html>",
            b"",
            b"[1,2]",
            br#"{"data":{"other":1}}"#,
            br#"{"status":false,"message":"no at-CANARY-1"}"#,
        ];
        for body in junk {
            let e = parse_company_info(200, body, &token, now()).unwrap_err();
            let text = format!("{} {}", e.message, e.detail.unwrap_or_default());
            assert!(!text.contains("CANARY"), "{text}");
            assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidResponse | ErrorCode::ProviderError
                ),
                "{:?}",
                e.code
            );
        }
    }

    #[test]
    fn authorize_url_with_pkce_and_existing_query() {
        let base = Url::parse("http://127.0.0.1:9/connect/authorize?tenant=x").unwrap();
        let url = authorize_url(&base, "c", "http://127.0.0.1:1/cb", "s", Some("abc-_XYZ"));
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("tenant".into(), "x".into()));
        assert!(pairs.contains(&("code_challenge".into(), "abc-_XYZ".into())));
        assert!(pairs.contains(&("code_challenge_method".into(), "S256".into())));
    }
}
