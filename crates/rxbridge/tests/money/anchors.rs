//! Anchored heads: truncation and rewriting that the hash chains alone cannot see are caught
//! against a signed anchor; a forged anchor is refused.

use crate::money::harness::*;
use rxbridge_app::anchor::{Anchor, AnchorKey, check, generate_key, take};
use rxbridge_app::events::{NewEvent, chain_hash};
use rxbridge_app::payments::Change;
use rxbridge_app::registers::{EntryKind, NewEntry, Register};

fn ev(n: usize) -> NewEvent {
    NewEvent {
        at: jiff::Timestamp::now(),
        kind: "test.note".into(),
        actor: "test".into(),
        subject: format!("note:{n}"),
        detail: serde_json::json!({ "n": n }),
    }
}

fn receipt(qty: i64) -> NewEntry {
    let at = jiff::Timestamp::now();
    NewEntry {
        register: Register::Cd,
        section: "test/CONCERTA-XL-36".into(),
        kind: EntryKind::Receipt,
        entry_date: today(),
        at,
        author: "warehouse".into(),
        subject: None,
        quantity: qty,
        sealed: vec![1; 40],
    }
}

/// A store with 40 more events and two CD register entries.
async fn filled() -> Money {
    let m = start(|_| {}).await;
    let store = &m.running.state.store;
    for n in 0..40 {
        store.record_event(ev(n)).await.unwrap();
    }
    for q in [10, 5] {
        store
            .commit(Change {
                events: vec![ev(100)],
                register: vec![receipt(q)],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    m
}

/// A new anchor key and an anchor of every chain's head now.
async fn anchored(
    store: &dyn rxbridge_app::ports::Store,
    regs: &dyn rxbridge_app::registers::RegisterStore,
) -> (AnchorKey, Anchor) {
    let key = generate_key();
    let anchor = take(store, regs, &key, jiff::Timestamp::now()).await;
    (key, anchor.unwrap())
}

fn db(m: &Money) -> rusqlite::Connection {
    rusqlite::Connection::open(m.running.data_dir.join("rxbridge.db")).unwrap()
}

#[tokio::test]
async fn truncation_of_events_and_of_the_cd_register_is_caught_with_an_anchor() {
    let m = filled().await;
    let (store, regs) = (m.running.state.store.as_ref(), m.running.store.as_ref());
    let (key, anchor) = anchored(store, regs).await;
    let trusted = key.verifying_key();
    assert_eq!(
        check(&anchor, &trusted, store, regs).await.unwrap(),
        Vec::<String>::new()
    );
    let events = anchor.chains[0].length;
    assert!(events > 40);

    // Delete the last 20 events and the last CD register entry (triggers dropped first: the
    // attacker owns the file). The chains alone still verify.
    let c = db(&m);
    c.execute_batch(&format!(
        "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq > {};
         DROP TRIGGER register_no_delete; DELETE FROM register_entries WHERE seq = (SELECT MAX(seq) FROM register_entries);",
        events - 20
    ))
    .unwrap();
    drop(c);
    assert!(rxbridge_app::audit::verify_chain(store).await.is_ok());
    let entries =
        rxbridge_app::registers::RegisterStore::register_entries(regs, Register::Cd, None)
            .await
            .unwrap();
    assert_eq!(rxbridge_app::registers::verify(&entries), Ok(1));

    // The state tables no longer agree with what remains of the log either.
    let diffs = rxbridge_app::audit::verify_state(store, m.running.store.as_ref())
        .await
        .unwrap();
    assert!(!diffs.is_empty());

    let problems = check(&anchor, &trusted, store, regs).await.unwrap();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with(&format!(
        "events: {} entries, shorter than the {events}",
        events - 20
    )));
    assert!(problems[1].starts_with("cd_register: 1 entries, shorter than the 2"));
}

#[tokio::test]
async fn the_last_cd_register_entry_deleted_is_named_by_the_state_replay_even_without_an_anchor() {
    let m = filled().await;
    let (store, regs) = (m.running.state.store.as_ref(), m.running.store.as_ref());
    let last: i64 = db(&m)
        .query_row("SELECT MAX(seq) FROM register_entries", [], |r| r.get(0))
        .unwrap();
    db(&m)
        .execute_batch(&format!(
            "DROP TRIGGER register_no_delete; DELETE FROM register_entries WHERE seq = {last};"
        ))
        .unwrap();
    let entries =
        rxbridge_app::registers::RegisterStore::register_entries(regs, Register::Cd, None)
            .await
            .unwrap();
    assert_eq!(
        rxbridge_app::registers::verify(&entries),
        Ok(1),
        "the register chain alone verifies"
    );
    let diffs = rxbridge_app::audit::verify_state(store, m.running.store.as_ref())
        .await
        .unwrap();
    let lines: Vec<String> = diffs.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!(
            "register_entries cd#{last}: (row) expected present (written by event "
        )) && lines[0].ends_with("found missing"),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_rewritten_and_rechained_event_before_the_anchor_is_caught() {
    let m = filled().await;
    let (store, regs) = (m.running.state.store.as_ref(), m.running.store.as_ref());
    let (key, anchor) = anchored(store, regs).await;
    // Rewrite event 5 and recompute every hash after it: the chain verifies again.
    let all = store.events_after(0, 10_000).await.unwrap();
    let c = db(&m);
    c.execute_batch("DROP TRIGGER events_no_update").unwrap();
    let mut prev = all[3].hash.clone();
    for (i, e) in all.iter().enumerate().skip(4) {
        let mut ev = e.event.clone();
        if i == 4 {
            ev.actor = "mallory".into();
        }
        let hash = chain_hash(&prev, e.seq, &ev);
        c.execute(
            "UPDATE events SET actor = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![ev.actor, prev, hash, e.seq],
        )
        .unwrap();
        prev = hash;
    }
    drop(c);
    assert!(rxbridge_app::audit::verify_chain(store).await.is_ok());
    let problems = check(&anchor, &key.verifying_key(), store, regs)
        .await
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("(rewritten)"), "{problems:#?}");
}

#[tokio::test]
async fn a_forged_anchor_is_refused() {
    let m = filled().await;
    let (store, regs) = (m.running.state.store.as_ref(), m.running.store.as_ref());
    let (key, mut anchor) = anchored(store, regs).await;
    // Altered to cover a truncation, without the key: the signature fails.
    anchor.chains[0].length = 1;
    let problems = check(&anchor, &key.verifying_key(), store, regs)
        .await
        .unwrap();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("signature does not verify"),
        "{problems:?}"
    );
    // Signed with another key: refused too.
    let other = generate_key();
    let forged = take(store, regs, &other, jiff::Timestamp::now())
        .await
        .unwrap();
    let problems = check(&forged, &key.verifying_key(), store, regs)
        .await
        .unwrap();
    assert!(problems[0].contains("another key"), "{problems:?}");
}

#[tokio::test]
async fn scheduled_anchors_reach_a_directory_and_a_signed_https_witness() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    let m = filled().await;
    let (store, regs) = (m.running.state.store.as_ref(), m.running.store.as_ref());
    // A local HTTPS-witness stand-in: checks the Standard Webhooks signature on the raw body.
    let secret = rxbridge_app::outbox::generate_secret();
    // (signature valid, body) per POST.
    type Posts = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;
    let got: Posts = Arc::default();
    let app = {
        let (got, secret) = (got.clone(), secret.clone());
        axum::Router::new().route(
            "/anchors",
            axum::routing::post(move |h: HeaderMap, body: axum::body::Bytes| async move {
                let hv = |k: &str| h.get(k).and_then(|v| v.to_str().ok());
                let ok = rxbridge_app::outbox::verify(
                    &[secret],
                    hv("webhook-id"),
                    hv("webhook-timestamp"),
                    hv("webhook-signature"),
                    &body,
                    jiff::Timestamp::now().as_second(),
                )
                .is_ok();
                got.lock().unwrap().push((ok, body.to_vec()));
                if ok {
                    axum::http::StatusCode::NO_CONTENT
                } else {
                    axum::http::StatusCode::UNAUTHORIZED
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let witness_dir = tempfile::tempdir().unwrap();
    let settings = rxbridge::anchors::AuditSettings {
        witness_dir: Some(witness_dir.path().to_path_buf()),
        witness_url: Some(format!("http://{addr}/anchors")),
        witness_secret: Some(secret.clone().into()),
        ..Default::default()
    };
    // A witness is a live destination: plain http to a loopback stand-in is refused, whatever
    // allow_private_targets says (it lifts the guard for sandbox destinations only).
    let open = rxbridge::webhooks::UrlPolicy {
        allow_private_targets: true,
        ..rxbridge::webhooks::UrlPolicy::strict()
    };
    let refused = settings.validate(&open).unwrap_err().to_string();
    assert!(refused.contains("RXBRIDGE_AUDIT_WITNESS_URL"), "{refused}");
    let transport: Arc<dyn rxbridge_app::outbox::WebhookTransport> =
        Arc::new(rxbridge::webhooks::HttpWebhooks::new(open).unwrap());
    let mut witnesses = settings.witnesses(transport.clone());
    assert_eq!(witnesses.len(), 2);
    // The stand-in is reached as a sandbox destination, as every local stand-in is.
    witnesses[1] = Arc::new(rxbridge::anchors::HttpsWitness {
        url: format!("http://{addr}/anchors"),
        secret: secret.clone(),
        destination: format!("{}:test", rxbridge::anchors::WITNESS_DESTINATION),
        transport,
    });
    let key = rxbridge::anchors::load_or_create_key(&m.running.data_dir).unwrap();
    let placed =
        rxbridge_app::anchor::publish(store, regs, &key, &witnesses, jiff::Timestamp::now())
            .await
            .unwrap();
    assert_eq!(placed.len(), 2);

    // The directory holds one anchor file, the endpoint one signed POST; both verify.
    let files: Vec<_> = std::fs::read_dir(witness_dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1);
    let from_dir = rxbridge::anchors::read(&files[0].as_ref().unwrap().path()).unwrap();
    let posts = got.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].0, "the POST carried a valid signature");
    let from_https: rxbridge_app::anchor::Anchor = serde_json::from_slice(&posts[0].1).unwrap();
    assert_eq!(from_https, from_dir);
    assert_eq!(
        check(&from_dir, &key.verifying_key(), store, regs)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    // The key file is owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(rxbridge::anchors::key_path(&m.running.data_dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    // A witness that refuses is reported (and logged as an alert), not silently skipped.
    let wrong: Vec<Arc<dyn rxbridge_app::anchor::Witness>> =
        vec![Arc::new(rxbridge::anchors::HttpsWitness {
            url: format!("http://{addr}/anchors"),
            secret: rxbridge_app::outbox::generate_secret(),
            destination: format!("{}:test", rxbridge::anchors::WITNESS_DESTINATION),
            transport: Arc::new(
                rxbridge::webhooks::HttpWebhooks::new(rxbridge::webhooks::UrlPolicy {
                    allow_private_targets: true,
                    ..rxbridge::webhooks::UrlPolicy::strict()
                })
                .unwrap(),
            ),
        })];
    let r = rxbridge_app::anchor::publish(store, regs, &key, &wrong, jiff::Timestamp::now()).await;
    assert!(r.unwrap_err().to_string().contains("HTTP 401"));
}
