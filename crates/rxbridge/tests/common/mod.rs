//! The harness shared by every integration-test binary of this crate (the API, money, clinical
//! and crash suites): today's date in London, the test-only keys, and waiting for background
//! work without sleeping a fixed time. Each suite's own helpers build on it.

#![allow(dead_code)] // each binary uses its own part

use std::time::{Duration, Instant};

/// Today in London: the date prescriptions are issued on.
pub fn today() -> jiff::civil::Date {
    rxbridge_domain::dates::london_date(jiff::Timestamp::now())
}

/// A test-only key from `tests/fixtures/keys`.
pub fn fixture_key(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/keys")
            .join(name),
    )
    .unwrap()
}

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

/// Wait until the server at `base` answers `/readyz` (at most [`PATIENCE`]); whether it did.
pub async fn ready(client: &reqwest::Client, base: &str) -> bool {
    let url = format!("{base}/readyz");
    let up = async || {
        let r = client.get(&url).send().await;
        r.is_ok_and(|r| r.status().is_success())
    };
    poll(PATIENCE, up, |ready| *ready).await
}

/// POST a form (a browser's submit) with `client`.
pub async fn post_form(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client.post(url).form(fields).send().await.unwrap()
}

/// A portal form's answer as a browser shows it. Every portal form answers `303 See Other`
/// (post/redirect/get); this checks that and fetches the page it redirects to, with the
/// client's cookies (a refusal travels there in a sealed cookie, shown once), returning that
/// page's answer: the refusal's status and the page showing why and what was typed.
pub async fn follow(client: &reqwest::Client, r: reqwest::Response) -> reqwest::Response {
    assert_eq!(
        r.status(),
        reqwest::StatusCode::SEE_OTHER,
        "a portal form answers with a redirect"
    );
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let url = r.url().join(&to).unwrap();
    client.get(url).send().await.unwrap()
}

/// GET `url` and read the body as text (the page a signed-in browser would see).
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// Make a private prescription body an NHS EPS one (no private prescriber code).
pub fn as_nhs_eps(b: &mut serde_json::Value) {
    b["type"] = "nhs".into();
    b["authority"] =
        serde_json::json!({ "kind": "eps", "eps_prescription_id": "24F5DA-A83008-7EFE6Z" });
    if let Some(p) = b["prescriber"].as_object_mut() {
        p.remove("private_prescriber_code");
    }
}
