//! FedEx API: the client credentials family (PROVIDERS.md §2).
//!
//! One call, [`request_token`]: there is no refresh token, so "refresh" means asking
//! again with the stored credentials. Earlier tokens stay valid until they expire.

use chrono::{DateTime, Utc};
use url::Url;

use crate::error::{Error, Result};
use crate::model::{FedexGrant, Provider};
use crate::providers::http::{BodyEncoding, FormPost, TokenJson};
use crate::providers::Operation;
use crate::providers::{jwt, HttpClient, IssuedTokens};
use crate::secret::{AnySecret, ChildSecret, ClientSecret};

/// `POST` form `grant_type`, `client_id` (API key), `client_secret` (secret key), and for
/// `csp_credentials` / `client_pc_credentials` also `child_Key` + `child_secret`.
///
/// The seed writes `child_id` / `child_key`; FedEx's OpenAPI and SDKs send `child_Key`
/// (capital K), which is what we send. Missing child credentials for a grant that needs
/// them are `invalid_input`, before any request.
pub async fn request_token(
    http: &HttpClient,
    token_url: &Url,
    grant: FedexGrant,
    client_id: &str,
    client_secret: &ClientSecret,
    child: Option<(&str, &ChildSecret)>,
    now: DateTime<Utc>,
) -> Result<IssuedTokens> {
    let mut fields = vec![
        ("grant_type", grant.as_str()),
        ("client_id", client_id),
        ("client_secret", client_secret.expose()),
    ];
    let mut secrets: Vec<&dyn AnySecret> = vec![client_secret];
    let mut op = Operation::ClientCredentials;
    if grant.needs_child_credentials() {
        op = Operation::ChildCredentials;
        let Some((child_key, child_secret)) =
            child.filter(|(key, secret)| !key.trim().is_empty() && !secret.is_empty())
        else {
            return Err(Error::invalid_input(format!(
                "FedEx {grant} needs a child key and a child secret: add them to the connection."
            )));
        };
        fields.push(("child_Key", child_key));
        fields.push(("child_secret", child_secret.expose()));
        secrets.push(child_secret);
    }
    let json = FormPost {
        provider: Provider::Fedex,
        op,
        url: token_url,
        authorization: None,
        encoding: BodyEncoding::Form,
        fields,
        secrets,
    }
    .token(http)
    .await?;
    Ok(issued(&json, now))
}

/// The token answer: a JWT `access_token`, `token_type`, `expires_in`, `scope`; never
/// a refresh token. `expires_in` is seconds (3599 / 3600), whatever the seed's prose says.
pub(crate) fn issued(json: &TokenJson, now: DateTime<Utc>) -> IssuedTokens {
    let access_token = json.access_token();
    IssuedTokens {
        jwt: jwt::decode(access_token.expose()),
        access_token,
        refresh_token: None,
        token_type: json.string("token_type"),
        scope: json.string("scope"),
        access_expires: json.relative_expiry(now),
        refresh_expires: None,
        support_code: None,
        userinfo: None,
        user_id: None,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::providers::http::HttpSettings;

    #[tokio::test]
    async fn child_grants_need_child_credentials_before_any_request() {
        let http = HttpClient::new(HttpSettings::default()).unwrap();
        // Port 9 (discard) on loopback: if a request were sent it would fail differently.
        let url = Url::parse("http://127.0.0.1:9/oauth/token").unwrap();
        let secret = ClientSecret::new("s");
        let child_secret = ChildSecret::new("s");
        let empty = ChildSecret::new("");
        for grant in [FedexGrant::CspCredentials, FedexGrant::ClientPcCredentials] {
            for child in [None, Some(("", &child_secret)), Some(("key", &empty))] {
                let e = request_token(&http, &url, grant, "id", &secret, child, Utc::now())
                    .await
                    .unwrap_err();
                assert_eq!(e.code, ErrorCode::InvalidInput, "{grant}");
                assert!(e.message.contains(grant.as_str()), "{}", e.message);
            }
        }
    }
}
