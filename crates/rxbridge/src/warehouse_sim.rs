//! `rxbridge dev warehouse-sim`: a local stand-in warehouse for demos and tests. It receives
//! `fulfilment.requested` webhooks (verifying their Standard Webhooks signature), then posts
//! `picked`, `dispatched` and `delivered` back to rxbridge's `/v1/warehouse/events`, signed
//! with the inbound secret. On start it books in stock of every Schedule 2 product so that
//! controlled-drug orders are not held.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use rxbridge_app::outbox;
use rxbridge_app::ports::Mode;
use rxbridge_domain::formulary::{Formulary, Schedule};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// rxbridge's base URL (`http://127.0.0.1:8080`).
    pub rxbridge: String,
    /// The secret rxbridge signs orders with (from `rxbridge webhook set`).
    pub order_secret: String,
    /// The secret the simulator signs its events with (rxbridge's
    /// `warehouse.inbound_secrets`).
    pub event_secret: String,
    pub mode: Mode,
    /// Units of each Schedule 2 product booked in at start (0: none).
    pub stock: i64,
    /// Pause before dispatching and before delivering.
    pub delay: Duration,
}

struct Sim {
    cfg: SimConfig,
    http: reqwest::Client,
    parcels: AtomicU64,
}

impl Sim {
    /// Post one signed event, retrying a few times while rxbridge is unavailable.
    async fn post_event(&self, kind: &str, data: Value) -> anyhow::Result<u16> {
        let body = json!({ "type": kind, "data": data }).to_string();
        let id = format!("wh_sim_{}", uuid::Uuid::now_v7().simple());
        let mut last = 0;
        for attempt in 0..5 {
            let ts = jiff::Timestamp::now().as_second();
            let r = self
                .http
                .post(format!("{}/v1/warehouse/events", self.cfg.rxbridge))
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    outbox::sign(
                        std::slice::from_ref(&self.cfg.event_secret),
                        &id,
                        ts,
                        body.as_bytes(),
                    ),
                )
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match r {
                Ok(r) if !r.status().is_server_error() => return Ok(r.status().as_u16()),
                Ok(r) => last = r.status().as_u16(),
                Err(e) => tracing::warn!(error = %e, "the simulator could not reach rxbridge"),
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        anyhow::bail!("rxbridge kept answering {last} to {kind}")
    }

    async fn fulfil(self: Arc<Self>, order: Value) {
        let data = &order["data"];
        let id = data["order_id"].as_str().unwrap_or_default().to_string();
        let cd = data["controlled_drug"].as_bool().unwrap_or(false);
        let name = data["deliver_to"]["name"]
            .as_str()
            .unwrap_or("the patient")
            .to_string();
        let n = self.parcels.fetch_add(1, Ordering::Relaxed) + 1;
        let steps = [
            ("picked", json!({ "order_id": id })),
            (
                "dispatched",
                json!({ "order_id": id, "carrier": "Royal Mail Tracked 24", "tracking_number": format!("SIM{n:09}GB") }),
            ),
            (
                "delivered",
                json!({ "order_id": id, "received_by": name, "recipient": "patient", "id_checked": cd }),
            ),
        ];
        for (kind, d) in steps {
            tokio::time::sleep(self.cfg.delay).await;
            match self.post_event(kind, d).await {
                Ok(s) if s < 300 => {}
                Ok(s) => {
                    tracing::warn!(order = %id, status = s, kind, "rxbridge refused the event; stopping this order");
                    return;
                }
                Err(e) => {
                    tracing::warn!(order = %id, error = %e, "giving up on this order");
                    return;
                }
            }
        }
    }
}

async fn receive(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if outbox::verify(
        std::slice::from_ref(&sim.cfg.order_secret),
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        &body,
        jiff::Timestamp::now().as_second(),
    )
    .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if v["type"] == "fulfilment.requested" {
        tokio::spawn(sim.clone().fulfil(v));
    }
    StatusCode::NO_CONTENT
}

/// Book in stock, then serve `POST /orders` on `listener` until `shutdown`.
pub async fn run(
    listener: tokio::net::TcpListener,
    cfg: SimConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sim = Arc::new(Sim {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        cfg,
        parcels: AtomicU64::new(0),
    });
    if sim.cfg.stock > 0 {
        for p in Formulary::builtin()
            .products
            .iter()
            .filter(|p| p.schedule == Schedule::Cd2)
        {
            let s = sim
                .post_event(
                    "stock_received",
                    json!({ "product_code": p.code, "quantity": sim.cfg.stock, "supplier": "Simulated Wholesaler Ltd",
                            "supplier_address": "1 Depot Road, Leeds LS1 1AA", "invoice_ref": format!("SIM-{}", p.code), "mode": sim.cfg.mode.as_str() }),
                )
                .await?;
            if s >= 300 {
                anyhow::bail!(
                    "rxbridge refused the stock of {} with HTTP {s}: is the simulator's event secret in warehouse.inbound_secrets?",
                    p.code
                );
            }
        }
    }
    let app = axum::Router::new()
        .route("/orders", post(receive))
        .with_state(sim);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
