//! A local AWS stand-in for tests: moto (PyPI `moto[server]`, installed into the repository's
//! `.venv` by `scripts/test`), started through `scripts/moto_serial.py`, which serves one
//! request at a time — moto does not isolate concurrent DynamoDB transactions from each other
//! (a failing one restores a snapshot over another's committed writes); DynamoDB does.
//!
//! `RXBRIDGE_TEST_AWS_ENDPOINT` points at a running one; otherwise one is started on a free
//! port for this test process and stopped when the process ends. No stand-in at all is a
//! failure, not a skip: the DynamoDB contract tests must run.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The venv's Python and the launcher (`scripts/moto_serial.py`).
fn moto_launcher() -> Option<(PathBuf, PathBuf)> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = repo.join(".venv/bin/python");
    let script = repo.join("scripts/moto_serial.py");
    (python.exists() && script.exists()).then_some((python, script))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// The stand-in's URL, starting it on first use.
pub fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| {
            if let Ok(url) = std::env::var("RXBRIDGE_TEST_AWS_ENDPOINT") {
                return url;
            }
            let (python, launcher) = moto_launcher().unwrap_or_else(|| {
                panic!(
                    "no local AWS stand-in: run ./scripts/test once (it installs moto into .venv), \
                     or set RXBRIDGE_TEST_AWS_ENDPOINT"
                )
            });
            let port = free_port();
            // A small shell keeps moto alive only as long as this test process.
            let script = format!(
                "'{}' '{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
                 while kill -0 {} 2>/dev/null; do sleep 1; done; kill $m",
                python.display(),
                launcher.display(),
                std::process::id()
            );
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .spawn()
                .expect("start moto_server");
            // Reap the shell when it ends (with this process, or if moto dies early).
            std::thread::spawn(move || child.wait());
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "moto_server did not start on port {port}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            format!("http://127.0.0.1:{port}")
        })
        .clone()
}

/// A unique table name for one test.
pub fn unique_table(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A fresh store on its own new table in the stand-in.
pub async fn fresh_store() -> crate::DynamoStore {
    let store = crate::DynamoStore::local(&endpoint(), &unique_table("rxb"));
    store.create_table().await.expect("create the test table");
    store
}
