//! `GET {api base}/company/info` (PROVIDERS.md §1 item 9): who an access token belongs
//! to. The answer is the SDK's `CompanyInfoResponse`, `{status, message, code, data}`,
//! with `data` holding `companyId`, `compnayName` (the spec's spelling), `companyTaxId`
//! and `companyBranch`.
//!
//! Unknown, expired or revoked tokens get `401 {"message":"Unauthorized"}`: the spec
//! documents a bare "401 response"; the body is the API gateway's in front of it [guess].

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::fault::Provider;
use crate::form::bearer;
use crate::state::{gate, AppState};

pub(super) async fn info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = gate(&state, Provider::FlowAccountApi).await {
        return response;
    }
    let mut inner = state.lock();
    let now = inner.now();
    let store = &inner.flowaccount;
    let support_code = bearer(&headers)
        .and_then(|token| store.access_tokens.get(token))
        .filter(|t| t.expires_at > now)
        .and_then(|t| store.grants.get(t.grant))
        .filter(|g| !g.revoked)
        .map(|g| g.support_code.clone());
    let Some(support_code) = support_code else {
        inner.stats.flowaccount.company_info_unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Unauthorized"})),
        )
            .into_response();
    };
    let data = match store
        .config
        .companies
        .iter()
        .find(|c| c.support_code == support_code)
    {
        Some(c) => json!({
            "companyId": c.company_id,
            "compnayName": c.name,
            "companyTaxId": c.tax_id,
            "companyBranch": c.branch,
        }),
        // No details configured: the id and the name the business was created with.
        None => {
            let (index, name) = store
                .config
                .users
                .iter()
                .flat_map(|u| u.businesses.iter())
                .enumerate()
                .find(|(_, b)| b.support_code == support_code)
                .map(|(i, b)| (i + 1, b.name.clone()))
                .unwrap_or_default();
            json!({"companyId": index, "compnayName": name})
        }
    };
    inner.stats.flowaccount.company_info_ok += 1;
    Json(json!({"status": true, "message": "", "code": 0, "data": data})).into_response()
}

/// An error of FlowAccount's API itself (not its gateway): the response envelope with
/// `status: false` [guess: the spec documents a bare "500 response"].
pub(crate) fn api_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": false, "message": message, "code": status.as_u16(), "data": null})),
    )
        .into_response()
}
