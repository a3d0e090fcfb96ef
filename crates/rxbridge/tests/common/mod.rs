//! Shared by every integration-test binary of this crate (the API, money, clinical and crash
//! suites): waiting for background work without sleeping a fixed time.

#![allow(dead_code)] // each binary uses its own part

use std::time::{Duration, Instant};

/// How long a test waits for background work (the simulator, a child process) before it
/// reports what it saw. A safety net for a broken build, never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Run `attempt` until `done` accepts what it returns or `within` has passed; return the last
/// value either way, for the caller's assertion to judge.
pub async fn poll<T>(
    within: Duration,
    mut attempt: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let v = attempt().await;
        if done(&v) || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
