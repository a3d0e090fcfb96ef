//! Crash test: under concurrent load, `kill -9` the real server at pseudo-random moments,
//! restart, and check for every round that
//! - every prescription that got a 201 is present exactly once,
//! - no request that got no answer was half applied (the event chain verifies, and each
//!   unanswered request left either a whole prescription or nothing), and
//! - retrying each unanswered request with its idempotency key gives the right answer: a 201
//!   (a replay when the first attempt was committed) and still exactly one record;
//! - the outbox is consistent: half the prescriptions are cancelled during the load, and every
//!   cancelled prescription has exactly one `prescription.status_changed` message saying so,
//!   every other none (the status change and its message commit together or not at all), and
//!   every acknowledged cancellation survived.
//!
//! Rounds: CRASH_ROUNDS (default 20). Bounded: each round loads for 100–500 ms.

mod common;

use reqwest::StatusCode;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// GET `url` with the clinic's key; the JSON body.
async fn get_json(client: &reqwest::Client, url: String, key: &str) -> Value {
    let r = client.get(url).bearer_auth(key).send().await.unwrap();
    r.json().await.unwrap()
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rxbridge"));
    c.env_remove("RXBRIDGE_PATIENT_KEY")
        .env("RXBRIDGE_LOG", "warn");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &std::path::Path, port: u16) -> Child {
    let mut child = bin()
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        // Tests run side by side: no fixed metrics port.
        .env("RXBRIDGE_METRICS_LISTEN", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let ready = common::ready(&client, &format!("http://127.0.0.1:{port}")).await;
    if ready {
        return child;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

fn body(reference: &str, today: &str) -> Value {
    let mut b = rxbridge_http::schema::example_submission_on(today);
    b["clinic_reference"] = reference.into();
    b
}

/// xorshift: repeatable pseudo-random delays without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_acknowledged_and_applies_nothing_half() {
    let rounds: u64 = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "clinic",
            "add",
            "--name",
            "Crash",
            "--json",
        ])
        .output()
        .unwrap();
    let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["test_key"]
        .as_str()
        .unwrap()
        .to_string();
    let today = rxbridge_domain::dates::london_date(jiff::Timestamp::now()).to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut acknowledged: Vec<(String, String)> = Vec::new(); // (reference, id)
    let mut cancelled_ok: Vec<String> = Vec::new();
    let (mut total_unanswered, mut total_replayed) = (0, 0);

    for round in 0..rounds {
        let port = free_port();
        let mut server = start(dir.path(), port).await;
        let base = format!("http://127.0.0.1:{port}");
        // 16 workers submit as fast as they can until the server dies.
        let mut workers = Vec::new();
        for w in 0..16 {
            let (client, base, key, today) =
                (client.clone(), base.clone(), key.clone(), today.clone());
            workers.push(tokio::spawn(async move {
                let (mut ok, mut unanswered, mut cancelled) = (Vec::new(), Vec::new(), Vec::new());
                for n in 0.. {
                    let reference = format!("R{round}-W{w}-N{n}");
                    let r = client
                        .post(format!("{base}/v1/prescriptions"))
                        .bearer_auth(&key)
                        .header("Idempotency-Key", &reference)
                        .json(&body(&reference, &today))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == StatusCode::CREATED => match r.json::<Value>().await
                        {
                            Ok(v) => {
                                let id = v["id"].as_str().unwrap().to_string();
                                ok.push((reference, id.clone()));
                                if n % 2 == 1 {
                                    // A status change that writes an outbox message.
                                    let c = client
                                        .post(format!("{base}/v1/prescriptions/{id}/cancel"))
                                        .bearer_auth(&key)
                                        .json(&serde_json::json!({ "reason": "crash test" }))
                                        .send()
                                        .await;
                                    match c {
                                        Ok(c) if c.status() == StatusCode::OK => cancelled.push(id),
                                        Ok(c) => panic!("unexpected {} cancelling", c.status()),
                                        Err(_) => break,
                                    }
                                }
                            }
                            Err(_) => {
                                unanswered.push(reference);
                                break;
                            }
                        },
                        Ok(r) => panic!("unexpected {} before the crash", r.status()),
                        Err(_) => {
                            unanswered.push(reference);
                            break;
                        }
                    }
                }
                (ok, unanswered, cancelled)
            }));
        }
        tokio::time::sleep(Duration::from_millis(100 + rng.next() % 400)).await;
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        let mut unanswered = Vec::new();
        for w in workers {
            let (ok, un, cancelled) = w.await.unwrap();
            acknowledged.extend(ok);
            unanswered.extend(un);
            cancelled_ok.extend(cancelled);
        }

        // Restart and check.
        let port = free_port();
        let mut server = start(dir.path(), port).await;
        let base = format!("http://127.0.0.1:{port}");
        let count = |reference: String| {
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            async move {
                let v = get_json(
                    &client,
                    format!("{base}/v1/prescriptions?clinic_reference={reference}&limit=10"),
                    &key,
                )
                .await;
                v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        // Every acknowledged prescription of this round is there exactly once, with its id.
        for (reference, id) in acknowledged
            .iter()
            .filter(|(r, _)| r.starts_with(&format!("R{round}-")))
        {
            assert_eq!(
                count(reference.clone()).await,
                vec![id.clone()],
                "round {round}: {reference}"
            );
        }
        // Unanswered requests: whole or absent; a retry with the same key resolves them.
        for reference in &unanswered {
            let before = count(reference.clone()).await;
            assert!(
                before.len() <= 1,
                "round {round}: {reference} applied twice"
            );
            let r = client
                .post(format!("{base}/v1/prescriptions"))
                .bearer_auth(&key)
                .header("Idempotency-Key", reference)
                .json(&body(reference, &today))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            let replayed = r.headers().get("idempotent-replayed").is_some();
            let id = r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                replayed,
                !before.is_empty(),
                "round {round}: {reference}: replay iff committed before"
            );
            if replayed {
                assert_eq!(before, vec![id.clone()]);
                total_replayed += 1;
            }
            assert_eq!(count(reference.clone()).await, vec![id.clone()]);
            acknowledged.push((reference.clone(), id));
        }
        total_unanswered += unanswered.len();
        server.kill().unwrap();
        server.wait().unwrap();
        // The outbox agrees with the prescriptions, one message per cancellation.
        let db = rusqlite::Connection::open(dir.path().join("rxbridge.db")).unwrap();
        let rows: Vec<(String, String, i64)> = db
            .prepare(
                "SELECT p.id, p.status, (SELECT count(*) FROM outbox o WHERE o.subject = p.id
                   AND o.event_type = 'prescription.status_changed'
                   AND json_extract(o.payload, '$.data.status') = 'cancelled') FROM prescriptions p",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (id, status, messages) in &rows {
            let expected = i64::from(status == "cancelled");
            assert_eq!(
                *messages, expected,
                "round {round}: {id} is {status} with {messages} cancellation message(s)"
            );
        }
        let statuses: std::collections::HashMap<&str, &str> = rows
            .iter()
            .map(|(i, s, _)| (i.as_str(), s.as_str()))
            .collect();
        for id in &cancelled_ok {
            assert_eq!(
                statuses.get(id.as_str()),
                Some(&"cancelled"),
                "round {round}: acknowledged cancellation of {id} lost"
            );
        }
        drop(db);
        let out = bin()
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "audit",
                "verify",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Every prescription ever acknowledged is still there once, and nothing else is.
    let port = free_port();
    let mut server = start(dir.path(), port).await;
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("http://127.0.0.1:{port}/v1/prescriptions?limit=100&cursor={c}"),
            None => format!("http://127.0.0.1:{port}/v1/prescriptions?limit=100"),
        };
        let v = get_json(&client, url, &key).await;
        for p in v["data"].as_array().unwrap() {
            assert!(
                seen.insert(p["id"].as_str().unwrap().to_string()),
                "listed twice"
            );
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let expected: std::collections::HashSet<String> =
        acknowledged.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(seen, expected);
    assert!(
        acknowledged.len() > rounds as usize,
        "the load produced too few prescriptions to mean anything"
    );
    println!(
        "crash test: {rounds} rounds, {} prescriptions acknowledged, {} cancellations acknowledged, {total_unanswered} unanswered at the kill ({total_replayed} had committed and replayed); outbox consistent every round",
        acknowledged.len(),
        cancelled_ok.len()
    );
}
