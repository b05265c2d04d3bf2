//! Requests as the providers read them: form-urlencoded bodies, multipart for IoT,
//! and the bearer token of the `me` endpoints.

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap};

/// The fields of a request body, each name at most once.
pub(crate) type Fields = HashMap<String, String>;

/// Why a body could not be read as fields.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Not a content type the endpoint reads.
    ContentType,
    /// A parameter appeared more than once (RFC 6749 §3.1, §3.2).
    Repeated(String),
    /// Unreadable body (bad multipart, cut short, too large).
    Unreadable,
}

pub(crate) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    content_type(headers) == "application/x-www-form-urlencoded"
}

/// Parses `a=1&b=2`; a name given twice is refused.
pub(crate) fn parse_urlencoded(body: &[u8]) -> Result<Fields, BodyError> {
    let mut fields = Fields::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if fields
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(BodyError::Repeated(name.into_owned()));
        }
    }
    Ok(fields)
}

/// Reads a form-urlencoded or multipart/form-data body.
pub(crate) async fn read_form_or_multipart(request: Request) -> Result<Fields, BodyError> {
    match content_type(request.headers()).as_str() {
        "application/x-www-form-urlencoded" => {
            let body = <axum::body::Bytes as FromRequest<()>>::from_request(request, &())
                .await
                .map_err(|_| BodyError::Unreadable)?;
            parse_urlencoded(&body)
        }
        "multipart/form-data" => {
            let mut multipart = <Multipart as FromRequest<()>>::from_request(request, &())
                .await
                .map_err(|_| BodyError::Unreadable)?;
            let mut fields = Fields::new();
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|_| BodyError::Unreadable)?
            {
                let name = field.name().unwrap_or_default().to_string();
                let value = field.text().await.map_err(|_| BodyError::Unreadable)?;
                if fields.insert(name.clone(), value).is_some() {
                    return Err(BodyError::Repeated(name));
                }
            }
            Ok(fields)
        }
        _ => Err(BodyError::ContentType),
    }
}

/// A field's value, `None` when absent or empty (an empty value counts as missing).
pub(crate) fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
