//! Reads to its end a request body that a refusal left unread.
//!
//! A request refused before its body was read (413 too large, 403, 415, …) is answered
//! while the client is still sending. hyper then closes the connection with the rest of
//! the body unread, the kernel answers the client's next bytes with a reset, and the
//! client reports "connection reset" instead of the answer. Web servers read and drop
//! the rest ("lingering close"); this layer does the same, up to a bound, so a client
//! sending a body a little too large hears why.

use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;

/// At most this much of a refused body is read and dropped; a larger one is cut off.
const MOST_DROPPED: usize = 64 * 1024 * 1024;
/// And for at most this long: a client sending slowly does not hold the connection.
const LONGEST: Duration = Duration::from_secs(10);

type Slot = Arc<Mutex<Option<BodyDataStream>>>;

/// Middleware: hands the handler a body read through a shared slot, and after a refusal
/// (4xx or 5xx) reads what the handler left of it.
pub async fn finish_refused(req: Request, next: Next) -> Response {
    if !has_body(&req) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let slot: Slot = Arc::new(Mutex::new(Some(body.into_data_stream())));
    let reader = slot.clone();
    let shared = futures_util::stream::poll_fn(move |cx| {
        let mut stream = reader.lock().unwrap_or_else(|p| p.into_inner());
        match stream.as_mut() {
            Some(s) => s.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    });
    let response = next.run(Request::from_parts(parts, Body::from_stream(shared))).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let rest = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rest) = rest {
            drop_rest(rest).await;
        }
    }
    response
}

/// Whether the request says it carries a body.
fn has_body(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// Reads and drops the rest of a body, within [`MOST_DROPPED`] and [`LONGEST`].
async fn drop_rest(mut rest: BodyDataStream) {
    let reading = async {
        let mut dropped = 0usize;
        while let Some(Ok(chunk)) = rest.next().await {
            dropped += chunk.len();
            if dropped > MOST_DROPPED {
                tracing::debug!(dropped, "a refused request body is too large to read to its end");
                return;
            }
        }
    };
    if tokio::time::timeout(LONGEST, reading).await.is_err() {
        tracing::debug!("a refused request body was still coming after {LONGEST:?}");
    }
}
