//! Cognito against the stand-in: tokens (real, forged, expired, for another app) mapped to
//! staff, and the portal's sign-in through the hosted UI.

use super::*;
use rxbridge_aws::cognito::{CognitoIdentity, CognitoVerifier, TokenError};

/// Cognito through the stand-in's JSON API (test set-up only; the product verifies tokens
/// with the pool's public keys and never calls Cognito).
struct Cognito {
    endpoint: String,
    http: reqwest::Client,
}

impl Cognito {
    async fn call(&self, op: &str, body: Value) -> Value {
        let r = self
            .http
            .post(&self.endpoint)
            .header("X-Amz-Target", format!("AWSCognitoIdentityProviderService.{op}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=local/20261127/eu-west-2/cognito-idp/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{op}: {status} {v}");
        v
    }

    /// A user in `groups`, signed in: (ID token, access token).
    async fn user(
        &self,
        pool: &str,
        client: &str,
        email: &str,
        groups: &[&str],
    ) -> (String, String) {
        self.call(
            "AdminCreateUser",
            json!({ "UserPoolId": pool, "Username": email, "MessageAction": "SUPPRESS" }),
        )
        .await;
        self.call(
            "AdminSetUserPassword",
            json!({ "UserPoolId": pool, "Username": email, "Password": "Correct-Horse-9", "Permanent": true }),
        )
        .await;
        for g in groups {
            self.call(
                "AdminAddUserToGroup",
                json!({ "UserPoolId": pool, "Username": email, "GroupName": g }),
            )
            .await;
        }
        let auth = self
            .call(
                "InitiateAuth",
                json!({
                    "ClientId": client,
                    "AuthFlow": "USER_PASSWORD_AUTH",
                    "AuthParameters": { "USERNAME": email, "PASSWORD": "Correct-Horse-9" }
                }),
            )
            .await;
        let r = &auth["AuthenticationResult"];
        (
            r["IdToken"].as_str().unwrap().to_string(),
            r["AccessToken"].as_str().unwrap().to_string(),
        )
    }
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn unb64(s: &str) -> Value {
    use base64::Engine;
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap(),
    )
    .unwrap()
}

/// A user pool with an app client and a group per role (and one unrelated group).
async fn pool_and_client(c: &Cognito) -> (String, String) {
    let pool = c
        .call(
            "CreateUserPool",
            json!({ "PoolName": testing::unique_table("staff") }),
        )
        .await["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let client = c
        .call(
            "CreateUserPoolClient",
            json!({ "UserPoolId": pool, "ClientName": "portal", "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"] }),
        )
        .await["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    for g in ["support", "pharmacist", "finance", "admin", "unrelated"] {
        c.call("CreateGroup", json!({ "UserPoolId": pool, "GroupName": g }))
            .await;
    }
    (pool, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cognito_tokens_are_verified_and_mapped_to_staff() {
    let endpoint = testing::endpoint();
    let c = Cognito {
        endpoint: endpoint.clone(),
        http: reqwest::Client::new(),
    };
    let (pool, client) = pool_and_client(&c).await;
    let region = pool.split('_').next().unwrap().to_string();
    let verifier = |client_id: &str| {
        Arc::new(
            CognitoVerifier::new(&region, &pool, client_id)
                .unwrap()
                .with_jwks_url(&format!("{endpoint}/{pool}/.well-known/jwks.json")),
        )
    };
    let v = verifier(&client);
    let now = jiff::Timestamp::now();
    let (id_token, access_token) = c
        .user(
            &pool,
            &client,
            "finn@pharmacy.example",
            &["finance", "unrelated"],
        )
        .await;
    let t = v.verify(&id_token, now).await.unwrap();
    assert_eq!((t.role, t.token_use.as_str()), (Role::Finance, "id"));
    assert_eq!(t.email.as_deref(), Some("finn@pharmacy.example"));
    assert_eq!(
        v.verify(&access_token, now).await.unwrap().token_use,
        "access"
    );
    // Expired: the same token an hour and a bit later.
    let later = now + jiff::SignedDuration::from_hours(2);
    assert_eq!(v.verify(&id_token, later).await, Err(TokenError::Expired));
    // Another app client's verifier refuses it.
    assert_eq!(
        verifier("someone-elses-client")
            .verify(&id_token, now)
            .await,
        Err(TokenError::Audience)
    );
    // Forged: claims changed (promoted to admin), signature kept.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims = unb64(parts[1]);
    claims["cognito:groups"] = json!(["admin"]);
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert!(matches!(
        v.verify(&forged, now).await,
        Err(TokenError::Invalid(_))
    ));
    // Unsigned ("alg": "none") and an unknown signing key.
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        parts[1]
    );
    assert!(v.verify(&none, now).await.is_err());
    let mut header = unb64(parts[0]);
    header["kid"] = json!("not-a-key-of-this-pool");
    let unknown = format!("{}.{}.{}", b64(&header), parts[1], parts[2]);
    assert_eq!(v.verify(&unknown, now).await, Err(TokenError::UnknownKey));
    assert_eq!(v.verify("garbage", now).await, Err(TokenError::Malformed));
    // Group membership decides the role: none, or two, is refused.
    let (nobody, _) = c.user(&pool, &client, "nobody@pharmacy.example", &[]).await;
    assert_eq!(v.verify(&nobody, now).await, Err(TokenError::NoRole));
    let (two, _) = c
        .user(
            &pool,
            &client,
            "two@pharmacy.example",
            &["support", "admin"],
        )
        .await;
    assert_eq!(v.verify(&two, now).await, Err(TokenError::SeveralRoles));

    // The identity port: a verified ID token opens a staff session.
    let store = Arc::new(testing::fresh_store().await);
    let clock: Arc<dyn rxbridge_app::Clock> = Arc::new(rxbridge_app::SystemClock);
    let staff = Arc::new(rxbridge_app::staff::StaffService::new(
        store.clone(),
        clock.clone(),
    ));
    let identity = CognitoIdentity {
        verifier: v.clone(),
        staff: staff.clone(),
        clock,
    };
    let s = identity.sign_in("", &id_token).await.unwrap();
    assert_eq!(s.session.staff.role, Role::Finance);
    assert_eq!(s.session.staff.email, "finn@pharmacy.example");
    let again = identity
        .sign_in("FINN@pharmacy.example", &id_token)
        .await
        .unwrap();
    assert_eq!(
        again.session.staff.id, s.session.staff.id,
        "one account, found by email"
    );
    assert!(staff.session(&again.token).await.unwrap().is_some());
    assert!(matches!(
        identity.sign_in("other@pharmacy.example", &id_token).await,
        Err(StaffError::InvalidCredentials)
    ));
    assert!(matches!(
        identity.sign_in("", &access_token).await,
        Err(StaffError::InvalidCredentials)
    ));
    assert!(matches!(
        identity.sign_in("", &forged).await,
        Err(StaffError::InvalidCredentials)
    ));
    // A pharmacist needs an account (with a GPhC number) made by an admin first.
    let (pharm, _) = c
        .user(&pool, &client, "pat@pharmacy.example", &["pharmacist"])
        .await;
    assert!(matches!(
        identity.sign_in("", &pharm).await,
        Err(StaffError::Invalid(_))
    ));
    staff
        .add("pat@pharmacy.example", Role::Pharmacist, Some("2012345"))
        .await
        .unwrap();
    assert_eq!(
        identity
            .sign_in("", &pharm)
            .await
            .unwrap()
            .session
            .staff
            .role,
        Role::Pharmacist
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_signs_staff_in_through_cognito_hosted_ui() {
    use std::collections::HashMap;
    let mut e = env().await;
    let endpoint = testing::endpoint();
    let c = Cognito {
        endpoint: endpoint.clone(),
        http: reqwest::Client::new(),
    };
    let (pool, client) = pool_and_client(&c).await;
    let (id_token, _) = c
        .user(&pool, &client, "sam@pharmacy.example", &["support"])
        .await;
    // A stand-in of the pool domain's OAuth token endpoint: one valid code; it keeps the PKCE
    // verifier it was sent.
    let verifier_seen: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let (seen, expected_client) = (verifier_seen.clone(), client.clone());
    let token_endpoint = axum::Router::new().route(
        "/oauth2/token",
        axum::routing::post(
            move |axum::extract::Form(f): axum::extract::Form<HashMap<String, String>>| {
                let (seen, expected_client, id_token) =
                    (seen.clone(), expected_client.clone(), id_token.clone());
                async move {
                    let ok = f.get("grant_type").map(String::as_str) == Some("authorization_code")
                        && f.get("code").map(String::as_str) == Some("code-123")
                        && f.get("client_id") == Some(&expected_client)
                        && f.get("redirect_uri").map(String::as_str)
                            == Some("https://rx.example/staff/login/callback");
                    *seen.lock().unwrap() = f.get("code_verifier").cloned();
                    if ok {
                        (
                            axum::http::StatusCode::OK,
                            axum::Json(json!({ "id_token": id_token, "access_token": "a", "token_type": "Bearer", "expires_in": 3600 })),
                        )
                    } else {
                        (
                            axum::http::StatusCode::BAD_REQUEST,
                            axum::Json(json!({ "error": "invalid_grant" })),
                        )
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let domain = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, token_endpoint).await });
    e.settings.cognito_pool_id = Some(pool.clone());
    e.settings.cognito_client_id = Some(client.clone());
    e.settings.cognito_domain = Some(domain.clone());
    e.settings.cognito_jwks_url = Some(format!("{endpoint}/{pool}/.well-known/jwks.json"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = rxbridge::Config {
        public_url: Some("https://rx.example".into()),
        ..config(&dir)
    };
    let started = lambda::start(cfg, &e.settings, Arc::new(rxbridge_app::SystemClock))
        .await
        .unwrap();
    // The sign-in page offers only the provider.
    let page = invoke_raw(
        started.router(),
        apigw_event("GET", "/staff/login", json!({}), None),
    )
    .await;
    let html = page["body"].as_str().unwrap();
    assert!(
        html.contains("/staff/login/external") && !html.contains("type=\"password\""),
        "{html}"
    );
    // From the sandbox's sign-in page, the provider's sign-in keeps the sandbox.
    let page = invoke_raw(
        started.router(),
        apigw_event("GET", "/staff/login?mode=test", json!({}), None),
    )
    .await;
    assert!(
        page["body"]
            .as_str()
            .unwrap()
            .contains("/staff/login/external?mode=test")
    );
    let sandbox = invoke_raw(
        started.router(),
        apigw_event("GET", "/staff/login/external?mode=test", json!({}), None),
    )
    .await;
    let kept = cookie_from(&sandbox, "__Host-rxb_oauth").expect("the state cookie");
    assert!(kept.starts_with("__Host-rxb_oauth=test."), "{kept}");
    // 1. Off to the provider, with state and a PKCE challenge.
    let start = invoke_raw(
        started.router(),
        apigw_event("GET", "/staff/login/external", json!({}), None),
    )
    .await;
    assert_eq!(start["statusCode"], 303);
    let location = start["headers"]["location"].as_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{domain}/oauth2/authorize?")),
        "{location}"
    );
    let url = reqwest::Url::parse(&location).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], client);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], "https://rx.example/staff/login/callback");
    let oauth = cookie_from(&start, "__Host-rxb_oauth").expect("the state cookie");
    assert!(
        start["cookies"][0]
            .as_str()
            .unwrap()
            .contains("SameSite=Lax"),
        "the callback is a cross-site navigation"
    );
    // 2. A callback with someone else's state is refused, and so is a bad code.
    let forged = invoke_raw(
        started.router(),
        with_cookie(
            apigw_event(
                "GET",
                "/staff/login/callback?code=code-123&state=not-ours",
                json!({}),
                None,
            ),
            &oauth,
        ),
    )
    .await;
    assert_eq!(forged["statusCode"], 401);
    assert_eq!(cookie_from(&forged, "__Host-rxb_session"), None);
    let bad_code = invoke_raw(
        started.router(),
        with_cookie(
            apigw_event(
                "GET",
                &format!("/staff/login/callback?code=stolen&state={}", q["state"]),
                json!({}),
                None,
            ),
            &oauth,
        ),
    )
    .await;
    assert_eq!(bad_code["statusCode"], 401);
    // 3. The real callback: a session, and the stand-in got the verifier of the challenge.
    let done = invoke_raw(
        started.router(),
        with_cookie(
            apigw_event(
                "GET",
                &format!("/staff/login/callback?code=code-123&state={}", q["state"]),
                json!({}),
                None,
            ),
            &oauth,
        ),
    )
    .await;
    assert_eq!(done["statusCode"], 303, "{done:#}");
    assert_eq!(done["headers"]["location"], "/staff");
    let session = cookie_from(&done, "__Host-rxb_session").expect("a session cookie");
    let verifier = verifier_seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        rxbridge_app::staff::pkce_challenge(&verifier),
        q["code_challenge"]
    );
    // 4. Signed in as the account Cognito named, in the role its group says.
    let home = invoke_raw(
        started.router(),
        with_cookie(apigw_event("GET", "/staff", json!({}), None), &session),
    )
    .await;
    assert_eq!(home["statusCode"], 200, "{home:#}");
    assert!(
        home["body"]
            .as_str()
            .unwrap()
            .contains("sam@pharmacy.example")
    );
    let account = started
        .wired
        .staff
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.email == "sam@pharmacy.example")
        .unwrap();
    assert_eq!(account.role, Role::Support);
}
