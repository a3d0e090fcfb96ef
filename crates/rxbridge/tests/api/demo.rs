//! `serve --demo` started again on the same data directory: it lists the demo accounts (an
//! administrator among them), prints a one-time password only while it still signs in, and
//! `rxbridge staff reset-password` gives a new one.

use crate::api::cli::rxbridge;
use crate::api::portal::{browser, csrf_in};
use crate::common::post_form;
use reqwest::StatusCode;
use serde_json::Value;
use std::process::{Child, Command, Stdio};

/// `serve --demo` on `dir`, ready; with its base URL.
async fn start(dir: &std::path::Path) -> (Child, String) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_rxbridge"))
        .args(["--data-dir", dir.to_str().unwrap(), "serve", "--demo"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("RXBRIDGE_PATIENT_KEY")
        .env("RXBRIDGE_METRICS_LISTEN", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ready = crate::common::ready(&reqwest::Client::new(), &base).await;
    assert!(ready, "server did not become ready");
    (child, base)
}

/// SIGTERM, and what the server printed.
fn stop(child: Child) -> String {
    let out = crate::api::cli::sigterm(child);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line<'a>(stdout: &'a str, email: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(email))
        .unwrap_or_else(|| panic!("{email} not listed: {stdout}"))
}

#[tokio::test]
async fn the_demo_works_twice_and_passwords_are_reset_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = start(dir.path()).await;
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo-clinic.json")).unwrap(),
    )
    .unwrap();
    let otp = |role: &str| {
        demo["staff"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["role"] == role)
            .map(|s| s["one_time_password"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no demo {role}"))
    };
    // The support agent changes their one-time password.
    let c = sign_in(&base, "support@demo.rxbridge", &otp("support")).await;
    let page = c
        .get(format!("{base}/staff/password"))
        .send()
        .await
        .unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let r = post_form(
        &c,
        format!("{base}/staff/password"),
        &[
            ("csrf", csrf.as_str()),
            ("current", &otp("support")),
            ("new", "a much better passphrase"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let first = stop(child);
    assert!(
        line(&first, "admin@demo.rxbridge").contains(&otp("admin")),
        "{first}"
    );
    // Started again: the changed password is not printed; the others still are.
    let (child, _) = start(dir.path()).await;
    let second = stop(child);
    let support = line(&second, "support@demo.rxbridge");
    assert!(!support.contains(&otp("support")), "{second}");
    assert!(
        support.contains("staff reset-password --email support@demo.rxbridge"),
        "{support}"
    );
    assert!(line(&second, "pharmacist@demo.rxbridge").contains(&otp("pharmacist")));
    assert!(line(&second, "admin@demo.rxbridge").contains("admin"));
    // A reset gives a one-time password that signs in (and must be changed).
    let out = rxbridge(
        dir.path(),
        &[
            "staff",
            "reset-password",
            "--email",
            "support@demo.rxbridge",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reset: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fresh = reset["one_time_password"].as_str().unwrap();
    assert_eq!(reset["role"], "support");
    let unknown = rxbridge(
        dir.path(),
        &["staff", "reset-password", "--email", "nobody@demo.rxbridge"],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no staff account"));
    let (child, base) = start(dir.path()).await;
    sign_in(&base, "support@demo.rxbridge", fresh).await;
    let third = stop(child);
    assert!(
        line(&third, "support@demo.rxbridge").contains("reset-password"),
        "the file's password no longer signs in"
    );
}

/// Sign in with a one-time password: sent on to change it.
async fn sign_in(base: &str, email: &str, password: &str) -> reqwest::Client {
    let c = browser();
    let page = c.get(format!("{base}/staff/login")).send().await.unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let r = post_form(
        &c,
        format!("{base}/staff/login"),
        &[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/staff/password");
    c
}
