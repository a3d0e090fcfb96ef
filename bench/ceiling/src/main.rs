//! The ceilings every intake figure in `bench/README.md` is a ratio against: the cheapest
//! endpoints that do what an intake must, on the same stack as `rxbridge serve` (tokio's
//! multi-threaded runtime, axum, hyper HTTP/1.1 with a header-read timer, `TCP_NODELAY`, the
//! same 256 KiB body limit).
//!
//! - `POST /trivial`: parse the body as JSON, answer 201.
//! - `POST /durable`: parse the body as JSON, append it to a file, answer 201 once it has been
//!   `fdatasync`ed. One writer thread group-commits: it takes every body waiting, writes them
//!   in one go, syncs once, then answers them all.
//!
//!   rxbridge-ceiling --listen 127.0.0.1:18182 --file /tmp/ceiling.log

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io::Write;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt as _;

/// One body for the writer and the channel its caller waits on.
type Job = (Bytes, oneshot::Sender<std::io::Result<()>>);

/// The most bodies one `fdatasync` covers (the product's writer batches up to 64).
const MAX_BATCH: usize = 64;

async fn trivial(body: Bytes) -> StatusCode {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => StatusCode::CREATED,
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn durable(State(writer): State<mpsc::UnboundedSender<Job>>, body: Bytes) -> StatusCode {
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        return StatusCode::BAD_REQUEST;
    }
    let (tx, rx) = oneshot::channel();
    if writer.send((body, tx)).is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match rx.await {
        Ok(Ok(())) => StatusCode::CREATED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The writer thread: block for one body, take every other one already waiting, append them
/// (each followed by a newline), `fdatasync`, then answer the whole batch.
fn write_loop(mut file: std::fs::File, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut buf = Vec::with_capacity(MAX_BATCH * 2048);
    while let Some(first) = jobs.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        buf.clear();
        for (body, _) in &batch {
            buf.extend_from_slice(body);
            buf.push(b'\n');
        }
        let done = file.write_all(&buf).and_then(|()| file.sync_data());
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(done.as_ref().map(|_| ()).map_err(|e| e.kind().into()));
        }
    }
}

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// The product binary's allocator, so the ceiling and the product differ only in their work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen", "127.0.0.1:18182");
    let path = arg(&args, "--file", "ceiling.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || write_loop(file, rx));
    let router = Router::new()
        .route("/trivial", post(trivial))
        .route("/durable", post(durable))
        .with_state(tx)
        .layer(DefaultBodyLimit::max(256 * 1024));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            router.clone().oneshot(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
