//! A server on port 0 with a fixed clock, a clinic, and helpers to submit, approve and pay.

use jiff::Timestamp;
use reqwest::{Client, StatusCode};
use rxbridge::{Config, Running};
use rxbridge_app::FixedClock;
use rxbridge_app::clinical::{Decision, Pharmacist};
use rxbridge_app::payments::PaymentRecord;

use rxbridge_app::ports::{Mode, PrescriptionRecord};
use rxbridge_domain::compliance::Severity;
use rxbridge_domain::ids::GphcNumber;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Money {
    pub base: String,
    /// Does not follow redirects: tests look at each hop.
    pub client: Client,
    pub test_key: String,
    pub live_key: String,
    pub clinic_id: String,
    pub clock: Arc<FixedClock>,
    pub running: Running,
    pub _dir: tempfile::TempDir,
}

/// The settings every money test starts from, on the data directory `dir`.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    // Tests drive the outbox and the sweeps step by step.
    config.webhooks.poll_interval_ms = 3_600_000;
    config.warehouse.sweep_interval_secs = 3_600;
    config.webhooks.allow_private_targets = true;
    // Tests run side by side: no fixed metrics port.
    config.metrics.listen = "off".into();
    config
}

pub async fn start(configure: impl FnOnce(&mut Config)) -> Money {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    configure(&mut config);
    let clock = Arc::new(FixedClock::new(Timestamp::now()));
    let running = rxbridge::spawn_with_clock(config, clock.clone())
        .await
        .expect("server starts");
    let c = running.clinics.add("Money Clinic").await.unwrap();
    // The example prescriber signs electronic private prescriptions with the test key.
    running
        .state
        .intake
        .prescriber_keys()
        .add(
            "test",
            &c.clinic_id,
            "gmc:7012345",
            &fixture_key("es256-public.pem"),
            Some(TEST_KID),
            None,
        )
        .await
        .unwrap();
    Money {
        base: format!("http://{}", running.addr),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        test_key: c.test_key,
        live_key: c.live_key,
        clinic_id: c.clinic_id,
        clock,
        running,
        _dir: dir,
    }
}

pub use crate::common::{fixture_key, today};

/// The key id the test prescriber's key is registered under.
pub const TEST_KID: &str = "test-es256";

/// Sign `b` with the test prescriber's key (HMR 2012 reg 219: an electronic prescription
/// carries the prescriber's advanced electronic signature).
pub fn signed(mut b: Value) -> Value {
    let jws = rxbridge_app::signatures::sign_detached(
        &b,
        &fixture_key("es256-private.pem"),
        rxbridge_app::signatures::SigningAlg::Es256,
        TEST_KID,
    )
    .unwrap();
    b["signature"] = json!({ "jws": jws });
    b
}

/// A private atomoxetine (POM) prescription: electronic, signed, no paper original.
pub fn private_pom(reference: &str) -> Value {
    let mut b = rxbridge_http::schema::example_submission_on(&today().to_string());
    b["clinic_reference"] = reference.into();
    b["authority"] = json!({ "kind": "electronic_private" });
    b["items"][0]["product_code"] = "STRATTERA-40".into();
    signed(b)
}

/// The example private Schedule 2 prescription (paper FP10PCD).
pub fn private_cd(reference: &str) -> Value {
    let mut b = rxbridge_http::schema::example_submission_on(&today().to_string());
    b["clinic_reference"] = reference.into();
    b
}

/// An `issued_on` date `days` before today.
pub fn issued_days_ago(days: i64) -> Value {
    today()
        .saturating_sub(jiff::Span::new().days(days))
        .to_string()
        .into()
}

/// An NHS EPS prescription with `exemption` and one item per product code.
pub fn nhs(reference: &str, exemption: &str, products: &[&str]) -> Value {
    let mut b = private_cd(reference);
    crate::common::as_nhs_eps(&mut b);
    b["nhs"] = json!({ "exemption": exemption, "evidence_seen": exemption != "0001" });
    let item = b["items"][0].clone();
    b["items"] = products
        .iter()
        .map(|p| {
            let mut i = item.clone();
            i["product_code"] = (*p).into();
            i
        })
        .collect();
    b
}

static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Money {
    pub fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    /// The CD register's running balance in `section`.
    pub async fn cd_balance(&self, section: &str) -> i64 {
        use rxbridge_app::registers::{Register, RegisterStore as _};
        let store = &self.running.store;
        store.register_balance(Register::Cd, section).await.unwrap()
    }

    /// Make `url` the sandbox warehouse's endpoint; its signing secret.
    pub async fn set_warehouse(&self, url: &str) -> String {
        let o = &self.running.outbox;
        o.set_endpoint("warehouse:test", url).await.unwrap().1
    }

    /// POST with no body (the sandbox checkout's buttons).
    pub async fn post_empty(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        self.client.post(url).send().await.unwrap()
    }

    /// POST `body` to the Stripe webhook, signed with `secret` at the clock's now.
    pub async fn stripe_event(&self, secret: &str, body: String) -> reqwest::Response {
        use rxbridge_app::Clock as _;
        let at = self.clock.now().as_second();
        self.client
            .post(self.url("/v1/payments/stripe/webhook"))
            .header(
                "Stripe-Signature",
                rxbridge_stripe::signature::sign(secret, at, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub fn key(&self, mode: Mode) -> &str {
        match mode {
            Mode::Test => &self.test_key,
            Mode::Live => &self.live_key,
        }
    }

    /// Submit and expect 201; the prescription id.
    pub async fn submit(&self, mode: Mode, body: &Value) -> String {
        let r = self
            .client
            .post(self.url("/v1/prescriptions"))
            .bearer_auth(self.key(mode))
            .header(
                "Idempotency-Key",
                format!("k-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            )
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{v:#}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn record(&self, mode: Mode, id: &str) -> PrescriptionRecord {
        self.running
            .store
            .as_ref()
            .get_prescription_for_staff_sync(mode, id)
            .await
    }

    /// The signed original arrives (private Schedule 2/3).
    pub async fn original(&self, mode: Mode, id: &str, serial: &str) {
        let portal = &self.running.state.portal;
        portal
            .originals
            .record("st_test", mode, id, serial, None)
            .await
            .unwrap();
    }

    /// A pharmacist approves, acknowledging every flag.
    pub async fn approve(&self, mode: Mode, id: &str) -> PrescriptionRecord {
        let rec = self.record(mode, id).await;
        let flags = rec
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Flag)
            .map(|f| f.key())
            .collect();
        self.running
            .clinical
            .decide(
                &Pharmacist {
                    staff_id: "st_pharm".into(),
                    gphc: GphcNumber::parse("2033467").unwrap(),
                },
                mode,
                id,
                rec.version,
                Decision::Approve {
                    acknowledged_flags: flags,
                    amendments: vec![],
                },
                "Clinically appropriate",
            )
            .await
            .unwrap()
    }

    pub async fn payment(&self, rx: &str) -> PaymentRecord {
        self.running
            .payments
            .for_prescription(rx)
            .await
            .unwrap()
            .expect("a payment record")
    }

    /// Every `.eml` written, as (file name, text), oldest name first.
    pub fn emails(&self) -> Vec<(String, String)> {
        let dir = self.running.data_dir.join("mail");
        let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().to_string(),
                            std::fs::read_to_string(e.path()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// The payment link in the email about `payment_id` (quoted-printable soft breaks undone).
    pub fn link_in_email(&self, payment_id: &str) -> String {
        let (_, text) = self
            .emails()
            .into_iter()
            .find(|(name, _)| name.starts_with("link-") && name.contains(payment_id))
            .expect("a payment-link email");
        let flat = text
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=");
        let start = flat.find(&format!("{}/pay/", self.base)).expect("a link");
        flat[start..].split_whitespace().next().unwrap().to_string()
    }

    /// Follow the link: the Location it redirects to.
    pub async fn open_link(&self, link: &str) -> String {
        let r = self.client.get(link).send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap()
        );
        r.headers()["location"].to_str().unwrap().to_string()
    }

    pub async fn clinic_view(&self, mode: Mode, id: &str) -> Value {
        self.client
            .get(self.url(&format!("/v1/prescriptions/{id}")))
            .bearer_auth(self.key(mode))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn cancel(&self, mode: Mode, id: &str) -> Value {
        let r = self
            .client
            .post(self.url(&format!("/v1/prescriptions/{id}/cancel")))
            .bearer_auth(self.key(mode))
            .json(&json!({ "reason": "Patient changed their mind" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub async fn event_kinds(&self, id: &str) -> Vec<String> {
        self.running
            .store
            .as_ref()
            .timeline_sync(id)
            .await
            .into_iter()
            .map(|e| e.event.kind)
            .collect()
    }

    pub fn advance(&self, d: jiff::SignedDuration) {
        use rxbridge_app::Clock;
        self.clock.set(self.clock.now() + d);
    }
}

/// Small conveniences over the store port.
#[allow(async_fn_in_trait)]
pub trait StoreExt {
    async fn get_prescription_for_staff_sync(&self, mode: Mode, id: &str) -> PrescriptionRecord;
    async fn timeline_sync(&self, id: &str) -> Vec<rxbridge_app::events::EventRecord>;
}

impl StoreExt for rxbridge_store_sqlite::SqliteStore {
    async fn get_prescription_for_staff_sync(&self, mode: Mode, id: &str) -> PrescriptionRecord {
        use rxbridge_app::ports::StaffViews;
        self.get_prescription_for_staff(mode, id)
            .await
            .unwrap()
            .expect("the prescription")
    }
    async fn timeline_sync(&self, id: &str) -> Vec<rxbridge_app::events::EventRecord> {
        use rxbridge_app::ports::EventLog;
        self.timeline(id).await.unwrap()
    }
}
