//! The binary itself: CLI commands, JSON logs without patient data, graceful shutdown.

use crate::api::helpers::*;
use serde_json::Value;
use std::process::{Command, Stdio};

pub(crate) fn rxbridge(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rxbridge"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("RXBRIDGE_PATIENT_KEY")
        .output()
        .unwrap()
}

/// SIGTERM to a running `serve`: it stops gracefully, exit 0; what it wrote.
pub(crate) fn sigterm(child: std::process::Child) -> std::process::Output {
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    out
}

/// The command succeeded (or the test fails with what it wrote to stderr).
pub(crate) fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A command that succeeded and printed exactly one line, a JSON value.
pub(crate) fn one_json_line(out: std::process::Output) -> Value {
    succeeded(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1);
    serde_json::from_str(text.trim()).unwrap()
}

#[test]
fn clinic_add_json_prints_exactly_one_object_and_rotate_key_works() {
    let dir = tempfile::tempdir().unwrap();
    let out = rxbridge(
        dir.path(),
        &["clinic", "add", "--name", "Acme ADHD", "--json"],
    );
    let v = one_json_line(out);
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 3);
    assert!(v["clinic_id"].as_str().unwrap().starts_with("cl_"));
    assert!(v["test_key"].as_str().unwrap().starts_with("rxb_test_"));
    assert!(v["live_key"].as_str().unwrap().starts_with("rxb_live_"));
    // The database holds hashes, not keys.
    let db = std::fs::read(dir.path().join("rxbridge.db")).unwrap();
    let wal = std::fs::read(dir.path().join("rxbridge.db-wal")).unwrap_or_default();
    let key = v["test_key"].as_str().unwrap();
    assert!(
        !db.windows(key.len())
            .chain(wal.windows(key.len()))
            .any(|w| w == key.as_bytes())
    );
    let out = rxbridge(
        dir.path(),
        &[
            "clinic",
            "rotate-key",
            "--clinic",
            v["clinic_id"].as_str().unwrap(),
            "--mode",
            "test",
            "--json",
        ],
    );
    succeeded(&out);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["key"].as_str().unwrap().starts_with("rxb_test_"));
    assert_ne!(r["key"], v["test_key"]);
    let out = rxbridge(
        dir.path(),
        &[
            "clinic",
            "rotate-key",
            "--clinic",
            "cl_nope",
            "--mode",
            "test",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no clinic"));
    let out = rxbridge(dir.path(), &["audit", "verify"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: 2 events"));
}

#[tokio::test]
async fn rotated_key_stops_working_over_http() {
    let app = spawn_app().await;
    let new = app
        .running
        .as_ref()
        .unwrap()
        .clinics
        .rotate_key(&app.clinic_id, rxbridge_app::Mode::Test)
        .await
        .unwrap();
    let (s, _) = app.get_json("/v1/prescriptions", &app.test_key).await;
    assert_eq!(s, reqwest::StatusCode::UNAUTHORIZED);
    let (s, _) = app.get_json("/v1/prescriptions", &new).await;
    assert_eq!(s, reqwest::StatusCode::OK);
    let (s, _) = app.get_json("/v1/prescriptions", &app.live_key).await;
    assert_eq!(s, reqwest::StatusCode::OK, "the live key is untouched");
}

#[tokio::test]
async fn audit_verify_finds_a_tampered_event() {
    let mut app = spawn_app().await;
    app.submit_ok(&valid_body()).await;
    app.submit_ok(&valid_body()).await;
    app.stop().await;
    let dir = app.data_dir.path().to_path_buf();
    let out = rxbridge(&dir, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let c = rusqlite::Connection::open(dir.join("rxbridge.db")).unwrap();
    assert!(
        c.execute("UPDATE events SET actor = 'x' WHERE seq = 2", [])
            .is_err(),
        "append-only"
    );
    c.execute_batch("DROP TRIGGER events_no_update; UPDATE events SET detail = '{\"status\":\"forged\"}' WHERE seq = 2;").unwrap();
    drop(c);
    let out = rxbridge(&dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broken at event 2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn serve_logs_json_without_patient_data_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_rxbridge"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("RXBRIDGE_PATIENT_KEY")
        // Tests run side by side: no fixed metrics port.
        .env("RXBRIDGE_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let ready = crate::common::ready(&client, &base).await;
    assert!(ready, "server did not become ready");
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo-clinic.json")).unwrap(),
    )
    .unwrap();
    let key = demo["test_key"].as_str().unwrap();
    let r = client
        .post(format!("{base}/v1/prescriptions"))
        .bearer_auth(key)
        .header("Idempotency-Key", "log-test")
        .json(&valid_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let mut bad = valid_body();
    bad["patient"]["nhs_number"] = "9434765918".into();
    let r = client
        .post(format!("{base}/v1/prescriptions"))
        .bearer_auth(key)
        .header("Idempotency-Key", "log-test-2")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    // SIGTERM: graceful stop, exit 0.
    let out = sigterm(child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sandbox key") && stdout.contains("curl"),
        "{stdout}"
    );
    let logs = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 4, "{logs}");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
        assert!(v["level"].is_string());
    }
    assert!(logs.contains("request_id"));
    for needle in [
        "Taylor",
        "9434765919",
        "9434765918",
        "M1 1AE",
        "sam.taylor",
        "1998-02-14",
        "07700900123",
        key,
    ] {
        assert!(!logs.contains(needle), "{needle} reached the log");
    }
}

#[test]
fn export_all_writes_every_record_as_json_lines_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let added = rxbridge(
        dir.path(),
        &["clinic", "add", "--name", "Acme ADHD", "--json"],
    );
    assert!(added.status.success());
    let file = dir.path().join("export.jsonl");
    let out = rxbridge(
        dir.path(),
        &["export", "all", "--out", file.to_str().unwrap()],
    );
    succeeded(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 4 records"));
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["format"], "rxbridge-export/1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "owner-only: it holds password and lookup hashes"
        );
    }
    let kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["clinic", "api_key", "api_key", "event"]);
    // Keys stay hashed: the key itself is nowhere in the file.
    let v: Value = serde_json::from_slice(&added.stdout).unwrap();
    assert!(!text.contains(v["test_key"].as_str().unwrap()));
    let again = rxbridge(
        dir.path(),
        &["export", "all", "--out", file.to_str().unwrap()],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("creating"));
}

#[test]
fn dev_seed_fills_a_data_directory_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = rxbridge(
        dir.path(),
        &[
            "dev",
            "seed",
            "--count",
            "300",
            "--patients",
            "50",
            "--hot-patient",
            "5",
        ],
    );
    succeeded(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("seeded 305 prescriptions"));
    let out = rxbridge(dir.path(), &["audit", "verify"]);
    assert!(out.status.success());
    // The clinic's creation and one event per prescription, chained.
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok: 306 events"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `rxbridge dev eps-sim` on a free port (key id `cli-test`, API key `cli-app`), once it answers.
async fn start_eps_sim(keys: &std::path::Path) -> (std::process::Child, String) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_rxbridge"))
        .args(["dev", "eps-sim", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--public-key")
        .arg(keys.join("rs256-public.pem"))
        .args(["--key-id", "cli-test", "--api-key", "cli-app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = async || {
        let r = http.get(format!("{base}/_sim/received")).send().await;
        r.is_ok_and(|r| r.status().is_success())
    };
    assert!(
        crate::common::poll(crate::common::PATIENCE, up, |ok| *ok).await,
        "the stand-in did not start"
    );
    (child, base)
}

/// `rxbridge eps release` against `rxbridge dev eps-sim`, configured by a TOML file: the
/// published prescription (outside the formulary) is returned, and the return is sent.
#[tokio::test]
async fn eps_release_against_the_stand_in_returns_what_it_cannot_take() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let keys = root.join("tests/fixtures/keys");
    let (child, base) = start_eps_sim(&keys).await;
    let dir = tempfile::tempdir().unwrap();
    let clinic = one_json_line(rxbridge(
        dir.path(),
        &["clinic", "add", "--name", "EPS", "--json"],
    ));
    let config = dir.path().join("rxbridge.toml");
    std::fs::write(
        &config,
        format!(
            r#"[eps]
base_url = "{base}"
token_url = "{base}/oauth2/token"
api_key = "cli-app"
key_id = "cli-test"
private_key_file = "{key}"
mode = "test"
clinic_id = "{clinic}"
ods_code = "FA565"
postcode = "LS1 1AA"
agent_role_profile_id = "555086415105"
agent_user_id = "3415870201"
"#,
            key = keys.join("rs256-private.pem").display(),
            clinic = clinic["clinic_id"].as_str().unwrap(),
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let out = rxbridge(dir.path(), &["--config", &config, "eps", "release"]);
    succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 recorded"), "{stdout}");
    assert!(stdout.contains("1 returned to EPS"), "{stdout}");
    assert!(stdout.contains("sent: 1 delivered"), "{stdout}");
    let received: serde_json::Value = reqwest::get(format!("{base}/_sim/received"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = received
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/FHIR/R4/Task/$release", "/FHIR/R4/Task"],
        "{received:#}"
    );
    // Again: nothing new released, nothing sent twice.
    let out = rxbridge(dir.path(), &["--config", &config, "eps", "release"]);
    succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sent: 0 delivered"), "{stdout}");
    // The first release's kept answer (the first document: ids are time-ordered UUIDv7s)
    // taken in again: found already there, nothing sent.
    let doc = std::fs::read_dir(dir.path().join("documents"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().file_stem()?.to_string_lossy().into_owned()))
        .min()
        .expect("the kept release answer");
    let out = rxbridge(
        dir.path(),
        &[
            "--config",
            &config,
            "eps",
            "release",
            "--from-document",
            &doc,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("0 returned to EPS, 0 EPS could not release, 0 unreadable"),
        "{stdout}"
    );
    assert!(stdout.contains("sent: 0 delivered"), "{stdout}");
    sigterm(child);
}

#[tokio::test]
async fn dev_eps_sim_serves_the_dispensing_stand_in_and_stops_on_sigterm() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/keys");
    let (child, base) = start_eps_sim(&keys).await;
    let client = |kid: &str| {
        rxbridge_eps::EpsClient::new(rxbridge_eps::EpsConfig {
            base_url: base.clone(),
            token_url: format!("{base}/oauth2/token"),
            api_key: "cli-app".into(),
            key_id: kid.into(),
            private_key_pem: std::fs::read_to_string(keys.join("rs256-private.pem")).unwrap(),
            retry: rxbridge_eps::Retry::default(),
        })
        .unwrap()
    };
    let dispenser = rxbridge_fhir::dispensing::Dispenser {
        ods_code: "FA565".into(),
        name: "Test Pharmacy".into(),
        address_lines: vec!["1 Test Street".into()],
        city: "Leeds".into(),
        postcode: "LS1 1AA".into(),
        phone: "0113 0000000".into(),
        reimbursement_authority: "T1450".into(),
        agent: rxbridge_fhir::dispensing::Agent {
            role_profile_id: "555086415105".into(),
            user_id: "3415870201".into(),
            name: "Test Pharmacist".into(),
            job_role_code: "R8000".into(),
            phone: "0113 0000001".into(),
        },
    };
    let req = rxbridge_fhir::dispensing::release_request(
        "854b706a-c6e5-11ec-9d64-0242ac120002",
        &dispenser,
        None,
    );
    match client("another-kid").release(&req, "cli").await {
        Err(rxbridge_eps::EpsError::Unauthorized(why)) => assert!(why.contains("401"), "{why}"),
        other => panic!("{other:?}"),
    }
    let (release, _) = client("cli-test").release(&req, "cli").await.unwrap();
    assert_eq!(
        release.passed.len(),
        1,
        "the published example's prescription"
    );
    let out = sigterm(child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("API at {base}")), "{stdout}");
}

/// `rxbridge eps …` without the eps settings says which to set, and changes nothing.
#[test]
fn eps_commands_without_the_settings_name_them() {
    let dir = tempfile::tempdir().unwrap();
    for args in [["eps", "release"], ["eps", "notify"]] {
        let out = rxbridge(dir.path(), &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("EPS is not configured: set eps.base_url (RXBRIDGE_EPS_BASE_URL)"),
            "{err}"
        );
    }
    // On with a setting missing: refused at start, naming it.
    let out = Command::new(env!("CARGO_BIN_EXE_rxbridge"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["eps", "release"])
        .env_remove("RXBRIDGE_PATIENT_KEY")
        .env("RXBRIDGE_EPS_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("eps.token_url is not set"), "{err}");
}

#[test]
fn store_status_and_migrate_upgrade_an_older_data_directory_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rxbridge.db");
    let latest = rxbridge_store_sqlite::SCHEMA_VERSION;
    // No database: both refuse, and neither creates one.
    for cmd in ["status", "migrate"] {
        let out = rxbridge(dir.path(), &["store", cmd]);
        assert_eq!(out.status.code(), Some(1), "store {cmd}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("there is no database at"));
        assert!(!db.exists(), "store {cmd} created a database");
    }
    rxbridge_store_sqlite::create_at_schema(&db, 11).unwrap();
    let out = rxbridge(dir.path(), &["store", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("schema: 11 (this build: {latest})")),
        "{text}"
    );
    let pending = (12..=latest)
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        text.contains(&format!("upgrade pending: steps {pending};")),
        "{text}"
    );
    // status read it and left it as it was.
    assert_eq!(
        rxbridge_store_sqlite::schema_version(&db).unwrap(),
        Some(11)
    );

    let out = rxbridge(dir.path(), &["store", "migrate"]);
    succeeded(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "upgraded from schema 11 to {latest} (steps {pending})"
        )),
        "{text}"
    );
    assert_eq!(
        rxbridge_store_sqlite::schema_version(&db).unwrap(),
        Some(latest)
    );
    let out = rxbridge(dir.path(), &["store", "status"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("up to date")
    );
    let out = rxbridge(dir.path(), &["store", "migrate"]);
    succeeded(&out);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("nothing to do")
    );
    // The upgraded directory is a working one.
    succeeded(&rxbridge(dir.path(), &["audit", "verify"]));

    // A schema newer than this build's is refused, unchanged.
    let newer = tempfile::tempdir().unwrap();
    let db = newer.path().join("rxbridge.db");
    rxbridge_store_sqlite::create_at_schema(&db, latest).unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", latest as i64 + 1)
        .unwrap();
    for cmd in ["status", "migrate"] {
        let out = rxbridge(newer.path(), &["store", cmd]);
        assert_eq!(out.status.code(), Some(1), "store {cmd}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this build's"));
    }
}
