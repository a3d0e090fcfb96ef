//! The controls an attacker tests first: cookie attributes, slow and greedy connections,
//! sign-in throttling, the password policy and the separate metrics listener.

use crate::api::helpers::*;
use crate::api::portal::{browser, csrf_in, first_sign_in};
use crate::common::{get_text, post_form};
use reqwest::StatusCode;
use rxbridge::Config;

/// Every `Set-Cookie` of a response.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn assert_host_cookie(c: &str) {
    assert!(c.starts_with("__Host-"), "{c}");
    for attr in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/;"] {
        assert!(format!("{c};").contains(attr), "{attr} missing: {c}");
    }
    assert!(!c.to_ascii_lowercase().contains("domain="), "{c}");
}

#[tokio::test]
async fn staff_cookies_are_secure_host_cookies_without_any_setting() {
    // The default configuration: plain http on 127.0.0.1, `secure_cookies` unset.
    let app = spawn_app().await;
    let c = browser();
    let r = c.get(app.url("/staff/login")).send().await.unwrap();
    assert!(!r.headers().contains_key("strict-transport-security"));
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_host_cookie(&cookies[0]);
    let page = r.text().await.unwrap();
    let (_, otp) = app
        .running
        .as_ref()
        .unwrap()
        .staff
        .add(
            "cookie@example.com",
            rxbridge_app::staff::Role::Support,
            None,
        )
        .await
        .unwrap();
    let r = post_form(
        &c,
        app.url("/staff/login"),
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("email", "cookie@example.com"),
            ("password", otp.as_str()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(&r);
    assert!(
        cookies.iter().any(|c| c.starts_with("__Host-rxb_session=")),
        "{cookies:?}"
    );
    for cookie in &cookies {
        assert_host_cookie(cookie);
    }
    // The cookie-holding client (which, like browsers, keeps `Secure` cookies for loopback
    // http) is signed in.
    let r = c.get(app.url("/staff/password")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn secure_cookies_setting_now_governs_hsts_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(
        dir,
        Config {
            secure_cookies: true,
            ..Config::default()
        },
    )
    .await;
    let r = browser().get(app.url("/staff/login")).send().await.unwrap();
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    assert_host_cookie(&set_cookies(&r)[0]);
}

#[tokio::test]
async fn metrics_live_on_their_own_listener_and_the_public_one_answers_404() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().contains("rxbridge_outbox_pending"));
    let r = app.client.get(app.metrics_url()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("rxbridge_outbox_pending"));
    // The metrics listener serves nothing else.
    let other = app.metrics_url().replace("/metrics", "/v1/formulary");
    let r = app.client.get(other).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Off: no listener at all.
    let mut config = Config::default();
    config.metrics.listen = "off".into();
    let off = spawn_with(tempfile::tempdir().unwrap(), config).await;
    assert_eq!(off.running.as_ref().unwrap().metrics_addr, None);
    // A bad value stops start-up with the setting's name.
    let mut config = Config::default();
    config.metrics.listen = "everywhere".into();
    let e = config.validate().unwrap_err();
    assert!(
        format!("{e:#}").contains("RXBRIDGE_METRICS_LISTEN"),
        "{e:#}"
    );
    assert_eq!(Config::default().metrics.listen, "127.0.0.1:9464");
}

/// Connect, send one request on `s` and return the start of the answer.
async fn roundtrip(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

/// True once the server has closed `s` (EOF or reset), polling until `deadline`; what arrives
/// before (an error answer) is read and dropped.
async fn closed_by_server(s: &mut tokio::net::TcpStream, deadline: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    tokio::time::timeout(deadline, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(
        tempfile::tempdir().unwrap(),
        Config {
            header_read_timeout_secs: 1,
            ..Config::default()
        },
    )
    .await;
    let addr = app.running.as_ref().unwrap().addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let (mut rd, mut wr) = s.into_split();
    // One header byte at a time, never finishing the head, until the server gives up.
    let trickle = tokio::spawn(async move {
        for line in 0.. {
            if wr
                .write_all(format!("X-Slow-{line}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    });
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    // The deadline is a safety net for a broken build (hang), not a timing assertion.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok();
    trickle.abort();
    assert!(closed, "the trickling connection is still open");
    // A normal client is unaffected.
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(roundtrip(&mut ok).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn one_client_address_cannot_hold_more_than_its_connections() {
    let app = spawn_with(
        tempfile::tempdir().unwrap(),
        Config {
            max_connections_per_client: 2,
            ..Config::default()
        },
    )
    .await;
    assert!(Config::default().max_connections_per_client >= 256);
    let addr = app.running.as_ref().unwrap().addr;
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(roundtrip(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(roundtrip(&mut second).await.starts_with("HTTP/1.1 200"));
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_by_server(&mut third, std::time::Duration::from_secs(30)).await,
        "the connection over the cap was kept"
    );
    // The first two still work; closing one frees its slot.
    assert!(roundtrip(&mut first).await.starts_with("HTTP/1.1 200"));
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut again = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        if matches!(again.read(&mut buf).await, Ok(n) if n > 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_password_form_refuses_weak_passwords_and_says_why() {
    let app = spawn_app().await;
    let email = "morgan.lee@pharmacy.example";
    let (_, otp) = app
        .running
        .as_ref()
        .unwrap()
        .staff
        .add(email, rxbridge_app::staff::Role::Support, None)
        .await
        .unwrap();
    // The one-time password `staff add` hands out passes the policy itself.
    assert_eq!(rxbridge_app::passwords::check(&otp, email), Ok(()));
    let c = first_sign_in(&app, email, &otp).await;
    let page = get_text(&c, app.url("/staff/password")).await;
    let csrf = csrf_in(&page);
    for (weak, why) in [
        ("aaaaaaaaaaaa", "repeated"),
        ("short", "at least 12 characters"),
        ("morgan.lee rules the pharmacy", "email address"),
        ("qwertyuiop123", "common or breached"),
        ("iloveyou2026!", "common or breached"),
    ] {
        let r = post_form(
            &c,
            app.url("/staff/password"),
            &[
                ("csrf", csrf.as_str()),
                ("current", otp.as_str()),
                ("new", weak),
            ],
        )
        .await;
        let r = crate::common::follow(&c, r).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
        let body = r.text().await.unwrap();
        assert!(body.contains(why), "{weak}: {body}");
        assert!(
            !body.contains(weak),
            "a typed password is never shown again"
        );
    }
    // Still on the one-time password: nothing was changed.
    let r = c.get(app.url("/staff")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/staff/password");
    let r = post_form(
        &c,
        app.url("/staff/password"),
        &[
            ("csrf", csrf.as_str()),
            ("current", otp.as_str()),
            ("new", "lanterns over seven quiet harbours"),
        ],
    )
    .await;
    assert_eq!(r.headers()["location"], "/staff");
}

/// A cookie-holding client whose connections come from `from` (any 127/8 address is this
/// machine), standing for a browser elsewhere on the internet.
fn browser_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn try_sign_in(
    app: &TestApp,
    c: &reqwest::Client,
    email: &str,
    password: &str,
) -> StatusCode {
    let page = get_text(c, app.url("/staff/login")).await;
    let r = post_form(
        c,
        app.url("/staff/login"),
        &[
            ("csrf", csrf_in(&page).as_str()),
            ("email", email),
            ("password", password),
        ],
    )
    .await;
    match r.status() {
        // A refused sign-in is shown on the sign-in page, with its 401.
        StatusCode::SEE_OTHER if r.headers()["location"] == "/staff/login" => {
            crate::common::follow(c, r).await.status()
        }
        s => s,
    }
}

#[tokio::test]
async fn an_outsider_guessing_cannot_lock_staff_out_but_is_throttled_itself() {
    use rxbridge_app::staff::Role;
    let app = spawn_app().await;
    let staff = &app.running.as_ref().unwrap().staff;
    let (_, victim_otp) = staff
        .add("victim@pharmacy.example", Role::Pharmacist, Some("2033467"))
        .await
        .unwrap();
    let (_, other_otp) = staff
        .add("other@pharmacy.example", Role::Support, None)
        .await
        .unwrap();
    let attacker = browser_from("127.0.0.2");
    let mut answers = Vec::new();
    for i in 0..rxbridge_app::throttle::ADDRESS_FREE_ATTEMPTS + 5 {
        answers.push(
            try_sign_in(
                &app,
                &attacker,
                "victim@pharmacy.example",
                &format!("guess number {i}"),
            )
            .await,
        );
    }
    assert_eq!(answers[0], StatusCode::UNAUTHORIZED);
    assert_eq!(
        answers.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{answers:?}"
    );
    // The attacker's address is held off even with the right password, on any account.
    assert_eq!(
        try_sign_in(&app, &attacker, "victim@pharmacy.example", &victim_otp).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        try_sign_in(&app, &attacker, "other@pharmacy.example", &other_otp).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The pharmacist, from their own address, signs in.
    let own = browser_from("127.0.0.1");
    assert_eq!(
        try_sign_in(&app, &own, "victim@pharmacy.example", &victim_otp).await,
        StatusCode::SEE_OTHER
    );
    // Every failure was recorded on the account's audit trail; refusals while throttled were
    // not password checks and were not.
    let db = rusqlite::Connection::open(app.data_dir.path().join("rxbridge.db")).unwrap();
    let failed: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'staff.sign_in_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(failed >= 5 && (failed as usize) < answers.len(), "{failed}");
}

fn rxbridge_cli(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rxbridge"));
    c.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("RXBRIDGE_PATIENT_KEY")
        .env_remove("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS")
        .env_remove("RXBRIDGE_WEBHOOKS_ALLOWED_PORTS");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn webhook_set_takes_local_targets_only_for_sandbox_destinations_with_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let set = |env: &[(&str, &str)], dest: &str, url: &str| {
        rxbridge_cli(
            dir.path(),
            env,
            &["webhook", "set", "--destination", dest, "--url", url],
        )
    };
    let allow = [("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true")];
    let local = "http://127.0.0.1:9090/orders";
    let (ok, out) = set(&[], "warehouse:test", local);
    assert!(!ok, "{out}");
    assert!(
        out.contains("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS"),
        "{out}"
    );
    let (ok, out) = set(&allow, "warehouse:test", local);
    assert!(ok, "{out}");
    // Never for live destinations, setting or not.
    let (ok, out) = set(&allow, "warehouse:live", local);
    assert!(!ok, "{out}");
    assert!(out.contains("webhooks.allow_private_targets"), "{out}");
    let (ok, out) = set(&allow, "warehouse:live", "https://169.254.169.254/latest");
    assert!(!ok, "{out}");
    // https on 443, or a port on the allow-list.
    let odd_port = "https://warehouse.example.com:8443/orders";
    let (ok, out) = set(&[], "warehouse:live", odd_port);
    assert!(!ok && out.contains("webhooks.allowed_ports"), "{out}");
    let (ok, out) = set(
        &[("RXBRIDGE_WEBHOOKS_ALLOWED_PORTS", "443,8443")],
        "warehouse:live",
        odd_port,
    );
    assert!(ok, "{out}");
    let (ok, out) = set(
        &[],
        "warehouse:live",
        "https://warehouse.example.com/orders",
    );
    assert!(ok, "{out}");
}
