//! Throughput figures for the issue notes (ignored: run with
//! `cargo test --release -p rxbridge --test suite money::bench -- --ignored --nocapture`). They print
//! numbers and assert only that the work was done: never timings.

use crate::money::fulfilment::warehouse_receiver;
use crate::money::harness::*;
use rxbridge_app::outbox::NewMessage;
use rxbridge_app::payments::Change;
use rxbridge_app::ports::Mode;
use serde_json::json;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_outbox_delivery_and_webhook_intake() {
    const SECRET: &str = "whsec_bench";
    let m = start(|c| c.stripe.webhook_secrets = vec![SECRET.into()]).await;
    let (_, r) = warehouse_receiver(&m).await;
    use rxbridge_app::Clock;
    let n = 2000;
    let t = m.clock.now();
    let started = Instant::now();
    for chunk in 0..(n / 100) {
        let outbox: Vec<NewMessage> = (0..100)
            .map(|i| NewMessage {
                id: format!("msg_bench_{chunk}_{i}"),
                destination: "warehouse:test".into(),
                event_type: "fulfilment.requested".into(),
                subject: format!("rx_{chunk}_{i}"),
                payload: rxbridge_app::outbox::Body::Clear(json!({ "type": "fulfilment.requested", "data": { "order_id": format!("rx_{chunk}_{i}") } })),
                created_at: t,
            })
            .collect();
        use rxbridge_app::ports::UnitOfWork;
        m.running
            .store
            .commit(Change {
                outbox,
                ..Change::default()
            })
            .await
            .unwrap();
    }
    let enqueue = started.elapsed();
    let started = Instant::now();
    let mut delivered = 0;
    while delivered < n {
        delivered += m.running.outbox.run_once().await.unwrap().delivered;
    }
    let deliver = started.elapsed();
    assert_eq!(r.got.lock().unwrap().len(), n as usize);
    println!(
        "outbox: enqueue {n} in {:.0} ms ({:.0}/s, 100 per commit); deliver {n} signed webhooks to a local receiver in {:.0} ms ({:.0}/s, sequential)",
        enqueue.as_secs_f64() * 1000.0,
        n as f64 / enqueue.as_secs_f64(),
        deliver.as_secs_f64() * 1000.0,
        n as f64 / deliver.as_secs_f64()
    );

    // Payment webhooks: approve 200 private prescriptions, then time the signed events.
    let mut pays = Vec::new();
    for i in 0..200 {
        let id = m.submit(Mode::Test, &private_pom(&format!("B-{i}"))).await;
        m.approve(Mode::Test, &id).await;
        pays.push(m.payment(&id).await);
    }
    let started = Instant::now();
    let mut lat = Vec::new();
    for (i, p) in pays.iter().enumerate() {
        let body = json!({ "id": format!("evt_b_{i}"), "type": "checkout.session.completed", "data": { "object": {
            "id": format!("cs_{i}"), "client_reference_id": p.id, "amount_total": p.quote.total_pence,
            "currency": "gbp", "payment_status": "paid", "payment_intent": format!("pi_{i}") } } }).to_string();
        let one = Instant::now();
        let res = m.stripe_event(SECRET, body).await;
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        lat.push(one.elapsed().as_secs_f64() * 1000.0);
    }
    let total = started.elapsed();
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "stripe webhooks: 200 payments applied (verify, de-duplicate, pay + release in one durable commit) in {:.0} ms; sequential p50 {:.2} ms, p99 {:.2} ms",
        total.as_secs_f64() * 1000.0,
        lat[100],
        lat[197]
    );
}

/// NHS numbers with a valid Modulus 11 check digit, from `start` on.
fn nhs_numbers(start: u64) -> impl Iterator<Item = String> {
    (start..).filter_map(|p| {
        let digits = format!("{p:09}");
        let sum: u32 = digits
            .chars()
            .zip((2..=10).rev())
            .map(|(d, w)| d.to_digit(10).unwrap() * w)
            .sum();
        match 11 - sum % 11 {
            10 => None,
            11 => Some(format!("{digits}0")),
            c => Some(format!("{digits}{c}")),
        }
    })
}

/// Hot keys: 5 000 submissions, one after another, with identical demographics (name, date of
/// birth, address, phone, email) and distinct NHS numbers. Prints the p50 of the first 100 and
/// of the last 100 (the target: the last no slower than 1.5× the first). Assertions in
/// `rxbridge-store-sqlite`'s `hot_keys` test count the reads instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_hot_keys_5000_submissions_sharing_demographics() {
    let m = start(|_| {}).await;
    let n: usize = std::env::var("BENCH_HOT_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let mut lat = Vec::with_capacity(n);
    for (i, nhs) in nhs_numbers(100_000_000).take(n).enumerate() {
        let mut body = private_pom(&format!("HOT-{i}"));
        body["patient"]["nhs_number"] = nhs.into();
        let started = Instant::now();
        m.submit(Mode::Test, &body).await;
        lat.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let p50 = |s: &[f64]| {
        let mut v = s.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (first, last) = (p50(&lat[..100]), p50(&lat[n - 100..]));
    println!(
        "hot keys: {n} submissions with identical demographics; p50 first 100 {first:.2} ms, last 100 {last:.2} ms, ratio {:.2}",
        last / first
    );
    assert_eq!(lat.len(), n);
}
