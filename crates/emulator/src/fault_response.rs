//! What each fault looks like on the wire, in the shape of the provider it hits.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::fault::{FaultKind, Provider};
use crate::{fedex, flowaccount, iot};

/// Marks a response the connection layer must replace with a TCP reset (`server.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetConnection;

pub(crate) async fn respond(provider: Provider, kind: FaultKind) -> Response {
    match kind {
        FaultKind::ServerError { status } => server_error(provider, status),
        FaultKind::RateLimited { retry_after_secs } => {
            let mut response = rate_limited(provider);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        FaultKind::Hang => {
            // The connection task is aborted at shutdown; until then, silence.
            std::future::pending::<()>().await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        FaultKind::MalformedJson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"access_token": "abc","#,
        )
            .into_response(),
        FaultKind::HtmlBody { status } => gateway_page(status),
        FaultKind::Reset => {
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(ResetConnection);
            response
        }
        FaultKind::MissingAccessToken => {
            let body = match provider {
                Provider::FlowAccount => json!({"token_type": "bearer", "expires_in": 3600}),
                // An API answer that says nothing: the envelope without its `data`.
                Provider::FlowAccountApi => json!({"status": true, "message": "", "code": 0}),
                Provider::Fedex => {
                    json!({"token_type": "bearer", "expires_in": 3599, "scope": "CXS"})
                }
                Provider::Iot => json!({"token_type": "Bearer", "expires_in": 86_400}),
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
    }
}

fn status_or_500(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn server_error(provider: Provider, status: u16) -> Response {
    let status = status_or_500(status);
    match provider {
        Provider::FlowAccount => {
            let error = if status == StatusCode::SERVICE_UNAVAILABLE {
                "temporarily_unavailable"
            } else {
                "server_error"
            };
            flowaccount::oauth_error(status, error, "The server could not complete the request.")
        }
        Provider::FlowAccountApi => flowaccount::api_error(status, "Internal server error"),
        Provider::Fedex => {
            let (code, message) = match status {
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => (
                    "SERVICE.UNAVAILABLE.ERROR",
                    "The service is currently unavailable and we are working to resolve the issue. We apologize for any inconvenience. Please check back at a later time.",
                ),
                _ => (
                    "INTERNAL.SERVER.ERROR",
                    "We encountered an unexpected error and are working to resolve the issue. We apologize for any inconvenience. Please check back at a later time.",
                ),
            };
            fedex::error(status, code, message, None)
        }
        Provider::Iot => iot::error(status, status.canonical_reason().unwrap_or("Server Error")),
    }
}

fn rate_limited(provider: Provider) -> Response {
    let status = StatusCode::TOO_MANY_REQUESTS;
    match provider {
        // FlowAccount's token URL sits behind an API gateway: its throttle answer.
        Provider::FlowAccount | Provider::FlowAccountApi => {
            (status, axum::Json(json!({"message": "Too Many Requests"}))).into_response()
        }
        Provider::Fedex => fedex::error(
            status,
            "TOO.MANY.REQUESTS",
            "We have received too many requests in a short duration. Please wait a while to try again.",
            None,
        ),
        Provider::Iot => iot::error(status, "Too Many Requests"),
    }
}

fn gateway_page(status: u16) -> Response {
    let status = status_or_500(status);
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], body).into_response()
}
