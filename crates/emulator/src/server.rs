//! The loopback HTTP/1 server: our own accept loop over hyper, so a fault can reset
//! a connection (no response at all) and shutdown can drop hung requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::fault_response::ResetConnection;

/// Accepts until `stop` flips (or its sender is dropped), then aborts every connection.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, router.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Why the service refused to answer: hyper then drops the connection unanswered.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault")
    }
}

impl std::error::Error for Reset {}

async fn serve(stream: TcpStream, router: Router) {
    let _ = stream.set_nodelay(true);
    // A second handle on the same socket, so a reset fault can set SO_LINGER 0 on it:
    // the close then sends RST instead of FIN. Dropped with the connection otherwise.
    let (stream, handle) = match split_handle(stream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::warn!(%error, "cannot set up connection");
            return;
        }
    };
    let handle = Arc::new(Mutex::new(Some(handle)));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        let handle = handle.clone();
        async move {
            let response = match router.oneshot(request.map(axum::body::Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<ResetConnection>().is_some() {
                let taken = handle.lock().ok().and_then(|mut h| h.take());
                if let Some(socket) = taken {
                    let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
                }
                return Err(Reset);
            }
            Ok::<_, Reset>(response)
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn split_handle(stream: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std_stream = stream.into_std()?;
    let handle = std_stream.try_clone()?;
    Ok((TcpStream::from_std(std_stream)?, handle))
}
