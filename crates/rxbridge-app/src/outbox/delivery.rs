//! The delivery worker: sends due messages through the webhook transport, records attempts,
//! backs off, dead-letters and replays.

use super::message::{Attempt, Endpoint, MessageStatus, OutboxMessage, OutboxStore};
use super::sealed::open_body;
use super::signing::{generate_secret, sign};
use crate::clock::Clock;
use crate::crypto::PatientVault;
use crate::ports::StoreError;
use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Waits after each failed attempt (the Standard Webhooks schedule stretched to ~3 days):
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h — ten attempts in about 75 hours.
pub const RETRY_SCHEDULE_SECS: [i64; 9] =
    [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// The wait after failed attempt `n` (1-based) with ±10 % jitter, or `None` when exhausted.
pub fn backoff(n: u32, jitter: f64) -> Option<SignedDuration> {
    let base = *RETRY_SCHEDULE_SECS.get(n.checked_sub(1)? as usize)?;
    let j = jitter.clamp(-1.0, 1.0) * 0.1;
    Some(SignedDuration::from_millis(
        (base as f64 * 1000.0 * (1.0 + j)) as i64,
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// From `Retry-After` (seconds form) on 429/503.
    pub retry_after: Option<SignedDuration>,
}

/// Posts one webhook for `destination` (its mode decides what the SSRF guard allows: private
/// and loopback targets only for sandbox destinations, and only when configured), checked
/// again at connect time.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    async fn post(
        &self,
        destination: &str,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<HttpAnswer, String>;
}

/// What a destination delivered by an adapter of its own (EPS), not as a webhook, answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered {
        status: u16,
    },
    /// Refused for good (the same message again would be refused again): dead-lettered.
    Refused {
        status: Option<u16>,
        why: String,
    },
    /// Nothing to send for this message; kept for the record like a destination without an
    /// endpoint.
    NotApplicable(String),
    /// Not delivered this time: retried on the schedule (at least `retry_after` later).
    Failed {
        status: Option<u16>,
        why: String,
        retry_after: Option<SignedDuration>,
    },
}

/// Delivers the messages of a destination that is not a webhook receiver (`eps:{mode}`). The
/// body is opened; the adapter builds and sends the message it stands for.
#[async_trait]
pub trait DirectTransport: Send + Sync {
    async fn deliver(&self, message: &OutboxMessage, body: serde_json::Value) -> Delivery;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub delivered: u32,
    pub retried: u32,
    pub dead: u32,
    pub gone: u32,
    pub no_endpoint: u32,
}

/// Live figures for `/metrics`.
#[derive(Debug, Default)]
pub struct OutboxGauges {
    pub pending: AtomicI64,
    pub oldest_pending_age_secs: AtomicI64,
    pub dead: AtomicI64,
    pub delivered_total: AtomicU64,
    pub failed_attempts_total: AtomicU64,
}

impl OutboxGauges {
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP rxbridge_outbox_pending Messages waiting for delivery.\n# TYPE rxbridge_outbox_pending gauge\nrxbridge_outbox_pending {}",
            self.pending.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rxbridge_outbox_oldest_pending_age_seconds Age of the oldest pending message.\n# TYPE rxbridge_outbox_oldest_pending_age_seconds gauge\nrxbridge_outbox_oldest_pending_age_seconds {}",
            self.oldest_pending_age_secs.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rxbridge_outbox_dead Messages on the dead-letter list.\n# TYPE rxbridge_outbox_dead gauge\nrxbridge_outbox_dead {}",
            self.dead.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rxbridge_outbox_delivered Messages delivered.\n# TYPE rxbridge_outbox_delivered counter\nrxbridge_outbox_delivered_total {}",
            self.delivered_total.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rxbridge_outbox_failed_attempts Delivery attempts that failed.\n# TYPE rxbridge_outbox_failed_attempts counter\nrxbridge_outbox_failed_attempts_total {}",
            self.failed_attempts_total.load(Ordering::Relaxed)
        );
    }
}

pub struct Outbox {
    store: Arc<dyn OutboxStore>,
    transport: Arc<dyn WebhookTransport>,
    clock: Arc<dyn Clock>,
    vault: PatientVault,
    /// The EPS adapter, when EPS is configured.
    eps: Option<Arc<dyn DirectTransport>>,
    pub gauges: Arc<OutboxGauges>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn OutboxStore>,
        transport: Arc<dyn WebhookTransport>,
        clock: Arc<dyn Clock>,
        vault: PatientVault,
    ) -> Self {
        Self {
            store,
            transport,
            clock,
            vault,
            eps: None,
            gauges: Arc::new(OutboxGauges::default()),
        }
    }

    /// Deliver `eps:{mode}` messages through `transport`. Without one (EPS not configured)
    /// a return is kept as `no_endpoint` and the other EPS messages are retried, then
    /// dead-lettered for replay.
    pub fn with_eps(mut self, transport: Arc<dyn DirectTransport>) -> Self {
        self.eps = Some(transport);
        self
    }

    pub fn seal_secrets(&self, endpoint_id: &str, secrets: &[String]) -> Vec<u8> {
        self.vault.seal(
            endpoint_id,
            &serde_json::to_vec(secrets).expect("strings serialise"),
        )
    }

    pub fn open_secrets(&self, e: &Endpoint) -> anyhow::Result<Vec<String>> {
        Ok(serde_json::from_slice(
            &self.vault.open(&e.id, &e.sealed_secrets)?,
        )?)
    }

    /// Register (or replace) the endpoint of `destination`; returns it with its new secret.
    pub async fn set_endpoint(
        &self,
        destination: &str,
        url: &str,
    ) -> Result<(Endpoint, String), StoreError> {
        self.set_endpoint_with_secret(destination, url, generate_secret())
            .await
    }

    /// `set_endpoint` with a secret chosen by the caller (the demo start keeps its secrets on
    /// file so the warehouse simulator can be started with them).
    pub async fn set_endpoint_with_secret(
        &self,
        destination: &str,
        url: &str,
        secret: String,
    ) -> Result<(Endpoint, String), StoreError> {
        let id = format!("ep_{}", uuid::Uuid::now_v7().simple());
        let e = Endpoint {
            sealed_secrets: self.seal_secrets(&id, std::slice::from_ref(&secret)),
            id,
            destination: destination.into(),
            url: url.into(),
            enabled: true,
            disabled_reason: None,
            created_at: self.clock.now(),
        };
        self.store.put_endpoint(e.clone()).await?;
        Ok((e, secret))
    }

    /// A new secret for `destination`'s endpoint; the previous one keeps signing beside it
    /// until the next rotation (receivers accept either).
    pub async fn rotate_secret(&self, destination: &str) -> Result<String, StoreError> {
        let mut e = self
            .store
            .endpoint_for(destination)
            .await?
            .ok_or(StoreError::NotFound)?;
        let old = self.open_secrets(&e).map_err(StoreError::Unexpected)?;
        let secret = generate_secret();
        let secrets = vec![secret.clone(), old.first().cloned().unwrap_or_default()];
        e.sealed_secrets = self.seal_secrets(&e.id, &secrets);
        self.store.put_endpoint(e).await?;
        Ok(secret)
    }

    /// Deliver every due message once (tests call this step by step; the server every few
    /// seconds).
    pub async fn run_once(&self) -> Result<RunReport, StoreError> {
        let mut report = RunReport::default();
        // A delivery can make the next message of the same prescription due: go round again
        // (bounded) rather than wait a poll interval per message.
        for _ in 0..10 {
            let before = report;
            let claimed = self.run_batch(&mut report).await?;
            if claimed == 0 || report.delivered == before.delivered {
                break;
            }
        }
        self.refresh_gauges().await?;
        Ok(report)
    }

    async fn run_batch(&self, report: &mut RunReport) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self
            .store
            .claim_due(now, now + SignedDuration::from_secs(120), 50)
            .await?;
        let claimed = due.len();
        for mut m in due {
            if crate::eps::is_destination(&m.message.destination) {
                self.deliver_direct(&mut m, now, report).await?;
                continue;
            }
            let endpoint = self.store.endpoint_for(&m.message.destination).await?;
            let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
                m.status = MessageStatus::NoEndpoint;
                m.last_error = Some("no enabled endpoint for this destination".into());
                self.store.record_attempt(&m, None).await?;
                report.no_endpoint += 1;
                continue;
            };
            let secrets = self
                .open_secrets(&endpoint)
                .map_err(StoreError::Unexpected)?;
            // Opened here, just before it is signed and sent; never written back opened.
            let body = match open_body(&self.vault, &m.message) {
                Ok(v) => serde_json::to_vec(&v).expect("JSON values serialise"),
                Err(e) => {
                    // Wrong key or a tampered row: retried on the normal schedule (a key
                    // fixed in time still delivers), then dead-lettered.
                    self.fail(&mut m, now, e.to_string(), report).await?;
                    continue;
                }
            };
            let ts = self.clock.now().as_second();
            let headers = [
                ("webhook-id", m.message.id.clone()),
                ("webhook-timestamp", ts.to_string()),
                (
                    "webhook-signature",
                    sign(&secrets, &m.message.id, ts, &body),
                ),
                ("content-type", "application/json".to_string()),
            ];
            let started = std::time::Instant::now();
            let answer = self
                .transport
                .post(&m.message.destination, &endpoint.url, &headers, &body)
                .await;
            let n = m.attempts + 1;
            let mut attempt = Attempt {
                message_id: m.message.id.clone(),
                n,
                at: now,
                endpoint_id: Some(endpoint.id.clone()),
                http_status: None,
                error: None,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            m.attempts = n;
            match answer {
                Ok(a) if (200..300).contains(&a.status) => {
                    attempt.http_status = Some(a.status);
                    m.status = MessageStatus::Delivered;
                    m.delivered_at = Some(self.clock.now());
                    m.last_error = None;
                    report.delivered += 1;
                    self.gauges.delivered_total.fetch_add(1, Ordering::Relaxed);
                }
                Ok(a) if a.status == 410 => {
                    attempt.http_status = Some(410);
                    m.status = MessageStatus::Dead;
                    m.last_error = Some("410 Gone: the endpoint was disabled".into());
                    let mut e = endpoint.clone();
                    e.enabled = false;
                    e.disabled_reason = Some(format!("answered 410 Gone at {now}"));
                    self.store.put_endpoint(e).await?;
                    report.gone += 1;
                    self.gauges
                        .failed_attempts_total
                        .fetch_add(1, Ordering::Relaxed);
                }
                other => {
                    let (why, retry_after) = match &other {
                        Ok(a) => {
                            attempt.http_status = Some(a.status);
                            (format!("HTTP {}", a.status), a.retry_after)
                        }
                        Err(e) => (e.clone(), None),
                    };
                    attempt.error = Some(why.clone());
                    m.last_error = Some(why);
                    self.gauges
                        .failed_attempts_total
                        .fetch_add(1, Ordering::Relaxed);
                    let jitter =
                        (rand::rngs::OsRng.next_u32() as f64 / u32::MAX as f64) * 2.0 - 1.0;
                    match backoff(n, jitter) {
                        Some(wait) => {
                            let wait = retry_after.map_or(wait, |r| r.max(wait));
                            m.next_attempt_at = now + wait;
                            report.retried += 1;
                        }
                        None => {
                            m.status = MessageStatus::Dead;
                            report.dead += 1;
                        }
                    }
                }
            }
            self.store.record_attempt(&m, Some(attempt)).await?;
        }
        Ok(claimed)
    }

    /// One message to a destination with an adapter of its own (EPS).
    async fn deliver_direct(
        &self,
        m: &mut OutboxMessage,
        now: Timestamp,
        report: &mut RunReport,
    ) -> Result<(), StoreError> {
        let Some(transport) = &self.eps else {
            // A return is written for every NHS prescription that will not be dispensed: with
            // EPS off there is nobody to tell. The others are written only for electronic
            // prescriptions EPS must hear of: retried, then dead-lettered for replay.
            if m.message.event_type == crate::eps::RETURN {
                m.status = MessageStatus::NoEndpoint;
                m.last_error = Some("EPS is not configured (the eps settings)".into());
                report.no_endpoint += 1;
                return self.store.record_attempt(m, None).await;
            }
            return self
                .fail(
                    m,
                    now,
                    "EPS is not configured (the eps settings)".into(),
                    report,
                )
                .await;
        };
        let body = match open_body(&self.vault, &m.message) {
            Ok(v) => v,
            Err(e) => return self.fail(m, now, e.to_string(), report).await,
        };
        let started = std::time::Instant::now();
        let answer = transport.deliver(m, body).await;
        let n = m.attempts + 1;
        let mut attempt = Attempt {
            message_id: m.message.id.clone(),
            n,
            at: now,
            endpoint_id: None,
            http_status: None,
            error: None,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        match answer {
            Delivery::NotApplicable(why) => {
                m.status = MessageStatus::NoEndpoint;
                m.last_error = Some(why);
                report.no_endpoint += 1;
                return self.store.record_attempt(m, None).await;
            }
            Delivery::Delivered { status } => {
                attempt.http_status = Some(status);
                m.status = MessageStatus::Delivered;
                m.delivered_at = Some(self.clock.now());
                m.last_error = None;
                report.delivered += 1;
                self.gauges.delivered_total.fetch_add(1, Ordering::Relaxed);
            }
            Delivery::Refused { status, why } => {
                attempt.http_status = status;
                attempt.error = Some(why.clone());
                m.status = MessageStatus::Dead;
                m.last_error = Some(why);
                report.dead += 1;
                self.gauges
                    .failed_attempts_total
                    .fetch_add(1, Ordering::Relaxed);
            }
            Delivery::Failed {
                status,
                why,
                retry_after,
            } => {
                attempt.http_status = status;
                attempt.error = Some(why.clone());
                m.last_error = Some(why);
                self.gauges
                    .failed_attempts_total
                    .fetch_add(1, Ordering::Relaxed);
                match backoff(n, 0.0) {
                    Some(wait) => {
                        m.next_attempt_at = now + retry_after.map_or(wait, |r| r.max(wait));
                        report.retried += 1;
                    }
                    None => {
                        m.status = MessageStatus::Dead;
                        report.dead += 1;
                    }
                }
            }
        }
        m.attempts = n;
        self.store.record_attempt(m, Some(attempt)).await
    }

    /// A message that could not be attempted: counted as a failed attempt, retried on the
    /// schedule, dead when exhausted.
    async fn fail(
        &self,
        m: &mut OutboxMessage,
        now: Timestamp,
        why: String,
        report: &mut RunReport,
    ) -> Result<(), StoreError> {
        let n = m.attempts + 1;
        m.attempts = n;
        m.last_error = Some(why.clone());
        self.gauges
            .failed_attempts_total
            .fetch_add(1, Ordering::Relaxed);
        match backoff(n, 0.0) {
            Some(wait) => {
                m.next_attempt_at = now + wait;
                report.retried += 1;
            }
            None => {
                m.status = MessageStatus::Dead;
                report.dead += 1;
            }
        }
        let attempt = Attempt {
            message_id: m.message.id.clone(),
            n,
            at: now,
            endpoint_id: None,
            http_status: None,
            error: Some(why),
            duration_ms: 0,
        };
        self.store.record_attempt(m, Some(attempt)).await
    }

    /// Seal the bodies stored in the clear before sealing was introduced (run at start).
    pub async fn seal_stored_bodies(&self) -> Result<u64, StoreError> {
        super::sealed::seal_stored_bodies(self.store.as_ref(), &self.vault, 500).await
    }

    pub async fn refresh_gauges(&self) -> Result<(), StoreError> {
        let (pending, oldest, dead) = self.store.outbox_stats().await?;
        self.gauges.pending.store(pending as i64, Ordering::Relaxed);
        self.gauges.dead.store(dead as i64, Ordering::Relaxed);
        self.gauges.oldest_pending_age_secs.store(
            oldest.map_or(0, |t| (self.clock.now() - t).as_secs().max(0)),
            Ordering::Relaxed,
        );
        Ok(())
    }

    pub async fn replay(&self, ids: Option<Vec<String>>) -> Result<u64, StoreError> {
        self.store.replay(ids, self.clock.now()).await
    }

    pub fn store(&self) -> &Arc<dyn OutboxStore> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_spans_about_three_days_then_stops() {
        let total: i64 = (1..=9).map(|n| backoff(n, 0.0).unwrap().as_secs()).sum();
        assert!((70 * 3600..80 * 3600).contains(&total), "{total}");
        assert_eq!(backoff(10, 0.0), None);
        assert_eq!(backoff(0, 0.0), None);
        assert_eq!(backoff(1, 1.0).unwrap().as_millis(), 5500);
        assert_eq!(backoff(1, -1.0).unwrap().as_millis(), 4500);
    }
}
