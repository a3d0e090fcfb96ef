//! The black-box harness: the real server on port 0 with a fresh data directory.

use reqwest::{Client, Response, StatusCode};
use rxbridge::{Config, Running};
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub clinic_id: String,
    pub test_key: String,
    pub live_key: String,
    pub data_dir: tempfile::TempDir,
    pub running: Option<Running>,
}

pub async fn spawn_app() -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    spawn_in(data_dir).await
}

pub async fn spawn_in(data_dir: tempfile::TempDir) -> TestApp {
    spawn_with(data_dir, Config::default()).await
}

pub async fn spawn_with(data_dir: tempfile::TempDir, base: Config) -> TestApp {
    let mut config = Config {
        data_dir: data_dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..base
    };
    // Tests run side by side: the metrics listener on a free port (`metrics_url`).
    if config.metrics.listen == rxbridge::DEFAULT_METRICS_LISTEN {
        config.metrics.listen = "127.0.0.1:0".into();
    }
    let running = rxbridge::spawn(config).await.expect("server starts");
    let c = running.clinics.add("Test Clinic").await.unwrap();
    TestApp {
        base: format!("http://{}", running.addr),
        client: Client::new(),
        clinic_id: c.clinic_id,
        test_key: c.test_key,
        live_key: c.live_key,
        data_dir,
        running: Some(running),
    }
}

pub use crate::common::{fixture_key, today};

pub fn days_ago(n: i64) -> String {
    today()
        .saturating_sub(jiff::Span::new().days(n))
        .to_string()
}

/// A valid private CD prescription issued today.
pub fn valid_body() -> Value {
    rxbridge_http::schema::example_submission_on(&today().to_string())
}

/// A valid electronic private atomoxetine (POM) prescription issued today, not yet signed.
pub fn private_pom_body() -> Value {
    let mut b = valid_body();
    b["authority"] = json!({ "kind": "electronic_private" });
    b["items"][0]["product_code"] = "STRATTERA-40".into();
    b["items"][0]["instructions"] = "Take ONE capsule each morning".into();
    b
}

/// A valid NHS EPS prescription issued today.
pub fn nhs_body() -> Value {
    let mut b = valid_body();
    crate::common::as_nhs_eps(&mut b);
    b["nhs"] = json!({ "exemption": "0001", "evidence_seen": false });
    b
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub fn new_key() -> String {
    format!(
        "idem-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

impl TestApp {
    /// `/metrics` on the metrics listener.
    pub fn metrics_url(&self) -> String {
        let addr = self
            .running
            .as_ref()
            .unwrap()
            .metrics_addr
            .expect("metrics on");
        format!("http://{addr}/metrics")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn submit_with(&self, key: &str, idem: &str, body: &Value) -> Response {
        self.client
            .post(self.url("/v1/prescriptions"))
            .bearer_auth(key)
            .header("Idempotency-Key", idem)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn submit(&self, body: &Value) -> Response {
        self.submit_with(&self.test_key, &new_key(), body).await
    }

    /// Submit and expect 201; returns the body.
    pub async fn submit_ok(&self, body: &Value) -> Value {
        let r = self.submit(body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{v:#}");
        v
    }

    pub async fn get_json(&self, path: &str, key: &str) -> (StatusCode, Value) {
        status_and_json(self.client.get(self.url(path)).bearer_auth(key)).await
    }

    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.client.post(self.url(path)).bearer_auth(key).json(body);
        status_and_json(r).await
    }

    /// Register another clinic beside the test one.
    pub async fn add_clinic(&self, name: &str) -> rxbridge_app::clinics::NewClinic {
        let running = self.running.as_ref().unwrap();
        running.clinics.add(name).await.unwrap()
    }

    pub async fn count(&self, key: &str) -> usize {
        let (_, v) = self.get_json("/v1/prescriptions?limit=100", key).await;
        v["data"].as_array().map(Vec::len).unwrap_or(0)
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// Send `r`; the status and the JSON body (null when there is none).
async fn status_and_json(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

pub fn error_pointers(v: &Value) -> Vec<(String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
