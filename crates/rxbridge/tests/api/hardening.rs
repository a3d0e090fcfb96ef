//! The controls an attacker tests first: cookie attributes, slow and greedy connections,
//! sign-in throttling, the password policy and the separate metrics listener.

use crate::helpers::*;
use crate::portal::{browser, csrf_in};
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
        .add("cookie@example.com", rxbridge_app::staff::Role::Support, None)
        .await
        .unwrap();
    let r = c
        .post(app.url("/staff/login"))
        .form(&[
            ("csrf", csrf_in(&page).as_str()),
            ("email", "cookie@example.com"),
            ("password", otp.as_str()),
        ])
        .send()
        .await
        .unwrap();
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
