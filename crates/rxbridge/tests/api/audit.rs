//! `rxbridge audit anchor` and `rxbridge audit verify [--anchor FILE]...` as an operator runs
//! them, against a data directory edited outside the application.

use crate::api::cli::succeeded;
use std::process::Command;

fn rxbridge(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rxbridge"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("RXBRIDGE_PATIENT_KEY")
        .env_remove("RXBRIDGE_AUDIT_ANCHOR_PUBLIC_KEY")
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = rxbridge(
        dir.path(),
        &["dev", "seed", "--count", "30", "--patients", "10"],
    );
    succeeded(&out);
    dir
}

fn sql(dir: &std::path::Path, sql: &str) {
    rusqlite::Connection::open(dir.join("rxbridge.db"))
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn verify_names_an_edited_row_and_exits_2() {
    let dir = seeded();
    let ok = rxbridge(dir.path(), &["audit", "verify"]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("ok: state tables: every row matches"));
    sql(
        dir.path(),
        "UPDATE prescriptions SET status = 'ready_for_fulfilment' WHERE id = 'rx_seed000000000007'",
    );
    let out = rxbridge(dir.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "prescriptions rx_seed000000000007: status expected delivered, found ready_for_fulfilment"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_anchor_catches_the_last_20_events_deleted_and_a_forged_anchor_is_refused() {
    let dir = seeded();
    let anchor = dir.path().join("anchor.json");
    let a = anchor.to_str().unwrap();
    let out = rxbridge(dir.path(), &["audit", "anchor", "--out", a]);
    succeeded(&out);
    // Printed without --out: the same statement of the same heads.
    let printed: serde_json::Value =
        serde_json::from_slice(&rxbridge(dir.path(), &["audit", "anchor"]).stdout).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&anchor).unwrap()).unwrap();
    assert_eq!(printed["chains"], saved["chains"]);
    assert_eq!(saved["chains"][0]["chain"], "events");
    assert_eq!(saved["chains"][0]["length"], 31);

    let ok = rxbridge(dir.path(), &["audit", "verify", "--anchor", a]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("every chain holds what the anchor"));

    // The forged anchor: shortened to cover a truncation, signature left as it was.
    let mut forged = saved.clone();
    forged["chains"][0]["length"] = 11.into();
    let f = dir.path().join("forged.json");
    std::fs::write(&f, forged.to_string()).unwrap();
    let out = rxbridge(
        dir.path(),
        &["audit", "verify", "--anchor", f.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("signature does not verify"),
        "{}",
        stdout(&out)
    );

    sql(
        dir.path(),
        "DROP TRIGGER events_no_delete; DELETE FROM events WHERE seq > 11;",
    );
    let out = rxbridge(dir.path(), &["audit", "verify", "--anchor", a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("events: 11 entries, shorter than the 31 the anchor"),
        "{}",
        stdout(&out)
    );
}
