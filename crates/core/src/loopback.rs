//! Receiving a FlowAccount redirect on a loopback address (RFC 8252 §7.3, §8.3): how
//! the CLI and the desktop app finish an authorization by themselves when the client's
//! redirect URI is `http://127.0.0.1:PORT/…` or `http://[::1]:PORT/…`.
//!
//! Anything on this machine can connect to the port, and a web page can make the
//! browser send requests to it (DNS rebinding). So the listener:
//! - binds exactly the redirect URI's address and port, before the browser is opened;
//! - serves every connection in its own task, each bounded (5 s to send its request
//!   head, at most 8 KiB), so a slow or silent client holds up nobody;
//! - answers `400` (a short plain-text page) and otherwise ignores every request that is
//!   not a `GET` of the redirect path with `Host` exactly the redirect URI's
//!   `address:port`, carrying a well-formed callback whose `state` is the pending
//!   authorization's. Such requests never end the listening;
//! - ends on the first request whose state matches — that one goes to
//!   [`Manager::complete_callback`] once, whatever its code (a bad one fails the
//!   authorization, as its state is then used) — or when the authorization expires or
//!   ends some other way (pasted by hand, cancelled).
//!
//! Requests it ignores are not written to the history (port scanners and favicon
//! requests would fill it); they are logged without their URL.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Mutex, Semaphore};
use tokio::task::JoinSet;
use url::Url;

use crate::authorize::{self, MAX_CALLBACK_LEN};
use crate::error::{Error, ErrorCode, Result};
use crate::manager::{Manager, PendingAuthorization};
use crate::model::{Connection, Provider};

/// How long a client has to send its whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 128;
/// How often the listener checks whether its authorization ended some other way.
const OUTCOME_POLL: Duration = Duration::from_secs(1);
/// How long a redirect taken elsewhere may stay without an outcome (its token exchange
/// under way in another process) before the wait gives up on learning how it ended.
/// Longer than a token request may take.
const IN_PROGRESS_GRACE: Duration = Duration::from_secs(90);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Is this redirect URI one Authdeck receives itself on a loopback port?
pub fn is_loopback_redirect(redirect_uri: &str) -> bool {
    redirect_uri.starts_with("http://") && authorize::validate_redirect_uri(redirect_uri).is_ok()
}

/// A bound listener for one redirect URI. Bind it before the browser is opened.
pub struct LoopbackListener {
    listener: TcpListener,
    /// The redirect URI as the authorization sends it (normalised by `url`).
    redirect: Url,
    /// The `Host` header a browser following that URI sends: `127.0.0.1:PORT`, `[::1]:PORT`.
    host: String,
}

impl std::fmt::Debug for LoopbackListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackListener")
            .field("redirect", &self.redirect.as_str())
            .finish_non_exhaustive()
    }
}

/// The request that carried the pending authorization's state, not yet answered.
pub struct LoopbackRedirect {
    /// The callback URL, rebuilt on the redirect URI's own address. Carries the code
    /// and state: never log it.
    pub url: String,
    stream: TcpStream,
}

impl std::fmt::Debug for LoopbackRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopbackRedirect([redirect URL])")
    }
}

impl LoopbackRedirect {
    /// Tell the browser how it went (a plain-text page), and close the connection.
    pub async fn respond(mut self, result: &Result<Connection>) {
        let text = match result {
            Ok(c) => format!(
                "Authdeck: Connected FlowAccount business {}. You can close this tab.",
                c.label
            ),
            Err(e) => format!("Authdeck: Not connected: {}", e.message),
        };
        let _ = respond(&mut self.stream, 200, &text).await;
    }
}

/// What a connection's request turned out to be.
enum Served {
    Matched(LoopbackRedirect),
    Ignored,
}

impl LoopbackListener {
    /// Bind exactly the redirect URI's address and port.
    pub async fn bind(redirect_uri: &str) -> Result<Self> {
        let redirect = authorize::validate_redirect_uri(redirect_uri)?;
        let ip: IpAddr = match redirect.host() {
            Some(url::Host::Ipv4(ip)) if redirect.scheme() == "http" => ip.into(),
            Some(url::Host::Ipv6(ip)) if redirect.scheme() == "http" => ip.into(),
            _ => {
                return Err(Error::invalid_input(
                    "Not a loopback redirect URI: nothing to listen on.",
                ))
            }
        };
        // validate_redirect_uri insists on an explicit port.
        let port = redirect
            .port()
            .ok_or_else(|| Error::invalid_input("A loopback redirect URI needs a fixed port."))?;
        let host = format!("{}:{port}", redirect.host_str().unwrap_or_default());
        let listener = TcpListener::bind(SocketAddr::new(ip, port))
            .await
            .map_err(|e| {
                let message = match e.kind() {
                    std::io::ErrorKind::AddrNotAvailable => format!(
                        "Cannot listen on {host} for the redirect: this machine has no such loopback address."
                    ),
                    _ => format!(
                        "Cannot listen on {host} for the redirect: is another program (or another Authdeck) using that port?"
                    ),
                };
                Error::new(ErrorCode::InvalidInput, message).with_detail(e.to_string())
            })?;
        Ok(Self {
            listener,
            redirect,
            host,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|e| {
            Error::internal("The redirect listener has no address.").with_detail(e.to_string())
        })
    }

    /// The redirect URI this listener receives.
    pub fn redirect_uri(&self) -> &str {
        self.redirect.as_str()
    }

    /// Serve requests until one carries `pending`'s state, and return it unanswered.
    /// Fails with `invalid_callback` when the authorization expires or ends some other
    /// way first (its redirect pasted by hand, cancelled). Dropping the future stops
    /// the listening and closes every connection it was serving.
    pub async fn wait_for_callback(
        &self,
        manager: &Manager,
        pending: &PendingAuthorization,
    ) -> Result<LoopbackRedirect> {
        if Url::parse(&pending.redirect_uri).ok().as_ref() != Some(&self.redirect) {
            return Err(Error::invalid_input(
                "This listener is for another redirect URI than the authorization's.",
            ));
        }
        let left = (pending.expires_at - manager.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let expired = tokio::time::sleep(left);
        tokio::pin!(expired);
        let mut poll = tokio::time::interval(OUTCOME_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        // When the redirect was first seen taken elsewhere with no outcome yet.
        let mut taken_since: Option<tokio::time::Instant> = None;
        let (matched_tx, mut matched_rx) = mpsc::channel::<LoopbackRedirect>(1);
        let check = Arc::new(Check {
            host: self.host.clone(),
            redirect: self.redirect.clone(),
            state_hash: pending.id.clone(),
        });
        loop {
            tokio::select! {
                biased;
                Some(redirect) = matched_rx.recv() => return Ok(redirect),
                () = &mut expired => {
                    if taken_since.is_some() {
                        return Err(ended_elsewhere("used"));
                    }
                    return Err(Error::invalid_callback(
                        "No redirect arrived before the authorization expired: start connecting again.",
                    ))
                }
                _ = poll.tick() => {
                    match manager.authorization_outcome(&pending.id).await {
                        // Taken elsewhere and still being completed: wait for how it ends.
                        Ok(Some(outcome)) if outcome == "used" => {
                            let since = *taken_since.get_or_insert_with(tokio::time::Instant::now);
                            if since.elapsed() >= IN_PROGRESS_GRACE {
                                return Err(ended_elsewhere(&outcome));
                            }
                        }
                        Ok(Some(outcome)) => return Err(ended_elsewhere(&outcome)),
                        Ok(None) => {}
                        // Gone: purged, or the data was reset. Nothing left to complete.
                        Err(e) if e.code == ErrorCode::NotFound => return Err(ended_elsewhere("unknown")),
                        // A busy or briefly failing database: look again next time.
                        Err(e) => tracing::warn!(code = %e.code, "could not check the pending authorization"),
                    }
                }
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // E.g. out of file descriptors: do not spin.
                            tracing::warn!(error = %e, "the redirect listener could not accept");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!("too many connections to the redirect listener: one closed");
                        continue;
                    };
                    let (check, matched_tx) = (check.clone(), matched_tx.clone());
                    connections.spawn(async move {
                        if let Served::Matched(redirect) = serve(stream, &check).await {
                            let _ = matched_tx.send(redirect).await;
                        }
                        drop(slot);
                    });
                }
                // Reap finished connection tasks.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }

    /// Wait for the redirect, complete the authorization with it, and tell the browser.
    pub async fn complete(
        &self,
        manager: &Manager,
        pending: &PendingAuthorization,
    ) -> Result<Connection> {
        let redirect = self.wait_for_callback(manager, pending).await?;
        let result = manager.complete_callback(&redirect.url).await;
        redirect.respond(&result).await;
        result
    }
}

fn ended_elsewhere(outcome: &str) -> Error {
    let how = match outcome {
        "ok" => "it was completed elsewhere",
        "cancelled" => "it was cancelled",
        "expired" => "it expired",
        "unknown" => "it is no longer known",
        _ => "its redirect was used elsewhere",
    };
    Error::invalid_callback(format!(
        "Stopped waiting for the redirect: {how} ({outcome})."
    ))
}

/// What a request must match to end the listening.
struct Check {
    host: String,
    redirect: Url,
    state_hash: String,
}

async fn serve(mut stream: TcpStream, check: &Check) -> Served {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(reason)) => {
            tracing::info!(reason, "a request to the redirect listener was ignored");
            let _ = respond(&mut stream, 400, "Authdeck: bad request.").await;
            return Served::Ignored;
        }
        Err(_) => {
            tracing::info!("a request to the redirect listener was too slow: ignored");
            let _ = respond(&mut stream, 400, "Authdeck: request too slow.").await;
            return Served::Ignored;
        }
    };
    match check.accepts(&head) {
        Ok(url) => Served::Matched(LoopbackRedirect { url, stream }),
        Err(reason) => {
            tracing::info!(reason, "a request to the redirect listener was ignored");
            let _ = respond(
                &mut stream,
                400,
                "Authdeck: this is not the redirect Authdeck is waiting for.",
            )
            .await;
            Served::Ignored
        }
    }
}

/// The request line and headers, parsed.
struct Head {
    method: String,
    target: String,
    hosts: Vec<String>,
}

/// Read up to the end of the head (never more than [`MAX_HEAD`]) and parse it.
async fn read_head(stream: &mut TcpStream) -> std::result::Result<Head, &'static str> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| "read error")?;
        if n == 0 {
            return Err("closed before the end of the request head");
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let hosts = request
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("host"))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
                    .collect();
                return Ok(Head {
                    method: request.method.unwrap_or_default().to_owned(),
                    target: request.path.unwrap_or_default().to_owned(),
                    hosts,
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) => return Err("request head too long"),
            Err(_) => return Err("malformed request head"),
        }
    }
}

impl Check {
    /// The callback URL if this request is the redirect for the pending authorization.
    fn accepts(&self, head: &Head) -> std::result::Result<String, &'static str> {
        if head.method != "GET" {
            return Err("not a GET");
        }
        // Origin form only (`/path?query`), never an absolute URL naming another host.
        if !head.target.starts_with('/') || head.target.len() > MAX_CALLBACK_LEN {
            return Err("unexpected request target");
        }
        // DNS rebinding: a page on another name resolving to 127.0.0.1 sends its own name.
        match head.hosts.as_slice() {
            [host] if host.eq_ignore_ascii_case(&self.host) => {}
            _ => return Err("wrong or missing Host header"),
        }
        let url = format!("{}://{}{}", self.redirect.scheme(), self.host, head.target);
        let callback = authorize::parse_callback(&url).map_err(|_| "not a callback URL")?;
        if !authorize::matches_redirect(&callback, self.redirect.as_str()) {
            return Err("another path");
        }
        if authorize::state_hash(callback.state.expose()) != self.state_hash {
            return Err("another state");
        }
        Ok(url)
    }
}

async fn respond(stream: &mut TcpStream, status: u16, text: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        _ => "Bad Request",
    };
    let body: String = text.chars().filter(|c| !c.is_control()).collect();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{body}\n",
        body.len() + 1
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

// ---- the desktop app's loopback flows ----------------------------------------------

/// The loopback listeners of authorizations a long-running front (the desktop app)
/// started: at most one per address, stopped when their authorization completes,
/// expires, ends elsewhere or is cancelled.
#[derive(Clone, Default)]
pub struct LoopbackFlows {
    active: Arc<Mutex<HashMap<String, Active>>>,
}

struct Active {
    /// The pending authorization it listens for.
    id: String,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl LoopbackFlows {
    /// Start a FlowAccount authorization. When the client's redirect URI is a loopback
    /// one, a listener is bound first and serves until the redirect arrives; then the
    /// authorization is completed and `on_finished` called with the result (it is not
    /// called when the authorization expires, ends elsewhere or is cancelled). An
    /// earlier authorization listening on the same address is cancelled.
    pub async fn begin(
        &self,
        manager: &Manager,
        client_ref: &str,
        on_finished: impl FnOnce(Result<Connection>) + Send + 'static,
    ) -> Result<PendingAuthorization> {
        let client = manager.client(client_ref).await?;
        let redirect = client.options.redirect_uri.clone().unwrap_or_default();
        if client.provider != Provider::FlowAccount || !is_loopback_redirect(&redirect) {
            return manager.begin_flowaccount(&client.id).await;
        }
        let key = authorize::validate_redirect_uri(&redirect)?.to_string();
        // Never await a listener's task with the lock held: it takes the lock to finish.
        let old = self.active.lock().await.remove(&key);
        if let Some(old) = old {
            let _ = old.stop.send(());
            let _ = old.done.await;
            let _ = manager.cancel_authorization(&old.id).await;
        }
        let listener = LoopbackListener::bind(&redirect).await?;
        let pending = manager.begin_flowaccount(&client.id).await?;
        let (stop, stopped) = oneshot::channel();
        let (task_manager, task_pending) = (manager.clone(), pending.clone());
        let flows = self.clone();
        let task_key = key.clone();
        let done = tokio::spawn(async move {
            let waited = tokio::select! {
                waited = listener.wait_for_callback(&task_manager, &task_pending) => Some(waited),
                _ = stopped => None,
            };
            match waited {
                Some(Ok(redirect)) => {
                    let result = task_manager.complete_callback(&redirect.url).await;
                    redirect.respond(&result).await;
                    drop(listener);
                    flows.forget(&task_key, &task_pending.id).await;
                    on_finished(result);
                }
                Some(Err(e)) => {
                    drop(listener);
                    tracing::info!(code = %e.code, "stopped listening for a loopback redirect");
                    flows.forget(&task_key, &task_pending.id).await;
                }
                // Stopped by `cancel`, `stop_all` or a newer authorization.
                None => {}
            }
        });
        self.active.lock().await.insert(
            key,
            Active {
                id: pending.id.clone(),
                stop,
                done,
            },
        );
        Ok(pending)
    }

    /// Cancel a started authorization (any, loopback or not) and stop its listener.
    /// `false` if it had ended already.
    pub async fn cancel(&self, manager: &Manager, id: &str) -> Result<bool> {
        let cancelled = manager.cancel_authorization(id).await?;
        let old = {
            let mut active = self.active.lock().await;
            let key = active
                .iter()
                .find(|(_, a)| a.id == id)
                .map(|(k, _)| k.clone());
            key.and_then(|k| active.remove(&k))
        };
        if let Some(old) = old {
            let _ = old.stop.send(());
            let _ = old.done.await;
        }
        Ok(cancelled)
    }

    /// The authorizations being listened for (their ids).
    pub async fn listening(&self) -> Vec<String> {
        self.active
            .lock()
            .await
            .values()
            .filter(|a| !a.done.is_finished())
            .map(|a| a.id.clone())
            .collect()
    }

    /// Stop every listener (the app is quitting). Their authorizations stay pending.
    pub async fn stop_all(&self) {
        let all: Vec<Active> = self.active.lock().await.drain().map(|(_, a)| a).collect();
        for old in all {
            let _ = old.stop.send(());
            let _ = old.done.await;
        }
    }

    async fn forget(&self, key: &str, id: &str) {
        let mut active = self.active.lock().await;
        if active.get(key).is_some_and(|a| a.id == id) {
            active.remove(key);
        }
    }
}
