//! Receives a FlowAccount redirect on a loopback address (RFC 8252 §7.3): the CLI's
//! way to finish an authorization by itself when the client's redirect URI is
//! `http://127.0.0.1:PORT/…`.

use std::time::Duration;

use authdeck_core::{Error, ErrorCode, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

const MAX_REQUEST_HEAD: usize = 8 * 1024;

pub struct LoopbackListener {
    listener: TcpListener,
    path: String,
    port: u16,
}

impl LoopbackListener {
    /// Bind before the browser is opened, so the redirect cannot arrive too early.
    pub async fn bind(redirect_uri: &str) -> Result<Self> {
        let url = Url::parse(redirect_uri)
            .map_err(|_| Error::invalid_input("The redirect URI is not a URL."))?;
        let port = url
            .port()
            .ok_or_else(|| Error::invalid_input("A loopback redirect URI needs a fixed port."))?;
        let host = url
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_owned();
        let listener = TcpListener::bind((host.as_str(), port)).await.map_err(|e| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("Cannot listen on {host}:{port} for the redirect: is another program using that port?"),
            )
            .with_detail(e.to_string())
        })?;
        Ok(Self {
            listener,
            path: url.path().to_owned(),
            port,
        })
    }

    /// Wait for the browser to arrive at the redirect path; other requests (favicon, …)
    /// get a 404. Returns the full callback URL and the open connection to answer on.
    pub async fn next_redirect(&self, timeout: Duration) -> Result<(TcpStream, String)> {
        let wait = async {
            loop {
                let Ok((mut stream, _)) = self.listener.accept().await else {
                    continue;
                };
                let target =
                    match tokio::time::timeout(Duration::from_secs(10), read_target(&mut stream))
                        .await
                    {
                        Ok(Some(t)) => t,
                        _ => continue,
                    };
                let path = target.split('?').next().unwrap_or("");
                if path == self.path {
                    return (stream, format!("http://127.0.0.1:{}{}", self.port, target));
                }
                let _ = respond(&mut stream, 404, "Not the Authdeck redirect.").await;
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| {
            Error::invalid_callback(
                "No redirect arrived before the authorization expired: start connecting again.",
            )
        })
    }
}

/// The request target of a `GET` request, if the head is well formed.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = std::str::from_utf8(&head).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Some(target.to_owned()),
        _ => None,
    }
}

pub async fn respond(stream: &mut TcpStream, status: u16, message: &str) -> std::io::Result<()> {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Authdeck</title>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>Authdeck</h1><p>{escaped}</p></body>"
    );
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
