//! The Lambda entries of the one `rxbridge-lambda` binary: `api` (the same axum router, served
//! by `lambda_http` behind the HTTP API) and `worker` (EventBridge, once a minute: payment
//! sweep, release/expiry sweep, webhook delivery), chosen by `RXBRIDGE_LAMBDA_ROLE`.

use crate::{AwsSettings, backend, sdk_config};
use rxbridge::{Config, Wired};
use rxbridge_app::Clock;
use rxbridge_store_dynamodb::DynamoStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A started instance: the use cases wired on the AWS adapters.
pub struct Started {
    pub config: Config,
    pub wired: Wired,
    pub store: Arc<DynamoStore>,
    /// The anchor key and witnesses, when `RXBRIDGE_ANCHOR_BUCKET` is set.
    pub anchoring: Option<Anchoring>,
    /// From the start of `start` until ready (the cold start's own share).
    pub init: Duration,
}

/// What the worker's anchor run needs.
pub struct Anchoring {
    pub key: rxbridge_app::anchor::AnchorKey,
    pub witnesses: Vec<Arc<dyn rxbridge_app::anchor::Witness>>,
}

/// Connect the adapters (unwrapping the data key once) and wire the use cases.
pub async fn start(
    config: Config,
    settings: &AwsSettings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Started> {
    let t0 = Instant::now();
    config.validate()?;
    let sdk = sdk_config(settings).await;
    let aws = backend(&config, settings, &sdk).await?;
    let anchoring = match &settings.anchor_bucket {
        Some(bucket) => {
            let key = crate::anchors::anchor_key(&aws.store, &aws.backend.vault).await?;
            let transport: Arc<dyn rxbridge_app::outbox::WebhookTransport> =
                Arc::new(rxbridge::webhooks::HttpWebhooks::new(
                    rxbridge::webhooks::UrlPolicy::from_settings(&config.webhooks),
                )?);
            let mut witnesses = config.audit.witnesses(transport);
            witnesses.push(Arc::new(crate::anchors::S3Witness::new(
                &sdk,
                bucket,
                settings.endpoint_url.is_some(),
            )));
            Some(Anchoring { key, witnesses })
        }
        None => None,
    };
    let mut wired = rxbridge::wire(&config, aws.backend, clock.clone())?;
    if let Some(external) = hosted_sign_in(&config, settings, &wired, clock)? {
        wired.state.set_external_sign_in(external);
    }
    Ok(Started {
        config,
        wired,
        store: aws.store,
        anchoring,
        init: t0.elapsed(),
    })
}

/// Cognito's hosted sign-in for the portal, when the pool, client and domain are configured.
fn hosted_sign_in(
    config: &Config,
    settings: &AwsSettings,
    wired: &Wired,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<Arc<dyn rxbridge_app::staff::ExternalSignIn>>> {
    let (Some(pool), Some(client)) = (&settings.cognito_pool_id, &settings.cognito_client_id)
    else {
        return Ok(None);
    };
    let Some(domain) = &settings.cognito_domain else {
        tracing::warn!(
            "a Cognito pool is configured without RXBRIDGE_COGNITO_DOMAIN: staff sign in with local passwords"
        );
        return Ok(None);
    };
    // Pool ids are `{region}_{id}`.
    let region = pool.split('_').next().unwrap_or_default();
    let mut verifier = crate::cognito::CognitoVerifier::new(region, pool, client)?;
    if let Some(url) = &settings.cognito_jwks_url {
        verifier = verifier.with_jwks_url(url);
    }
    Ok(Some(Arc::new(crate::cognito::CognitoHostedUi {
        domain: domain.clone(),
        client_id: client.clone(),
        redirect_uri: format!("{}/staff/login/callback", config.public_url()),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        identity: crate::cognito::CognitoIdentity {
            verifier: Arc::new(verifier),
            staff: wired.staff.clone(),
            clock,
        },
    })))
}

impl Started {
    /// The router API Gateway's events are served by: the embedded server's public router
    /// (so no `/metrics`: there is no second listener here), with the client address taken
    /// from the event.
    pub fn router(&self) -> axum::Router {
        with_client_addr(rxbridge_http::router_with_timeout(
            self.wired.state.clone(),
            Duration::from_secs(self.config.request_timeout_secs),
        ))
    }
}

/// `router` with each request's [`rxbridge_http::ClientAddr`] set from API Gateway's
/// `requestContext.http.sourceIp` — the peer API Gateway saw, never `X-Forwarded-For`, which
/// the caller writes — for sign-in throttling.
pub fn with_client_addr(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
            use lambda_http::RequestExt as _;
            let ip = match req.request_context_ref() {
                Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => c
                    .http
                    .source_ip
                    .as_deref()
                    .and_then(|s| s.parse::<std::net::IpAddr>().ok()),
                _ => None,
            };
            if let Some(ip) = ip {
                req.extensions_mut().insert(rxbridge_http::ClientAddr(ip));
            }
            next.run(req).await
        },
    ))
}

/// One scheduled run: the payment sweep, the release/expiry sweep, then webhook delivery
/// until nothing is due or `budget` is spent. Each part's failure is reported, not fatal to
/// the others (the next run tries again).
pub async fn worker_run(wired: &Wired, budget: Duration) -> serde_json::Value {
    let t0 = Instant::now();
    let payments = report("payments sweep", wired.payments.tick().await);
    let fulfilment = report("fulfilment sweep", wired.fulfilment.sweep().await);
    let mut deliveries = Vec::new();
    while t0.elapsed() < budget {
        match wired.outbox.run_once().await {
            Ok(r) => {
                let idle = r == Default::default();
                deliveries.push(format!("{r:?}"));
                if idle {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox run failed");
                deliveries.push(format!("failed: {e}"));
                break;
            }
        }
    }
    serde_json::json!({
        "payments": payments,
        "fulfilment": fulfilment,
        "outbox": deliveries,
        "elapsed_ms": t0.elapsed().as_millis() as u64,
    })
}

/// The scheduled anchor run (its own, hourly, EventBridge rule: `{"rxbridge": "anchor"}`): a
/// signed anchor of every chain's head to every witness.
pub async fn anchor_run(started: &Started) -> serde_json::Value {
    let Some(a) = &started.anchoring else {
        tracing::warn!("an anchor run without RXBRIDGE_ANCHOR_BUCKET: nothing written");
        return serde_json::json!({ "anchor": "not configured" });
    };
    let r = rxbridge_app::anchor::publish(
        started.store.as_ref(),
        started.store.as_ref(),
        &a.key,
        &a.witnesses,
        jiff::Timestamp::now(),
    )
    .await;
    serde_json::json!({ "anchor": report("anchor", r) })
}

/// A part's report, or its failure (logged).
fn report<R: std::fmt::Debug, E: std::fmt::Display>(part: &str, r: Result<R, E>) -> String {
    match r {
        Ok(r) => format!("{r:?}"),
        Err(e) => {
            tracing::warn!(error = %e, "{part} failed");
            format!("failed: {e}")
        }
    }
}

/// Serve API Gateway events until the runtime stops.
pub async fn run_api(started: Started) -> Result<(), lambda_http::Error> {
    lambda_http::run(started.router()).await
}

/// Serve scheduled events until the runtime stops.
pub async fn run_worker(started: Started) -> Result<(), lambda_runtime::Error> {
    let started = Arc::new(started);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let started = started.clone();
            async move {
                if event.payload["rxbridge"] == "anchor" {
                    return Ok::<_, lambda_runtime::Error>(anchor_run(&started).await);
                }
                // The function's timeout is 5 minutes; stop delivering well before it.
                Ok::<_, lambda_runtime::Error>(
                    worker_run(&started.wired, Duration::from_secs(240)).await,
                )
            }
        },
    ))
    .await
}
