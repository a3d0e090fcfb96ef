//! Clinic intake use cases: submit (idempotent), dry run, read, list, cancel.
//!
//! Idempotency (IETF draft semantics): the same key and body replays the first answer; the
//! same key with another body is refused; a second request while the first is in flight gets
//! `InFlight`. Completion is enforced by the store — the key is unique and written in the same
//! transaction as the prescription — and the in-flight guard is per process, which is the
//! whole story for the embedded store (one process owns its data directory).

use crate::clock::Clock;
use crate::crypto::PatientVault;
use crate::events::NewEvent;
use crate::ports::{
    Caller, IdempotencyRecord, InsertOutcome, ItemSummary, ListFilter, Mode, NewPrescription,
    PatientKeys, PrescriptionRecord, Store, StoreError,
};
use crate::signatures::{PrescriberKeyStore, PrescriberKeys};
use crate::views::{DryRunView, FindingView, PrescriptionList, PrescriptionView};
use base64::Engine;
use rxbridge_domain::compliance::{self, Context, Finding, SignatureCheck, Thresholds};
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::AuthorityKind;
use rxbridge_domain::prescription::{Patient, Prescription};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// How many earlier items of one patient the history checks read at most.
pub const HISTORY_LIMIT: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("a request with this idempotency key is still being processed")]
    InFlight,
    #[error("this idempotency key was already used with a different request body")]
    KeyReused,
    #[error("no such prescription")]
    NotFound,
    #[error("a prescription that is {0} cannot be cancelled")]
    NotCancellable(Status),
    #[error("no query is open on this prescription (it is {0})")]
    NoOpenQuery(Status),
    #[error("the cursor is not one this API returned")]
    BadCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type InFlightKey = (String, Mode, String);

/// The answer to a cancel: the prescription as it now is, and whether it was already cancelled
/// (nothing was recorded this time).
#[derive(Debug, Clone)]
pub struct Cancelled {
    pub view: PrescriptionView,
    pub already: bool,
}

/// Held while a submission with an idempotency key is processed; dropping it frees the key.
pub struct InFlightGuard {
    set: Arc<Mutex<HashSet<InFlightKey>>>,
    key: InFlightKey,
}
impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

pub enum Begin {
    /// No completed request under this key: go on, holding the guard.
    Proceed(InFlightGuard),
    /// The same request was completed before: answer it again with this, as first answered.
    Replay(Box<Replayed>),
}

/// A completed request's answer, for a replay: the view, and the bytes first answered (sent
/// as they are, never serialised again).
#[derive(Debug, Clone)]
pub struct Replayed {
    pub view: PrescriptionView,
    pub body: String,
}

/// A recorded submission: the prescription as it was when first recorded (201), and whether
/// this request repeats one answered before under the same key and body.
pub struct Submitted {
    pub view: PrescriptionView,
    /// `view` as JSON: the bytes stored for replays, answered as they are.
    pub body: String,
    pub replayed: bool,
}

pub struct Intake {
    store: Arc<dyn Store>,
    vault: PatientVault,
    clock: Arc<dyn Clock>,
    thresholds: Thresholds,
    keys: PrescriberKeys,
    in_flight: Arc<Mutex<HashSet<InFlightKey>>>,
}

/// What the inbound adapter hands intake besides the parsed prescription: the signed bytes
/// (RFC 8785 canonical JSON of the body as received, without `signature`) when the body
/// carried a signature.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub signed_payload: Option<Vec<u8>>,
    /// A prescription EPS released to the pharmacy: where its original is kept (the detail of
    /// `crate::eps::RELEASED_EVENT`), recorded on the `prescription.received` event in the
    /// same transaction as the prescription.
    pub eps_released: Option<serde_json::Value>,
}

impl Intake {
    pub fn new(
        store: Arc<dyn Store>,
        prescriber_keys: Arc<dyn PrescriberKeyStore>,
        vault: PatientVault,
        clock: Arc<dyn Clock>,
        thresholds: Thresholds,
    ) -> Self {
        Self {
            keys: PrescriberKeys::new(prescriber_keys, clock.clone()),
            store,
            vault,
            clock,
            thresholds,
            in_flight: Arc::default(),
        }
    }

    /// The prescriber keys (registered by the operator's `prescriber-key` commands).
    pub fn prescriber_keys(&self) -> &PrescriberKeys {
        &self.keys
    }

    /// The electronic signature's outcome: required of `electronic_private` (HMR 2012 reg
    /// 219); on other authorities a signature is kept but not required.
    async fn signature_check(
        &self,
        caller: &Caller,
        rx: &Prescription,
        received: &Received,
    ) -> Result<SignatureCheck, IntakeError> {
        if rx.authority.kind != AuthorityKind::ElectronicPrivate {
            return Ok(SignatureCheck::NotRequired);
        }
        let Some(payload) = received.signed_payload.as_deref() else {
            return Ok(SignatureCheck::Missing);
        };
        Ok(self
            .keys
            .check(&caller.clinic_id, rx, payload, self.clock.now())
            .await?)
    }

    /// An event happening now.
    fn event(
        &self,
        kind: &str,
        actor: String,
        subject: &str,
        detail: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            kind: kind.into(),
            actor,
            subject: subject.to_string(),
            detail,
        }
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Claim an idempotency key for a request whose canonical body hashes to `request_hash`.
    pub async fn begin(
        &self,
        caller: &Caller,
        key: &str,
        request_hash: &str,
    ) -> Result<Begin, IntakeError> {
        let k = (caller.clinic_id.clone(), caller.mode, key.to_string());
        {
            let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if !set.insert(k.clone()) {
                return Err(IntakeError::InFlight);
            }
        }
        let guard = InFlightGuard {
            set: self.in_flight.clone(),
            key: k,
        };
        match self
            .store
            .find_idempotency(&caller.clinic_id, caller.mode, key)
            .await?
        {
            None => Ok(Begin::Proceed(guard)),
            Some(rec) => replay(rec, request_hash).map(|r| Begin::Replay(Box::new(r))),
        }
    }

    /// Keyed hashes of the patient for lookups and history.
    pub fn patient_keys(&self, p: &Patient) -> PatientKeys {
        self.vault.patient_keys(p)
    }

    /// Every compliance finding for `rx`, with the patient's history from the store.
    pub async fn findings(
        &self,
        caller: &Caller,
        rx: &Prescription,
        keys: &PatientKeys,
        received: &Received,
    ) -> Result<Vec<Finding>, IntakeError> {
        let signature = self.signature_check(caller, rx, received).await?;
        let (history, identity) = self
            .store
            .patient_context(caller.mode, keys, &caller.clinic_id, HISTORY_LIMIT)
            .await?;
        Ok(compliance::evaluate(
            rx,
            &Context {
                today: london_date(self.clock.now()),
                formulary: Formulary::builtin(),
                thresholds: &self.thresholds,
                history: &history,
                identity,
                signature,
            },
        ))
    }

    /// The dry run: the same findings, nothing stored.
    pub async fn dry_run(
        &self,
        caller: &Caller,
        rx: &Prescription,
        received: &Received,
    ) -> Result<DryRunView, IntakeError> {
        let keys = self.patient_keys(&rx.patient);
        let findings = self.findings(caller, rx, &keys, received).await?;
        Ok(DryRunView {
            would_be_status: compliance::intake_status(rx, &findings).as_str().into(),
            findings: findings.iter().map(FindingView::from).collect(),
        })
    }

    /// Record a prescription that passed the contract. A prescription the law forbids is still
    /// recorded, as `rejected` with its blocking findings.
    pub async fn submit(
        &self,
        _guard: InFlightGuard,
        caller: &Caller,
        key: &str,
        request_hash: &str,
        rx: Prescription,
        received: &Received,
    ) -> Result<Submitted, IntakeError> {
        let keys = self.patient_keys(&rx.patient);
        let findings = self.findings(caller, &rx, &keys, received).await?;
        let status = compliance::intake_status(&rx, &findings);
        let now = self.clock.now();
        let id = format!("rx_{}", uuid::Uuid::now_v7().simple());
        let formulary = Formulary::builtin();
        let items = rx
            .items
            .iter()
            .map(|i| ItemSummary {
                product_code: i.product_code.clone(),
                active_ingredient: formulary
                    .get(&i.product_code)
                    .map(|p| p.active_ingredient.clone())
                    .unwrap_or_default(),
                quantity: i.quantity.get(),
                days_supply: i.days_supply,
            })
            .collect();
        let record = PrescriptionRecord {
            sealed: self.seal(&id, &rx).map_err(StoreError::Unexpected)?,
            id: id.clone(),
            clinic_id: caller.clinic_id.clone(),
            mode: caller.mode,
            clinic_reference: rx.clinic_reference.as_str().to_string(),
            kind: rx.kind,
            status,
            version: 1,
            issued_on: rx.issued_on,
            created_at: now,
            updated_at: now,
            findings,
            items,
            event_seq: 0,
            nhs_exemption: rxbridge_domain::declaration::initial_state(&rx),
        };
        let view = PrescriptionView::from_record(&record, None);
        // Serialised once: the bytes stored for replays are the bytes of this answer.
        let body = serde_json::to_string(&view).map_err(|e| StoreError::Unexpected(e.into()))?;
        let event = NewEvent {
            at: now,
            kind: "prescription.received".into(),
            actor: format!("clinic:{}", caller.clinic_id),
            subject: id.clone(),
            detail: serde_json::json!({
                "status": status.as_str(),
                "clinic_reference": record.clinic_reference,
                "findings": record.findings.iter().map(|f| format!("{}:{}", f.severity.as_str(), f.code)).collect::<Vec<_>>(),
            }),
        };
        let mut event = event;
        if let Some(released) = &received.eps_released {
            event.detail["eps_released"] = released.clone();
        }
        let idempotency = IdempotencyRecord {
            clinic_id: caller.clinic_id.clone(),
            mode: caller.mode,
            key: key.to_string(),
            request_hash: request_hash.to_string(),
            response_status: 201,
            response_body: body.clone(),
            created_at: now,
        };
        match self
            .store
            .insert_prescription(NewPrescription {
                record,
                patient: keys,
                idempotency,
                event,
            })
            .await?
        {
            InsertOutcome::Inserted => {
                tracing::info!(prescription_id = %id, status = status.as_str(), "prescription received");
                Ok(Submitted {
                    view,
                    body,
                    replayed: false,
                })
            }
            InsertOutcome::KeyExists(rec) => {
                let Replayed { view, body } = replay(rec, request_hash)?;
                Ok(Submitted {
                    view,
                    body,
                    replayed: true,
                })
            }
        }
    }

    /// The prescription of `caller` already recorded for the EPS prescription `eps_id`, if
    /// any: one the FHIR door or an EPS release recorded, whose reference is the short-form id.
    /// Both doors refuse a second, so one prescription is never checked or dispensed twice.
    pub async fn recorded_eps(
        &self,
        caller: &Caller,
        eps_id: &str,
    ) -> Result<Option<String>, IntakeError> {
        let filter = crate::ports::ListFilter {
            status: None,
            clinic_reference: Some(eps_id.to_string()),
        };
        let page = self
            .store
            .list_prescriptions(&caller.clinic_id, caller.mode, &filter, None, 20)
            .await?;
        Ok(page
            .items
            .into_iter()
            .find(|rec| {
                self.open(rec)
                    .is_ok_and(|rx| rx.authority.eps_prescription_id.as_deref() == Some(eps_id))
            })
            .map(|rec| rec.id))
    }

    pub async fn get(&self, caller: &Caller, id: &str) -> Result<PrescriptionView, IntakeError> {
        let rec = self
            .store
            .get_prescription(&caller.clinic_id, caller.mode, id)
            .await?
            .ok_or(IntakeError::NotFound)?;
        // The clinic sees what happened to the prescription; the pharmacy's internal notes and
        // its audit of staff reads stay inside (the staff portal shows them).
        let mut timeline = self.store.timeline(id).await?;
        timeline.retain(|e| e.event.kind.starts_with("prescription."));
        Ok(PrescriptionView::from_record(&rec, Some(&timeline)))
    }

    pub async fn list(
        &self,
        caller: &Caller,
        filter: &ListFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<PrescriptionList, IntakeError> {
        let after = cursor.map(decode_cursor).transpose()?;
        let page = self
            .store
            .list_prescriptions(&caller.clinic_id, caller.mode, filter, after, limit)
            .await?;
        Ok(PrescriptionList {
            data: page
                .items
                .iter()
                .map(|r| PrescriptionView::from_record(r, None))
                .collect(),
            next_cursor: page.next.map(encode_cursor),
        })
    }

    /// Cancel at the clinic's request (allowed until dispatch). Cancelling a cancelled
    /// prescription answers its current state and records nothing new; the answer says it was
    /// already cancelled (`Cancelled::already`) so the caller can tell the clinic.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: &str,
        reason: &str,
    ) -> Result<Cancelled, IntakeError> {
        // One retry covers a concurrent change between our read and our write.
        for _ in 0..2 {
            let rec = self
                .store
                .get_prescription(&caller.clinic_id, caller.mode, id)
                .await?
                .ok_or(IntakeError::NotFound)?;
            if rec.status == Status::Cancelled {
                return Ok(Cancelled {
                    view: self.get(caller, id).await?,
                    already: true,
                });
            }
            let to = rec
                .status
                .cancel()
                .map_err(|_| IntakeError::NotCancellable(rec.status))?;
            let event = self.event(
                "prescription.cancelled",
                format!("clinic:{}", caller.clinic_id),
                id,
                serde_json::json!({ "from": rec.status.as_str(), "reason": reason }),
            );
            match self
                .store
                .commit(crate::payments::Change::move_to(&rec, to, vec![event]))
                .await
            {
                Ok(_) => {
                    return Ok(Cancelled {
                        view: self.get(caller, id).await?,
                        already: false,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(IntakeError::NotFound),
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Seal a prescription document for storage under `id`.
    pub fn seal(&self, id: &str, rx: &Prescription) -> anyhow::Result<Vec<u8>> {
        Ok(self.vault.seal(id, &serde_json::to_vec(rx)?))
    }

    /// The clinic answers a pharmacist's query: the answer is recorded and the prescription
    /// goes back to the clinical check.
    pub async fn answer_query(
        &self,
        caller: &Caller,
        id: &str,
        answer: &str,
    ) -> Result<PrescriptionView, IntakeError> {
        let rec = self
            .store
            .get_prescription(&caller.clinic_id, caller.mode, id)
            .await?
            .ok_or(IntakeError::NotFound)?;
        let to = rec
            .status
            .answer_query()
            .map_err(|_| IntakeError::NoOpenQuery(rec.status))?;
        let event = self.event(
            "prescription.query_answered",
            format!("clinic:{}", caller.clinic_id),
            id,
            serde_json::json!({ "answer": answer }),
        );
        match self
            .store
            .commit(crate::payments::Change::move_to(&rec, to, vec![event]))
            .await
        {
            Ok(_) => self.get(caller, id).await,
            Err(StoreError::NotFound) => Err(IntakeError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Staff cancel at the patient's request (allowed until dispatch); the reason is required
    /// and recorded. `Payments::cancel_by_staff` wraps it and refunds what was paid.
    pub async fn cancel_by_staff(
        &self,
        staff_id: &str,
        mode: Mode,
        id: &str,
        reason: &str,
    ) -> Result<PrescriptionRecord, IntakeError> {
        let rec = self
            .store
            .get_prescription_for_staff(mode, id)
            .await?
            .ok_or(IntakeError::NotFound)?;
        let to = rec
            .status
            .cancel()
            .map_err(|_| IntakeError::NotCancellable(rec.status))?;
        let event = self.event("prescription.cancelled", format!("staff:{staff_id}"), id, serde_json::json!({ "from": rec.status.as_str(), "reason": reason, "on_behalf_of": "patient" }));
        self.store
            .commit(crate::payments::Change::move_to(&rec, to, vec![event]))
            .await
            .and_then(|r| r.ok_or(StoreError::NotFound))
            .map_err(|e| match e {
                StoreError::NotFound => IntakeError::NotFound,
                e => e.into(),
            })
    }

    /// The patient-data vault (keyed hashes for links and lookups).
    pub fn vault(&self) -> &crate::PatientVault {
        &self.vault
    }

    /// Open a stored prescription's sealed document (staff views, exports).
    pub fn open(&self, rec: &PrescriptionRecord) -> anyhow::Result<Prescription> {
        self.vault.open_prescription(rec)
    }
}

/// The stored answer for a request with the same body; `KeyReused` for another body.
fn replay(rec: IdempotencyRecord, request_hash: &str) -> Result<Replayed, IntakeError> {
    if rec.request_hash != request_hash {
        return Err(IntakeError::KeyReused);
    }
    let view = serde_json::from_str(&rec.response_body)
        .map_err(|e| IntakeError::Store(StoreError::Unexpected(e.into())))?;
    Ok(Replayed {
        view,
        body: rec.response_body,
    })
}

fn encode_cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1.{seq}"))
}

fn decode_cursor(c: &str) -> Result<i64, IntakeError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| IntakeError::BadCursor)?;
    let s = String::from_utf8(raw).map_err(|_| IntakeError::BadCursor)?;
    s.strip_prefix("v1.")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or(IntakeError::BadCursor)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cursors_roundtrip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        assert!(decode_cursor("zzz").is_err());
        assert!(decode_cursor("").is_err());
        assert!(
            decode_cursor(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("v1.-3"))
                .is_err()
        );
    }
}
