//! NHS EPS dispensing, wired into a prescription's life: the pharmacy releases its nominated
//! prescriptions (`Eps::release`), each recorded through the same intake and compliance as
//! the clinic's JSON (authority `eps`, idempotency key `eps:{short-form id}`) or matched with
//! the clinic's own notification of it, or — when it cannot be taken — given back to EPS with
//! a return; the outbox's `eps:{mode}` messages (`rxbridge_app::eps`: notification, return,
//! withdraw, claim) are built into FHIR and sent by [`deliver`]'s transport; the month's
//! claims are queued by `Eps::claims`.
//!
//! Every released original is kept sealed as a document (`{release_id, bundle}`), named on the
//! prescription's `prescription.received` event (`eps_released`, in the intake's transaction)
//! or, for a record it matched, by an `eps.released` event; every message sent is kept sealed
//! with its answer, named by an `eps.sent` event. Ids in a message (its `X-Request-ID`, the
//! FHIR ids) are derived from the outbox message id, so a retry is the same message.

mod deliver;
mod settings;

pub use deliver::derived_uuid;
pub use settings::EpsSettings;

use anyhow::Context as _;
use jiff::Timestamp;
use rxbridge_app::crypto::{PatientVault, sha256_hex};
use rxbridge_app::eps::{RELEASED_EVENT, RETURN, RETURNED_UNRECORDED_EVENT};
use rxbridge_app::events::{NewEvent, canonical_json};
use rxbridge_app::intake::{Begin, Intake, Received};
use rxbridge_app::originals::Documents;
use rxbridge_app::outbox::{Body, NewMessage, new_message_id};
use rxbridge_app::payments::Change;
use rxbridge_app::ports::{Caller, ListFilter, Mode, PrescriptionRecord, Store, StoreError};
use rxbridge_app::{Clock, eps as app_eps};
use rxbridge_domain::dates::london_date;
use rxbridge_eps::{EpsClient, EpsConfig, Retry};
use rxbridge_fhir::DmdTable;
use rxbridge_fhir::dispensing::{Agent, Dispenser, Released, release_request};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use std::sync::Arc;

/// What one release did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    /// Recorded as new prescriptions.
    pub recorded: u32,
    /// Matched with a prescription the clinic had already sent.
    pub matched: u32,
    /// Already recorded by an earlier release (nothing new written).
    pub already: u32,
    /// Could not be taken (outside the formulary, or failing the contract): given back to EPS.
    pub returned: u32,
    /// Released prescriptions EPS could not release (its `failedPrescriptions`).
    pub failed_at_eps: u32,
    /// Released prescriptions without the ids a message about them needs (kept sealed).
    pub unreadable: u32,
    /// Released prescriptions a failure here kept from being taken in (the store, a document):
    /// logged with the kept release answer that holds them.
    pub not_taken: u32,
}

/// The EPS side of the pharmacy.
pub struct Eps {
    client: EpsClient,
    dispenser: Dispenser,
    dmd: DmdTable,
    caller: Caller,
    intake: Arc<Intake>,
    store: Arc<dyn Store>,
    documents: Arc<dyn Documents>,
    vault: PatientVault,
    clock: Arc<dyn Clock>,
}

/// The dm+d table the settings name, or the binary's.
pub fn dmd_table(settings: &EpsSettings) -> anyhow::Result<DmdTable> {
    match &settings.dmd_table {
        None => Ok(DmdTable::builtin().clone()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading eps.dmd_table {}", path.display()))?;
            DmdTable::from_json(&text)
                .map_err(|e| anyhow::anyhow!("eps.dmd_table {}: {e}", path.display()))
        }
    }
}

impl Eps {
    /// `None` when EPS is off (`eps.base_url` unset).
    pub fn from_settings(
        settings: &EpsSettings,
        pharmacy_name: &str,
        intake: Arc<Intake>,
        store: Arc<dyn Store>,
        documents: Arc<dyn Documents>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Option<Self>> {
        if !settings.enabled() {
            return Ok(None);
        }
        settings.validate()?;
        let key_file = settings
            .private_key_file
            .as_ref()
            .context("eps.private_key_file")?;
        let private_key_pem = std::fs::read_to_string(key_file)
            .with_context(|| format!("reading eps.private_key_file {}", key_file.display()))?;
        let client = EpsClient::new(EpsConfig {
            base_url: settings.base_url.clone().unwrap_or_default(),
            token_url: settings.token_url.clone().unwrap_or_default(),
            api_key: settings
                .api_key
                .as_ref()
                .map(|k| k.expose_secret().to_string())
                .unwrap_or_default(),
            key_id: settings.key_id.clone(),
            private_key_pem,
            // One try per call: the outbox retries a message on its own schedule (days), and a
            // release is tried again at the next run, so a slow EPS holds nothing else up.
            retry: Retry {
                attempts: 1,
                ..Retry::default()
            },
        })?;
        let mode = if settings.mode == "test" {
            Mode::Test
        } else {
            Mode::Live
        };
        let vault = intake.vault().clone();
        Ok(Some(Eps {
            client,
            dispenser: Dispenser {
                ods_code: settings.ods_code.clone(),
                name: pharmacy_name.into(),
                address_lines: settings.address_lines.clone(),
                city: settings.city.clone(),
                postcode: settings.postcode.clone(),
                phone: settings.phone.clone(),
                reimbursement_authority: settings.reimbursement_authority.clone(),
                agent: Agent {
                    role_profile_id: settings.agent_role_profile_id.clone(),
                    user_id: settings.agent_user_id.clone(),
                    name: settings.agent_name.clone(),
                    job_role_code: settings.agent_job_role_code.clone(),
                    phone: settings.phone.clone(),
                },
            },
            dmd: dmd_table(settings)?,
            caller: Caller {
                clinic_id: settings.clinic_id.clone().unwrap_or_default(),
                mode,
            },
            intake,
            store,
            documents,
            vault,
            clock,
        }))
    }

    pub fn mode(&self) -> Mode {
        self.caller.mode
    }

    /// Release the prescriptions nominated to the pharmacy and take each one in.
    pub async fn release(&self) -> anyhow::Result<ReleaseReport> {
        let id = uuid::Uuid::now_v7().to_string();
        let request = release_request(&id, &self.dispenser, None);
        let (release, sent) = self.client.release(&request, &id).await?;
        let kept = self
            .keep(
                "eps-release",
                &json!({ "request_id": sent.request_id, "request": sent.request, "status": sent.status, "answer": sent.answer }),
            )
            .await?;
        let report = self
            .take_all(&release, kept["id"].as_str().unwrap_or_default())
            .await;
        self.store
            .record_event(self.event(
                "eps.release_run",
                "eps:release",
                json!({ "release_id": release.id, "document": kept, "recorded": report.recorded, "matched": report.matched, "already": report.already, "returned": report.returned, "failed_at_eps": report.failed_at_eps, "unreadable": report.unreadable, "not_taken": report.not_taken }),
            ))
            .await?;
        Ok(report)
    }

    /// Take in again the prescriptions of a kept release answer (the document an
    /// `eps.release_run` event or the log names): what a stop or a failure interrupted is
    /// finished, and what was taken in before is found already there.
    pub async fn retake(&self, doc_id: &str) -> anyhow::Result<ReleaseReport> {
        let (_, bytes) = self
            .documents
            .get(doc_id)
            .await?
            .with_context(|| format!("no document {doc_id}"))?;
        let kept: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{doc_id} is not a kept release answer"))?;
        let release = rxbridge_fhir::dispensing::Release::parse(&kept["answer"])
            .map_err(|e| anyhow::anyhow!("{doc_id} is not a kept release answer: {e}"))?;
        Ok(self.take_all(&release, doc_id).await)
    }

    /// Take in every prescription of `release`, kept as the document `doc_id`. One that cannot
    /// be taken in does not hold up the others, and stays in the kept answer (the log names
    /// it), so none is lost.
    async fn take_all(
        &self,
        release: &rxbridge_fhir::dispensing::Release,
        doc_id: &str,
    ) -> ReleaseReport {
        let mut report = ReleaseReport {
            failed_at_eps: release.failed.len() as u32,
            ..ReleaseReport::default()
        };
        for bundle in &release.passed {
            if let Err(e) = self.take(&release.id, bundle, &mut report).await {
                tracing::error!(error = %e, document = doc_id, "a released prescription was not taken in; it is in the kept release answer");
                report.not_taken += 1;
            }
        }
        report
    }

    /// One released prescription: recorded, matched, already there, or given back.
    async fn take(
        &self,
        release_id: &str,
        bundle: &Value,
        report: &mut ReleaseReport,
    ) -> anyhow::Result<()> {
        let released = match Released::from_bundle(release_id, bundle) {
            Ok(r) => r,
            Err(_) => {
                // Without its ids nothing can be said about it to EPS: kept for staff (the
                // reason is not logged: it may quote the message).
                let doc = self
                    .keep(
                        "eps-unreadable",
                        &json!({ "release_id": release_id, "bundle": bundle }),
                    )
                    .await?;
                tracing::warn!(document = %doc["id"], "a released prescription could not be read; kept sealed for staff");
                report.unreadable += 1;
                return Ok(());
            }
        };
        let short = released.short_form_id.clone();
        let original = json!({ "release_id": release_id, "bundle": bundle });
        if let Some(rec) = self.clinic_sent(&short).await? {
            if self.released_event(&rec.id).await?.is_none() {
                let doc = self.keep("eps-original", &original).await?;
                let mut change = Change {
                    events: vec![self.released(&rec.id, &doc, release_id, &short, true)],
                    ..Change::default()
                };
                // Already cancelled, rejected or expired here: its return had nothing to go
                // with until now.
                self.with_return(&mut change, &rec);
                self.commit_once(change).await?;
                report.matched += 1;
            } else {
                report.already += 1;
            }
            return Ok(());
        }
        let key = format!("eps:{short}");
        let hash = sha256_hex(canonical_json(bundle).as_bytes());
        let guard = match self.intake.begin(&self.caller, &key, &hash).await {
            Ok(Begin::Proceed(guard)) => guard,
            Ok(Begin::Replay(replayed)) => {
                // Recorded before (its original on its `prescription.received` event); a return
                // a stop kept from being written is written now, once.
                if let Some(rec) = self.recorded(&replayed.view.id).await? {
                    let mut change = Change::default();
                    self.with_return(&mut change, &rec);
                    if !change.outbox.is_empty() {
                        self.commit_once(change).await?;
                    }
                }
                report.already += 1;
                return Ok(());
            }
            Err(e) => return Err(anyhow::anyhow!("releasing a prescription: {e}")),
        };
        let mapped = rxbridge_fhir::map_order(bundle, &self.dmd);
        let today = london_date(self.clock.now());
        let read = mapped
            .as_ref()
            .map_err(|_| vec!["not_a_bundle".to_string()])
            .and_then(|m| {
                rxbridge_http::fhir::read_order(m, today)
                    .map_err(|issues| issues.iter().map(|i| i.code.clone()).collect())
            });
        let doc = self.keep("eps-original", &original).await?;
        let rx = match read {
            Ok(rx) => rx,
            Err(codes) => {
                drop(guard);
                if self.give_back(&short, &doc, release_id, &codes).await? {
                    report.returned += 1;
                } else {
                    report.already += 1;
                }
                return Ok(());
            }
        };
        // The original is named on the prescription's own `prescription.received` event: one
        // transaction, so no prescription is ever recorded without it.
        let received = Received {
            signed_payload: None,
            eps_released: Some(
                self.released(&short, &doc, release_id, &short, false)
                    .detail,
            ),
        };
        let done = self
            .intake
            .submit(guard, &self.caller, &key, &hash, rx, &received)
            .await
            .map_err(|e| anyhow::anyhow!("recording a released prescription: {e}"))?;
        // Refused by the law at intake: given back to EPS so another pharmacy can see it.
        if let Some(rec) = self.recorded(&done.view.id).await? {
            let mut change = Change::default();
            self.with_return(&mut change, &rec);
            if !change.outbox.is_empty() {
                self.commit_once(change).await?;
            }
        }
        report.recorded += 1;
        Ok(())
    }

    /// Add the return of `rec` to `change` when it will not be dispensed here (cancelled,
    /// rejected, expired), marked so it is written once.
    fn with_return(&self, change: &mut Change, rec: &PrescriptionRecord) {
        if let Some(m) = app_eps::return_for(rec, rec.status, self.clock.now()) {
            change.dedupe = Some(("eps-return".into(), rec.id.clone()));
            change.events.push(self.event(
                "eps.return_queued",
                &rec.id,
                json!({ "message_id": m.id, "status": rec.status.as_str() }),
            ));
            change.outbox.push(m);
        }
    }

    /// Commit `change`; one already written (its dedupe mark) is not an error.
    async fn commit_once(&self, change: Change) -> anyhow::Result<()> {
        match self.store.commit(change).await {
            Ok(_) | Err(StoreError::Duplicate) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A released prescription this pharmacy cannot take: recorded for the audit under
    /// `eps:{short-form id}` and returned to EPS through the outbox (once, however often EPS
    /// releases it: `false` when it was returned before).
    async fn give_back(
        &self,
        short: &str,
        doc: &Value,
        release_id: &str,
        codes: &[String],
    ) -> anyhow::Result<bool> {
        let subject = format!("eps:{short}");
        let now = self.clock.now();
        // Outside the formulary (no dm+d code of ours): unable to dispense; else invalid.
        let reason = if codes.iter().all(|c| c == "unknown_product") {
            "unable_to_dispense"
        } else {
            "invalid"
        };
        let message = NewMessage {
            id: new_message_id(),
            destination: app_eps::destination(self.caller.mode),
            event_type: RETURN.into(),
            subject: subject.clone(),
            payload: Body::Clear(
                json!({ "eps_prescription_id": short, "document_id": doc["id"], "reason": reason, "at": now.to_string() }),
            ),
            created_at: now,
        };
        let change = Change {
            dedupe: Some(("eps-release".into(), short.to_string())),
            events: vec![self.event(
                RETURNED_UNRECORDED_EVENT,
                &subject,
                json!({ "release_id": release_id, "document": doc, "codes": codes, "reason": reason, "message_id": message.id }),
            )],
            outbox: vec![message],
            ..Change::default()
        };
        match self.store.commit(change).await {
            Ok(_) => Ok(true),
            Err(StoreError::Duplicate) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Queue the claims of `month` (`rxbridge_app::eps::queue_claims`).
    pub async fn claims(
        &self,
        month: rxbridge_app::finance::Month,
    ) -> anyhow::Result<app_eps::ClaimRun> {
        Ok(app_eps::queue_claims(
            self.store.as_ref(),
            &self.vault,
            self.caller.mode,
            (month.first, month.last()),
            self.clock.now(),
        )
        .await?)
    }

    /// The current month (London time).
    pub fn this_month(&self) -> rxbridge_app::finance::Month {
        rxbridge_app::finance::Month {
            first: london_date(self.clock.now()).first_of_month(),
        }
    }

    /// The month before the current one (London time).
    pub fn last_month(&self) -> rxbridge_app::finance::Month {
        let today = london_date(self.clock.now());
        rxbridge_app::finance::Month {
            first: today
                .first_of_month()
                .saturating_sub(jiff::Span::new().months(1)),
        }
    }

    /// The clinic's own notification of the EPS prescription `short` (its reference is the
    /// short-form id, as the FHIR door records it), when it has one.
    async fn clinic_sent(&self, short: &str) -> anyhow::Result<Option<PrescriptionRecord>> {
        let filter = ListFilter {
            status: None,
            clinic_reference: Some(short.to_string()),
        };
        let page = self
            .store
            .list_prescriptions(&self.caller.clinic_id, self.caller.mode, &filter, None, 20)
            .await?;
        for rec in page.items {
            let rx = self.vault.open_prescription(&rec)?;
            if rx.authority.eps_prescription_id.as_deref() == Some(short)
                && app_eps::is_electronic(&rx)
            {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    async fn recorded(&self, id: &str) -> anyhow::Result<Option<PrescriptionRecord>> {
        Ok(self
            .store
            .get_prescription(&self.caller.clinic_id, self.caller.mode, id)
            .await?)
    }

    async fn released_event(&self, id: &str) -> anyhow::Result<Option<Value>> {
        Ok(released_detail(self.store.as_ref(), id).await?)
    }

    fn released(
        &self,
        id: &str,
        doc: &Value,
        release_id: &str,
        short: &str,
        matched: bool,
    ) -> NewEvent {
        self.event(
            RELEASED_EVENT,
            id,
            json!({ "document": doc, "release_id": release_id, "eps_prescription_id": short, "matched_clinic_notification": matched }),
        )
    }

    fn event(&self, kind: &str, subject: &str, detail: Value) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            kind: kind.into(),
            actor: "system:eps".into(),
            subject: subject.into(),
            detail,
        }
    }

    /// Keep `value` sealed as a document; answers its reference (`{id, content_type, bytes}`).
    async fn keep(&self, what: &str, value: &Value) -> anyhow::Result<Value> {
        let id = format!("doc_{}", uuid::Uuid::now_v7().simple());
        let bytes = serde_json::to_vec(value)?;
        let size = bytes.len();
        self.documents
            .put(&id, "application/fhir+json", bytes)
            .await?;
        Ok(
            json!({ "id": id, "content_type": "application/fhir+json", "bytes": size, "file_name": format!("{what}.json") }),
        )
    }
}

/// The detail of the `eps.released` event on `subject`'s timeline, if it has one.
pub async fn released_detail(
    store: &dyn Store,
    subject: &str,
) -> Result<Option<Value>, StoreError> {
    Ok(store
        .timeline(subject)
        .await?
        .into_iter()
        .find_map(|e| match e.event.kind.as_str() {
            RELEASED_EVENT => Some(e.event.detail),
            "prescription.received" => e.event.detail.get("eps_released").cloned(),
            _ => None,
        }))
}

/// When a message's time was: its `at`, else now.
fn at_of(body: &Value, now: Timestamp) -> String {
    body["at"]
        .as_str()
        .or_else(|| body["handed_over"].as_str())
        .map_or_else(|| now.to_string(), str::to_string)
}
