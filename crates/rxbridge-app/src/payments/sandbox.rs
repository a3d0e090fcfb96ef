//! The sandbox provider (the embedded default): checkout pages served by rxbridge itself, whose
//! buttons send a signed event through the same `ProviderEvents` path as a real provider's.

use super::provider::*;
use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Checkout pages served by rxbridge at `{public_url}/sandbox/checkout/{session}`. Session ids
/// are keyed hashes of the idempotency key: unguessable, and the same for a retried create.
/// Its events are signed with the same key, which never leaves the process.
pub struct SandboxProvider {
    public_url: String,
    mac: Box<dyn Fn(&str) -> String + Send + Sync>,
}

/// What the sandbox checkout page's buttons report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxEvent {
    pub id: String,
    pub session_id: String,
    pub payment_id: String,
    pub amount_pence: i64,
    /// Set when the patient paid; declined otherwise.
    pub payment_ref: Option<String>,
}

impl SandboxProvider {
    pub fn new(public_url: &str, mac: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_string(),
            mac: Box::new(mac),
        }
    }

    fn event_tag(&self, raw: &[u8]) -> String {
        (self.mac)(&format!("sandbox-event.{}", String::from_utf8_lossy(raw)))
    }

    /// An event as the sandbox sends it: its body and signature.
    pub fn signed_event(&self, event: &SandboxEvent) -> (Vec<u8>, String) {
        let raw = serde_json::to_vec(event).expect("a plain struct serialises");
        let tag = self.event_tag(&raw);
        (raw, tag)
    }
}

impl ProviderEvents for SandboxProvider {
    fn parse_event(
        &self,
        signature_header: Option<&str>,
        raw: &[u8],
        _now: Timestamp,
    ) -> Result<ProviderEvent, EventRejection> {
        use subtle::ConstantTimeEq;
        let header = signature_header
            .ok_or_else(|| EventRejection::Signature("the sandbox event is not signed".into()))?;
        if !bool::from(header.as_bytes().ct_eq(self.event_tag(raw).as_bytes())) {
            return Err(EventRejection::Signature(
                "the sandbox event's signature does not match".into(),
            ));
        }
        let e: SandboxEvent = serde_json::from_slice(raw)
            .map_err(|e| EventRejection::BadPayload(format!("not a sandbox event: {e}")))?;
        let checkout = CheckoutRef {
            payment_id: Some(e.payment_id),
            session_id: Some(e.session_id),
        };
        let kind = match e.payment_ref {
            Some(payment_ref) => ProviderEventKind::CheckoutCompleted {
                checkout,
                paid: true,
                amount_pence: Some(e.amount_pence),
                currency: "gbp".into(),
                payment_ref: Some(payment_ref),
            },
            None => ProviderEventKind::CheckoutClosed {
                checkout,
                failed: true,
            },
        };
        Ok(ProviderEvent { id: e.id, kind })
    }
}

#[async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }
    async fn create_checkout(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, ProviderError> {
        let tag = (self.mac)(&req.idempotency_key);
        let id = format!("cs_sandbox_{}", &tag[..32]);
        Ok(CheckoutSession {
            url: format!("{}/sandbox/checkout/{id}", self.public_url),
            id,
            expires_at: req.expires_at,
        })
    }
    async fn expire_checkout(&self, _session_id: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError> {
        let tag = (self.mac)(&req.idempotency_key);
        Ok(RefundResult {
            id: format!("re_sandbox_{}", &tag[..24]),
            status: "succeeded".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> SandboxProvider {
        use sha2::{Digest, Sha256};
        SandboxProvider::new("http://x", |v| {
            hex::encode(Sha256::digest(format!("test-key.{v}")))
        })
    }

    fn event(payment_ref: Option<&str>) -> SandboxEvent {
        SandboxEvent {
            id: "evt_sandbox_1".into(),
            session_id: "cs_sandbox_1".into(),
            payment_id: "pay_1".into(),
            amount_pence: 990,
            payment_ref: payment_ref.map(str::to_string),
        }
    }

    #[test]
    fn its_own_events_read_back_as_paid_or_failed() {
        let s = sandbox();
        let now = Timestamp::UNIX_EPOCH;
        let (raw, sig) = s.signed_event(&event(Some("pi_sandbox_1")));
        let ev = s.parse_event(Some(&sig), &raw, now).unwrap();
        assert_eq!(ev.id, "evt_sandbox_1");
        assert!(matches!(
            ev.kind,
            ProviderEventKind::CheckoutCompleted {
                paid: true,
                amount_pence: Some(990),
                ..
            }
        ));
        let (raw, sig) = s.signed_event(&event(None));
        assert!(matches!(
            s.parse_event(Some(&sig), &raw, now).unwrap().kind,
            ProviderEventKind::CheckoutClosed { failed: true, .. }
        ));
    }

    #[test]
    fn an_unsigned_or_altered_event_is_refused() {
        let s = sandbox();
        let now = Timestamp::UNIX_EPOCH;
        let (raw, sig) = s.signed_event(&event(Some("pi_sandbox_1")));
        assert!(matches!(
            s.parse_event(None, &raw, now),
            Err(EventRejection::Signature(_))
        ));
        let mut altered = raw.clone();
        let at = altered.len() - 5;
        altered[at] ^= 1;
        assert!(matches!(
            s.parse_event(Some(&sig), &altered, now),
            Err(EventRejection::Signature(_))
        ));
    }
}
