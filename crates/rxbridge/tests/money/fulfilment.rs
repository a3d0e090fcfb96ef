//! Fulfilment end to end: release to the warehouse through the outbox, a warehouse
//! that is down for hours, events coming back, the CD register balancing, expiry, dead letters,
//! and the warehouse simulator.

use crate::money::harness::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::SignedDuration;
use reqwest::StatusCode as Rs;
use rxbridge_app::outbox::{self, MessageStatus};
use rxbridge_app::ports::Mode;
use rxbridge_app::registers::{Register, RegisterStore};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// Receives webhooks at `/{name}`, verifies them with the secret registered for that name,
/// and answers with the status set for it (200 unless told otherwise).
#[derive(Default)]
pub struct Receiver {
    pub got: Mutex<Vec<(String, String, Value)>>,
    pub secrets: Mutex<HashMap<String, String>>,
    pub answer: Mutex<HashMap<String, u16>>,
    pub bad_signatures: AtomicU16,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path(name): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
    let secret = r
        .secrets
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .unwrap_or_default();
    // rxbridge runs on a test clock hours ahead: check the signature, not the freshness.
    let sent_at: i64 = get("webhook-timestamp")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if outbox::verify(
        &[secret],
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
        &body,
        sent_at,
    )
    .is_err()
    {
        r.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    let status = r.answer.lock().unwrap().get(&name).copied().unwrap_or(200);
    let mut headers = HeaderMap::new();
    if status == 503 {
        headers.insert("retry-after", "7200".parse().unwrap());
    }
    if status < 300 {
        r.got.lock().unwrap().push((
            name,
            get("webhook-id").unwrap_or("").to_string(),
            serde_json::from_slice(&body).unwrap(),
        ));
    }
    (StatusCode::from_u16(status).unwrap(), headers)
}

/// A receiver registered as the sandbox warehouse's endpoint, holding its signing secret.
pub async fn warehouse_receiver(m: &Money) -> (String, Arc<Receiver>) {
    let (base, r) = receiver().await;
    let url = format!("{base}/warehouse");
    let secret = m.set_warehouse(&url).await;
    r.secrets.lock().unwrap().insert("warehouse".into(), secret);
    (base, r)
}

pub async fn receiver() -> (String, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/{name}", axum::routing::post(receive))
        .with_state(r.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), r)
}

pub const INBOUND: &str = "whsec_aW5ib3VuZC13YXJlaG91c2Utc2VjcmV0LTEyMzQ=";

/// A "dispatched" event for `order` from the warehouse (carrier "x", tracking "y").
async fn dispatched(m: &Money, id: &str, order: &str) -> (Rs, Value) {
    let data = json!({ "order_id": order, "carrier": "x", "tracking_number": "y" });
    wh_event(m, id, "dispatched", data).await
}

pub async fn wh_event(m: &Money, id: &str, kind: &str, data: Value) -> (Rs, Value) {
    let body = json!({ "type": kind, "data": data }).to_string();
    use rxbridge_app::Clock;
    let ts = m.clock.now().as_second();
    let r = m
        .client
        .post(m.url("/v1/warehouse/events"))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            outbox::sign(&[INBOUND.to_string()], id, ts, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn without_an_inbound_secret_events_are_refused_naming_the_setting() {
    let m = start(|c| c.warehouse.inbound_secrets.clear()).await;
    let (s, v) = wh_event(&m, "wh_n_1", "picked", json!({ "order_id": "rx_x" })).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (Rs::SERVICE_UNAVAILABLE, Some("unavailable")),
        "{v}"
    );
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("warehouse.inbound_secrets (RXBRIDGE_WAREHOUSE_INBOUND_SECRETS)"),
        "{v}"
    );
}

async fn setup() -> (Money, Arc<Receiver>) {
    let m = start(|c| c.warehouse.inbound_secrets = vec![INBOUND.into()]).await;
    let (base, r) = receiver().await;
    let o = &m.running.outbox;
    let (_, ws) = o
        .set_endpoint("warehouse:test", &format!("{base}/warehouse"))
        .await
        .unwrap();
    let (_, cs) = o
        .set_endpoint(
            &format!("clinic:{}:test", m.clinic_id),
            &format!("{base}/clinic"),
        )
        .await
        .unwrap();
    r.secrets
        .lock()
        .unwrap()
        .extend([("warehouse".to_string(), ws), ("clinic".to_string(), cs)]);
    (m, r)
}

fn statuses(r: &Receiver) -> Vec<String> {
    r.got
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _, _)| n == "clinic")
        .map(|(_, _, v)| v["data"]["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn approval_to_delivery_with_the_warehouse_down_for_hours() {
    let (m, r) = setup().await;
    let (s, v) = wh_event(&m, "wh_stock_1", "stock_received", json!({ "product_code": "CONCERTA-XL-36", "quantity": 100, "supplier": "Alliance Healthcare", "invoice_ref": "INV-77", "mode": "test" })).await;
    assert_eq!(s, Rs::OK, "{v}");
    let id = m
        .submit(Mode::Test, &nhs("F-1", "0002", &["CONCERTA-XL-36"]))
        .await;
    m.approve(Mode::Test, &id).await;
    assert_eq!(
        m.clinic_view(Mode::Test, &id).await["status"],
        "ready_for_fulfilment"
    );

    let rep = m.running.fulfilment.sweep().await.unwrap();
    assert_eq!(rep.released, 1);
    // The ERP file is by the day of release (the clock moves hours on below: past midnight
    // when the test runs late in the day).
    let released_on = rxbridge_domain::dates::london_date({
        use rxbridge_app::Clock;
        m.clock.now()
    });
    assert_eq!(
        m.clinic_view(Mode::Test, &id).await["status"],
        "with_warehouse"
    );

    // The warehouse is down (503, Retry-After 2 h); the clinic's messages still flow.
    r.answer.lock().unwrap().insert("warehouse".into(), 503);
    let o = &m.running.outbox;
    let rep = o.run_once().await.unwrap();
    assert_eq!((rep.delivered, rep.retried), (2, 1), "{rep:?}");
    assert_eq!(statuses(&r), ["ready_for_fulfilment", "with_warehouse"]);
    // Nothing is due again before the Retry-After.
    m.advance(SignedDuration::from_mins(90));
    assert_eq!(o.run_once().await.unwrap(), Default::default());
    // Still down at the next try; then it comes back.
    m.advance(SignedDuration::from_mins(31));
    assert_eq!(o.run_once().await.unwrap().retried, 1);
    r.answer.lock().unwrap().insert("warehouse".into(), 200);
    m.advance(SignedDuration::from_hours(3));
    assert_eq!(o.run_once().await.unwrap().delivered, 1);
    assert_eq!(
        o.run_once().await.unwrap(),
        Default::default(),
        "delivered once"
    );
    let orders: Vec<Value> = r
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _, _)| n == "warehouse")
        .map(|(_, _, v)| v.clone())
        .collect();
    assert_eq!(orders.len(), 1);
    let d = &orders[0]["data"];
    assert_eq!(
        (d["order_id"].as_str(), d["controlled_drug"].as_bool()),
        (Some(id.as_str()), Some(true))
    );
    assert_eq!(d["lines"][0]["quantity"], 28);
    assert_eq!(d["deliver_to"]["postcode"], "M1 1AE");
    // Every message received, clinic's and warehouse's, is what the OpenAPI `webhooks` say.
    let doc = crate::money::webhook_schemas::document();
    for (_, _, v) in r.got.lock().unwrap().iter() {
        crate::money::webhook_schemas::assert_conforms(&doc, v);
    }
    assert_eq!(
        r.bad_signatures.load(Ordering::Relaxed),
        0,
        "every delivery carried a valid signature"
    );
    let msg_id = m.event_kinds(&id).await;
    assert!(msg_id.contains(&"prescription.released".to_string()));

    // Dispatched: the CD register's supply entry and balance; a replay is a duplicate.
    let (s, v) = wh_event(&m, "wh_d_1", "dispatched", json!({ "order_id": id, "carrier": "Royal Mail Tracked 24", "tracking_number": "RM123456785GB" })).await;
    assert_eq!(s, Rs::OK, "{v}");
    let (s, v) = wh_event(&m, "wh_d_1", "dispatched", json!({ "order_id": id, "carrier": "Royal Mail Tracked 24", "tracking_number": "RM123456785GB" })).await;
    assert_eq!((s, v["outcome"].as_str()), (Rs::OK, Some("duplicate")));
    let sec = "test/CONCERTA-XL-36";
    assert_eq!(m.cd_balance(sec).await, 72);
    let (s, _) = wh_event(&m, "wh_v_1", "delivered", json!({ "order_id": id, "received_by": "Sam Taylor", "recipient": "patient", "id_checked": true })).await;
    assert_eq!(s, Rs::OK);
    o.run_once().await.unwrap();
    assert_eq!(
        statuses(&r),
        [
            "ready_for_fulfilment",
            "with_warehouse",
            "dispatched",
            "delivered"
        ]
    );
    // The patient heard of the dispatch, without clinical detail.
    let (_, mail) = m
        .emails()
        .into_iter()
        .find(|(n, _)| n.starts_with("dispatched-"))
        .expect("dispatch email");
    assert!(
        mail.contains("RM123456785GB") && !mail.contains("Concerta"),
        "{mail}"
    );

    // Refusals: an event its state does not allow, an unknown order, a bad signature.
    let (s, v) = dispatched(&m, "wh_d_2", &id).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (Rs::CONFLICT, Some("illegal_transition")),
        "{v}"
    );
    let (s, v) = wh_event(&m, "wh_u_1", "picked", json!({ "order_id": "rx_nope" })).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (Rs::NOT_FOUND, Some("unknown_order"))
    );
    let (s, v) = wh_event(&m, "wh_x_1", "teleported", json!({ "order_id": id })).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (Rs::BAD_REQUEST, Some("invalid_event"))
    );
    // An unknown type is named as such, even when the body lacks what a known type would need.
    for (wid, data) in [
        ("wh_x_2", json!({})),
        ("wh_x_3", json!({ "order_id": "rx_nope" })),
    ] {
        let (s, v) = wh_event(&m, wid, "shipped", data).await;
        let detail = v["detail"].as_str().unwrap_or_default();
        assert_eq!(
            (s, v["code"].as_str()),
            (Rs::BAD_REQUEST, Some("invalid_event"))
        );
        assert!(
            detail.contains("unknown event type \"shipped\"")
                && detail.contains("picked, dispatched, delivered")
                && !detail.contains("order_id"),
            "{v}"
        );
    }
    let r2 = m
        .client
        .post(m.url("/v1/warehouse/events"))
        .header("webhook-id", "x")
        .header("webhook-timestamp", "1")
        .header("webhook-signature", "v1,AAAA")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), Rs::BAD_REQUEST);

    // The register: receipt, supply, annotation; verified; printable with the particulars.
    let entries = m
        .running
        .store
        .register_entries(Register::Cd, Some(sec))
        .await
        .unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.entry.kind.as_str()).collect();
    assert_eq!(kinds, ["receipt", "supply", "annotation"]);
    assert_eq!(
        rxbridge_app::registers::verify(
            &m.running
                .store
                .register_entries(Register::Cd, None)
                .await
                .unwrap()
        ),
        Ok(3)
    );
    let report = m
        .running
        .fulfilment
        .register_report(Register::Cd, sec, "test")
        .await
        .unwrap();
    assert!(
        report.rows[1][3].starts_with("Sam Taylor, Flat 2, 10 High Street"),
        "{:?}",
        report.rows[1]
    );
    assert!(
        report.rows[1][4].contains("Priya Shah (GMC 7012345)"),
        "{:?}",
        report.rows[1]
    );
    assert_eq!(report.rows[1][5], "-28");
    assert!(
        report.rows[2][9].contains("received by Sam Taylor (patient)"),
        "{:?}",
        report.rows[2]
    );
    // A correction is a new dated entry naming the one it corrects; the chain still verifies.
    m.running
        .fulfilment
        .annotate(
            Register::Cd,
            sec,
            Some(2),
            "Tracking number recorded with a typo: RM123456785GB",
            "staff:st_pharm",
        )
        .await
        .unwrap();
    assert!(
        m.running
            .fulfilment
            .annotate(Register::Cd, sec, Some(999), "x", "staff:st_pharm")
            .await
            .is_err()
    );
    assert!(
        m.running
            .fulfilment
            .annotate(Register::Cd, sec, None, "  ", "staff:st_pharm")
            .await
            .is_err()
    );
    let all = m
        .running
        .store
        .register_entries(Register::Cd, None)
        .await
        .unwrap();
    assert_eq!(rxbridge_app::registers::verify(&all), Ok(4));
    assert_eq!(m.cd_balance(sec).await, 72);
    // Entries cannot be altered.
    let conn = rusqlite::Connection::open(m.running.data_dir.join("rxbridge.db")).unwrap();
    let e = conn
        .execute("UPDATE register_entries SET quantity = 1 WHERE seq = 2", [])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");

    // The ERP file for the day of release: one row per line; the same file twice.
    let today = released_on;
    let a = rxbridge_export::to_csv(
        &m.running
            .fulfilment
            .orders_file(Mode::Test, today, "test")
            .await
            .unwrap(),
    );
    let b = rxbridge_export::to_csv(
        &m.running
            .fulfilment
            .orders_file(Mode::Test, today, "test")
            .await
            .unwrap(),
    );
    assert_eq!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains(&id) && text.contains("tracked_signed"),
        "{text}"
    );
}

#[tokio::test]
async fn no_stock_holds_then_releases_and_the_window_expires_what_waits() {
    let (m, r) = setup().await;
    let id = m
        .submit(Mode::Test, &nhs("F-2", "0002", &["CONCERTA-XL-36"]))
        .await;
    m.approve(Mode::Test, &id).await;
    let f = &m.running.fulfilment;
    assert_eq!(f.sweep().await.unwrap().held, 1);
    assert_eq!(f.sweep().await.unwrap().held, 1);
    let held = m
        .event_kinds(&id)
        .await
        .iter()
        .filter(|k| *k == "fulfilment.held")
        .count();
    assert_eq!(held, 1, "flagged once");
    wh_event(&m, "wh_s_2", "stock_received", json!({ "product_code": "CONCERTA-XL-36", "quantity": 28, "supplier": "AAH", "invoice_ref": "I-1", "mode": "test" })).await;
    assert_eq!(f.sweep().await.unwrap().released, 1);
    // Another order for the same stock is held: the first one's 28 are committed.
    let id2 = m
        .submit(Mode::Test, &nhs("F-3", "0002", &["CONCERTA-XL-36"]))
        .await;
    m.approve(Mode::Test, &id2).await;
    assert_eq!(f.sweep().await.unwrap().held, 1);

    // Stock for one more order arrives while two wait: one sweep releases one and holds one.
    let id3 = m
        .submit(Mode::Test, &nhs("F-3b", "0002", &["CONCERTA-XL-36"]))
        .await;
    m.approve(Mode::Test, &id3).await;
    wh_event(&m, "wh_s_3", "stock_received", json!({ "product_code": "CONCERTA-XL-36", "quantity": 28, "supplier": "AAH", "invoice_ref": "I-2", "mode": "test" })).await;
    let rep = f.sweep().await.unwrap();
    assert_eq!((rep.released, rep.held), (1, 1), "{rep:?}");

    // Expiry: issued 27 days ago, still waiting two days later: expired, clinic told.
    let mut body = nhs("F-4", "0002", &["CONCERTA-XL-36"]);
    body["issued_on"] = issued_days_ago(27);
    let old = m.submit(Mode::Test, &body).await;
    m.approve(Mode::Test, &old).await;
    m.advance(SignedDuration::from_hours(48));
    let rep = f.sweep().await.unwrap();
    assert_eq!(rep.expired, 1, "{rep:?}");
    assert_eq!(m.clinic_view(Mode::Test, &old).await["status"], "expired");
    let (s, v) = dispatched(&m, "wh_e_1", &old).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (Rs::CONFLICT, Some("illegal_transition"))
    );
    m.running.outbox.run_once().await.unwrap();
    assert!(statuses(&r).contains(&"expired".to_string()));

    // A cancellation while the warehouse holds the order tells the warehouse.
    m.cancel(Mode::Test, &id).await;
    m.running.outbox.run_once().await.unwrap();
    let cancels = r
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _, v)| n == "warehouse" && v["type"] == "fulfilment.cancelled")
        .count();
    assert_eq!(cancels, 1);
}

#[tokio::test]
async fn dead_letters_are_replayed_and_410_disables_the_endpoint() {
    let (m, r) = setup().await;
    r.answer.lock().unwrap().insert("clinic".into(), 500);
    let id = m.submit(Mode::Test, &private_pom("F-5")).await;
    m.approve(Mode::Test, &id).await;
    let o = &m.running.outbox;
    for n in 1..=10 {
        let rep = o.run_once().await.unwrap();
        if n < 10 {
            assert_eq!(rep.retried, 1, "attempt {n}: {rep:?}");
        } else {
            assert_eq!(rep.dead, 1, "attempt {n}: {rep:?}");
        }
        m.advance(SignedDuration::from_hours(27));
    }
    let dead = o.store().messages(MessageStatus::Dead, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let attempts = o.store().attempts(&dead[0].message.id).await.unwrap();
    assert_eq!(attempts.len(), 10);
    assert!(attempts.iter().all(|a| a.http_status == Some(500)));
    // Replayed after the clinic fixed its endpoint: delivered.
    r.answer.lock().unwrap().insert("clinic".into(), 200);
    assert_eq!(o.replay(None).await.unwrap(), 1);
    assert_eq!(o.run_once().await.unwrap().delivered, 1);
    // 410 Gone: the endpoint is disabled, the message dead, later ones not attempted.
    r.answer.lock().unwrap().insert("clinic".into(), 410);
    m.cancel(Mode::Test, &id).await;
    assert_eq!(o.run_once().await.unwrap().gone, 1);
    let ep = o
        .store()
        .endpoint_for(&format!("clinic:{}:test", m.clinic_id))
        .await
        .unwrap()
        .unwrap();
    assert!(!ep.enabled && ep.disabled_reason.unwrap().contains("410"));
}

#[tokio::test]
async fn the_warehouse_simulator_runs_the_demo_end_to_end() {
    let event_secret = outbox::generate_secret();
    let es = event_secret.clone();
    let m = start(move |c| c.warehouse.inbound_secrets = vec![es.into()]).await;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}/orders", l.local_addr().unwrap());
    let order_secret = m.set_warehouse(&sim_url).await;
    let cfg = rxbridge::warehouse_sim::SimConfig {
        rxbridge: m.base.clone(),
        order_secret,
        event_secret,
        mode: Mode::Test,
        stock: 500,
        delay: std::time::Duration::from_millis(0),
    };
    let _sim = tokio::spawn(rxbridge::warehouse_sim::run(l, cfg, std::future::pending()));
    // The simulator books in stock first.
    let ok = crate::common::poll(
        crate::common::PATIENCE,
        async || m.cd_balance("test/CONCERTA-XL-36").await == 500,
        |booked| *booked,
    )
    .await;
    assert!(ok, "stock booked in");
    let id = m.submit(Mode::Test, &private_cd("F-6")).await;
    m.original(Mode::Test, &id, "PCD1234567").await;
    m.approve(Mode::Test, &id).await;
    let p = m.payment(&id).await;
    let checkout = m.open_link(&m.link_in_email(&p.id)).await;
    m.post_empty(format!("{checkout}/pay")).await;
    assert_eq!(m.running.fulfilment.sweep().await.unwrap().released, 1);
    assert_eq!(m.running.outbox.run_once().await.unwrap().delivered, 1);
    let status: Value = crate::common::poll(
        crate::common::PATIENCE,
        async || m.clinic_view(Mode::Test, &id).await["status"].clone(),
        |s| s == "delivered",
    )
    .await;
    assert_eq!(status, "delivered");
    assert_eq!(m.cd_balance("test/CONCERTA-XL-36").await, 472);
    let kinds = m.event_kinds(&id).await;
    for k in [
        "prescription.released",
        "fulfilment.picked",
        "prescription.dispatched",
        "prescription.delivered",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }
}
