//! The outbox's transport for `eps:{mode}`: each message (`rxbridge_app::eps`) is built into
//! its FHIR form from the released original and sent with the dispensing client; the message
//! sent and the answer are kept sealed (a document named by an `eps.sent` event on the
//! prescription). Refusals the service will repeat are dead-lettered with their codes;
//! anything else is retried on the outbox's schedule with the same `X-Request-ID`.

use super::{Eps, at_of, released_detail};
use async_trait::async_trait;
use rxbridge_app::eps as app_eps;
use rxbridge_app::eps::{CLAIM, NOTIFY, RETURN, SENT_EVENT, WITHDRAW};
use rxbridge_app::outbox::{Delivery, DirectTransport, OutboxMessage};
use rxbridge_domain::nhs::NhsTables;
use rxbridge_eps::EpsError;
use rxbridge_eps::client::{CLAIM as CLAIM_PATH, PROCESS_MESSAGE, TASK};
use rxbridge_fhir::dispensing::codes::{
    LINE_ITEM_ID, LineStatus, PrescriptionStatus, ReturnReason, WithdrawReason, no_endorsement,
};
use rxbridge_fhir::dispensing::types::Quantity;
use rxbridge_fhir::dispensing::{
    ClaimInput, ClaimedItem, Dispatch, DispensedItem, Released, claim, dispense_notification,
    return_task, withdraw_task,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A UUID derived from the outbox message id and a label: the same on every attempt.
pub fn derived_uuid(message_id: &str, label: &str) -> String {
    let digest = Sha256::digest(format!("{message_id}|{label}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Each line item of a released prescription, in message order: its id and the quantity
/// prescribed (what is supplied: the warehouse ships the prescribed quantity). An error names
/// the item that lacks either, so nothing is declared supplied without its quantity.
fn lines(p: &Released) -> Result<Vec<(String, Quantity)>, String> {
    p.items
        .iter()
        .enumerate()
        .map(|(n, mr)| {
            let id = mr
                .identifier
                .iter()
                .find(|i| i.system.as_deref() == Some(LINE_ITEM_ID))
                .and_then(|i| i.value.clone())
                .ok_or_else(|| format!("line item {} has no {LINE_ITEM_ID} identifier", n + 1))?;
            let quantity = mr
                .dispense_request
                .as_ref()
                .and_then(|d| d.quantity.clone())
                .ok_or_else(|| format!("line item {id} has no dispenseRequest.quantity"))?;
            Ok((id, quantity))
        })
        .collect()
}

/// A message built and where it goes, or why it cannot be.
enum Built {
    Send {
        path: &'static str,
        fhir_id: String,
        body: Value,
    },
    NotApplicable(String),
    Refused(String),
}

#[async_trait]
impl DirectTransport for Eps {
    async fn deliver(&self, m: &OutboxMessage, body: Value) -> Delivery {
        match self.deliver_one(m, &body).await {
            Ok(d) => d,
            // The store or a document could not be read: tried again later.
            Err(e) => Delivery::Failed {
                status: None,
                why: format!("{e:#}"),
                retry_after: None,
            },
        }
    }
}

impl Eps {
    async fn deliver_one(&self, m: &OutboxMessage, body: &Value) -> anyhow::Result<Delivery> {
        let subject = &m.message.subject;
        if m.message.destination != app_eps::destination(self.caller.mode) {
            return Ok(Delivery::NotApplicable(format!(
                "EPS is configured for {} data (eps.mode): nothing to tell it about this one",
                self.caller.mode.as_str()
            )));
        }
        // Only the EPS clinic's prescriptions can have been released to this pharmacy (an
        // `eps:{short-form id}` subject is one released and never recorded).
        if !subject.starts_with("eps:")
            && self
                .store
                .get_prescription(&self.caller.clinic_id, self.caller.mode, subject)
                .await?
                .is_none()
        {
            return Ok(Delivery::NotApplicable(
                "not a prescription of the EPS clinic (eps.clinic_id): nothing to tell EPS".into(),
            ));
        }
        let Some(released) = self.original(subject, body).await? else {
            // A return is written for every NHS prescription that will not be dispensed; one
            // EPS never released to us (a paper one) has nothing to return. The others are
            // written only for electronic prescriptions: EPS must hear them once the release
            // attaches the original, so they wait (and reach the dead letters if it never does).
            if m.message.event_type == RETURN {
                return Ok(Delivery::NotApplicable(
                    "not released from EPS to this pharmacy: nothing to return".into(),
                ));
            }
            return Ok(Delivery::Failed {
                status: None,
                why:
                    "not yet released from EPS to this pharmacy (rxbridge eps release attaches it)"
                        .into(),
                retry_after: None,
            });
        };
        let built = match self.build(m, body, &released).await? {
            Built::Send {
                path,
                fhir_id,
                body,
            } => (path, fhir_id, body),
            Built::NotApplicable(why) => return Ok(Delivery::NotApplicable(why)),
            Built::Refused(why) => {
                return Ok(Delivery::Refused { status: None, why });
            }
        };
        let (path, fhir_id, request) = built;
        let request_id = derived_uuid(&m.message.id, "request");
        let answer = self
            .client
            .send_as(path, &request, subject, &request_id)
            .await;
        let (status, kept, delivery) = match answer {
            Ok(sent) => (
                Some(sent.status),
                json!({ "request_id": request_id, "path": path, "request": sent.request, "status": sent.status, "answer": sent.answer, "attempts": sent.attempts }),
                Delivery::Delivered {
                    status: sent.status,
                },
            ),
            Err(EpsError::Refused { status, issues }) => {
                let codes: Vec<String> = issues
                    .iter()
                    .map(|i| i.spine_code.clone().unwrap_or_else(|| i.code.clone()))
                    .collect();
                (
                    Some(status),
                    json!({ "request_id": request_id, "path": path, "request": request, "status": status, "issues": codes }),
                    Delivery::Refused {
                        status: Some(status),
                        why: format!("EPS refused it ({status}): {}", codes.join(", ")),
                    },
                )
            }
            Err(e) => {
                return Ok(Delivery::Failed {
                    status: None,
                    why: e.to_string(),
                    retry_after: None,
                });
            }
        };
        let doc = self.keep("eps-sent", &kept).await?;
        self.store
            .record_event(self.event(
                SENT_EVENT,
                subject,
                json!({ "message_id": m.message.id, "event_type": m.message.event_type, "fhir_id": fhir_id, "request_id": request_id, "status": status, "document": doc }),
            ))
            .await?;
        Ok(delivery)
    }

    /// The released original the message is about: named by the body (a prescription that
    /// was never recorded) or by the prescription's `eps.released` event.
    async fn original(&self, subject: &str, body: &Value) -> anyhow::Result<Option<Released>> {
        let doc_id = match body["document_id"].as_str() {
            Some(id) => Some(id.to_string()),
            None => released_detail(self.store.as_ref(), subject)
                .await?
                .and_then(|d| d["document"]["id"].as_str().map(str::to_string)),
        };
        let Some(doc_id) = doc_id else {
            return Ok(None);
        };
        let (_, bytes) = self
            .documents
            .get(&doc_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the released original {doc_id} is missing"))?;
        let kept: Value = serde_json::from_slice(&bytes)?;
        let release_id = kept["release_id"].as_str().unwrap_or_default();
        Released::from_bundle(release_id, &kept["bundle"])
            .map(Some)
            .map_err(|e| anyhow::anyhow!("the released original {doc_id}: {e}"))
    }

    async fn build(&self, m: &OutboxMessage, body: &Value, p: &Released) -> anyhow::Result<Built> {
        let id = derived_uuid(&m.message.id, "message");
        let at = at_of(body, self.clock.now());
        let lines = match lines(p) {
            Ok(l) => l,
            Err(why) => return Ok(Built::Refused(why)),
        };
        let built = match m.message.event_type.as_str() {
            NOTIFY => {
                let items = lines
                    .iter()
                    .map(|(line, quantity)| DispensedItem {
                        line_id: line.clone(),
                        dispense_id: derived_uuid(&m.message.id, line),
                        status: LineStatus::FullyDispensed,
                        quantity: Some(quantity.clone()),
                        not_dispensed_reason: None,
                    })
                    .collect();
                let header = derived_uuid(&m.message.id, "header");
                let org = derived_uuid(&m.message.id, "organization");
                let dispatch = Dispatch {
                    id: &id,
                    header_id: &header,
                    organization_id: &org,
                    handed_over: &at,
                    prescription: p,
                    status: PrescriptionStatus::Dispensed,
                    items,
                };
                match dispense_notification(&dispatch, &self.dispenser) {
                    Ok(b) => send(PROCESS_MESSAGE, &id, &b)?,
                    Err(e) => Built::Refused(e),
                }
            }
            RETURN => {
                let reason = match body["reason"].as_str() {
                    Some("expired") => ReturnReason::Expired,
                    Some("cancelled") => ReturnReason::PatientRequestedRelease,
                    Some("invalid") => ReturnReason::InvalidOrUnreadable,
                    _ => ReturnReason::UnableToDispense,
                };
                send(
                    TASK,
                    &id,
                    &return_task(&id, &at, p, reason, &self.dispenser),
                )?
            }
            WITHDRAW => match self.sent_notification(&m.message.subject).await? {
                None => Built::NotApplicable(
                    "no dispense notification was sent: nothing to withdraw".into(),
                ),
                Some(notification) => send(
                    TASK,
                    &id,
                    &withdraw_task(
                        &id,
                        &at,
                        p,
                        &notification.0,
                        WithdrawReason::OtherNonClinical,
                        &self.dispenser,
                    ),
                )?,
            },
            CLAIM => self.build_claim(m, body, p, &id, &lines).await?,
            other => Built::Refused(format!("{other} is not an EPS message type")),
        };
        Ok(built)
    }

    async fn build_claim(
        &self,
        m: &OutboxMessage,
        body: &Value,
        p: &Released,
        id: &str,
        lines: &[(String, Quantity)],
    ) -> anyhow::Result<Built> {
        let Some((_, notify_message)) = self.sent_notification(&m.message.subject).await? else {
            return Ok(Built::Refused(
                "no dispense notification was accepted by EPS: nothing to claim".into(),
            ));
        };
        if self.accepted(&m.message.subject, WITHDRAW).await? {
            return Ok(Built::Refused(
                "the dispense notification was withdrawn (the parcel came back): nothing to claim"
                    .into(),
            ));
        }
        let Some(code) = body["exemption"].as_str() else {
            return Ok(Built::Refused(
                "the prescription's quote records no exemption code".into(),
            ));
        };
        let Some(exemption) = NhsTables::builtin().exemption(code) else {
            return Ok(Built::Refused(format!(
                "{code} is not an exemption code of the NHS table"
            )));
        };
        let charges = body["items"][0]["charges_paid"].as_u64().unwrap_or(0) as u8;
        let items = lines
            .iter()
            .enumerate()
            .map(|(n, (line, quantity))| ClaimedItem {
                line_id: line.clone(),
                dispense_id: derived_uuid(&notify_message, line),
                sequence_id: derived_uuid(&m.message.id, &format!("sequence-{n}")),
                status: LineStatus::FullyDispensed,
                quantity: quantity.clone(),
                endorsement: Some(no_endorsement()),
                charges_paid: charges,
            })
            .collect();
        // The message's own time, so a retry is the same claim.
        let created = m.message.created_at.to_string();
        let input = ClaimInput {
            id,
            created: &created,
            prescription: p,
            status: PrescriptionStatus::Dispensed,
            exemption,
            evidence_seen: body["evidence_seen"].as_bool().unwrap_or(false),
            items,
        };
        Ok(match claim(&input, &self.dispenser) {
            Ok(c) => send(CLAIM_PATH, id, &c)?,
            Err(e) => Built::Refused(e),
        })
    }

    /// The FHIR id and outbox message id of the last message of `event_type` EPS accepted
    /// for `subject`, if any.
    async fn last_accepted(
        &self,
        subject: &str,
        event_type: &str,
    ) -> anyhow::Result<Option<(String, String)>> {
        Ok(self
            .store
            .timeline(subject)
            .await?
            .into_iter()
            .rev()
            .map(|e| e.event)
            .find(|e| {
                e.kind == SENT_EVENT
                    && e.detail["event_type"] == event_type
                    && e.detail["status"]
                        .as_u64()
                        .is_some_and(|s| (200..300).contains(&s))
            })
            .and_then(|e| {
                Some((
                    e.detail["fhir_id"].as_str()?.to_string(),
                    e.detail["message_id"].as_str()?.to_string(),
                ))
            }))
    }

    /// The dispense notification EPS accepted for `subject`, if any.
    async fn sent_notification(&self, subject: &str) -> anyhow::Result<Option<(String, String)>> {
        self.last_accepted(subject, NOTIFY).await
    }

    /// Whether EPS accepted a message of `event_type` for `subject`.
    async fn accepted(&self, subject: &str, event_type: &str) -> anyhow::Result<bool> {
        Ok(self.last_accepted(subject, event_type).await?.is_some())
    }
}

fn send(path: &'static str, id: &str, message: &impl serde::Serialize) -> anyhow::Result<Built> {
    Ok(Built::Send {
        path,
        fhir_id: id.to_string(),
        body: serde_json::to_value(message)?,
    })
}
