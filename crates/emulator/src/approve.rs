//! Non-interactive consent for tests: the form posts a browser would make, and the
//! redirect `Location` it would be sent to (never followed).

use std::time::Duration;

use reqwest::{redirect, StatusCode};
use url::Url;

/// Signs in as `username`, picks the business `support_code` and approves.
///
/// Returns the redirect `Location` (`redirect_uri?code=…&scope=…&state=…`). If the
/// authorize request itself is answered with an error redirect, that `Location` is
/// returned as a browser would follow it; an error page or a refused login is `Err`.
pub async fn approve(
    authorize_url: &str,
    username: &str,
    password: &str,
    support_code: &str,
) -> Result<String, String> {
    consent(
        authorize_url,
        &[
            ("username", username),
            ("password", password),
            ("support_code", support_code),
            ("decision", "approve"),
        ],
    )
    .await
}

/// Signs in as `username` and denies: the `Location` carries `error=access_denied`.
pub async fn deny(authorize_url: &str, username: &str, password: &str) -> Result<String, String> {
    consent(
        authorize_url,
        &[
            ("username", username),
            ("password", password),
            ("decision", "deny"),
        ],
    )
    .await
}

async fn consent(authorize_url: &str, answers: &[(&str, &str)]) -> Result<String, String> {
    let url = Url::parse(authorize_url).map_err(|e| format!("bad authorize URL: {e}"))?;
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;

    // 1. The browser opens the authorize URL: a login page, or an error.
    let page = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| format!("GET authorize: {e}"))?;
    if let Some(location) = location(&page) {
        return Ok(location);
    }
    if page.status() != StatusCode::OK {
        let status = page.status();
        let text = page.text().await.unwrap_or_default();
        return Err(format!(
            "authorize answered {status}: {}",
            page_message(&text)
        ));
    }

    // 2. The user fills in the forms; they carry the request's parameters along.
    let mut form: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    form.extend(answers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut action = url;
    action.set_query(None);
    let answer = client
        .post(action)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("POST authorize: {e}"))?;
    if let Some(location) = location(&answer) {
        return Ok(location);
    }
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    Err(format!(
        "authorize answered {status} without a redirect: {}",
        page_message(&text)
    ))
}

fn location(response: &reqwest::Response) -> Option<String> {
    if !response.status().is_redirection() {
        return None;
    }
    response
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()
        .map(str::to_string)
}

/// The message our pages show in `<p class="error">…</p>`, if any.
fn page_message(html: &str) -> String {
    html.split_once("<p class=\"error\">")
        .and_then(|(_, rest)| rest.split_once("</p>"))
        .map(|(message, _)| message.to_string())
        .unwrap_or_else(|| "no error message on the page".to_string())
}
