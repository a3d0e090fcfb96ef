//! NHS EPS dispensing end to end, against the stand-in over HTTP: a released prescription is
//! recorded through intake and compliance, checked by the pharmacist, dispatched by the
//! warehouse — which sends EPS the dispense notification — and claimed at month end; one the
//! pharmacy cannot take is returned; a parcel that comes back withdraws the notification.
//! The dm+d table is a test-only one (`tests/fixtures/eps/dmd-test-only.json`): the binary's
//! has no codes until the product owner sources them.

use super::fulfilment::{INBOUND, wh_event};
use super::harness::{Money, StoreExt as _, test_config};
use jiff::Timestamp;
use reqwest::{Client, StatusCode as Rs};
use rxbridge_app::FixedClock;
use rxbridge_app::clinical::Declared;
use rxbridge_app::outbox::MessageStatus;
use rxbridge_app::ports::Mode;
use rxbridge_eps::sim::{EpsSim, SimConfig};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const KID: &str = "rxbridge-test-1";
const API_KEY: &str = "test-api-key";

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p)
}

async fn start_sim() -> (EpsSim, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = EpsSim::new(SimConfig {
        public_key_pem: std::fs::read_to_string(repo("tests/fixtures/keys/rs256-public.pem"))
            .unwrap(),
        key_id: KID.into(),
        api_key: API_KEY.into(),
        token_url: format!("{base}/oauth2/token"),
        token_ttl: Duration::from_secs(600),
    })
    .unwrap();
    let running = sim.clone();
    tokio::spawn(rxbridge_eps::sim::run(
        listener,
        running,
        std::future::pending(),
    ));
    (sim, base)
}

struct Eps {
    m: Money,
    sim: EpsSim,
}

/// A server with EPS on (mode test) against a fresh stand-in, its EPS clinic made first.
async fn start() -> Eps {
    let (sim, base) = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.warehouse.inbound_secrets = vec![INBOUND.into()];
    let clinic = {
        let app = rxbridge::App::open(config.clone()).unwrap();
        let c = app.state.clinics.add("EPS Clinic").await.unwrap();
        app.store.close();
        c
    };
    let e = &mut config.eps;
    e.base_url = Some(base.clone());
    e.token_url = Some(format!("{base}/oauth2/token"));
    e.api_key = Some(API_KEY.into());
    e.key_id = KID.into();
    e.private_key_file = Some(repo("tests/fixtures/keys/rs256-private.pem"));
    e.mode = "test".into();
    e.clinic_id = Some(clinic.clinic_id.clone());
    e.dmd_table = Some(repo(TEST_DMD));
    e.release_interval_secs = 0;
    e.claim_interval_secs = 0;
    e.ods_code = "FA565".into();
    e.address_lines = vec!["1 Test Street".into()];
    e.city = "Leeds".into();
    e.postcode = "LS1 1AA".into();
    e.phone = "0113 0000000".into();
    e.agent_role_profile_id = "555086415105".into();
    e.agent_user_id = "3415870201".into();
    e.agent_name = "Jackie Clark".into();
    let clock = Arc::new(FixedClock::new(Timestamp::now()));
    let running = rxbridge::spawn_with_clock(config, clock.clone())
        .await
        .expect("server starts");
    let m = Money {
        base: format!("http://{}", running.addr),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        test_key: clinic.test_key,
        live_key: clinic.live_key,
        clinic_id: clinic.clinic_id,
        clock,
        running,
        _dir: dir,
    };
    Eps { m, sim }
}

/// The test-only dm+d table (never shipped or configured outside these tests).
const TEST_DMD: &str = "tests/fixtures/eps/dmd-test-only.json";

fn test_dmd() -> rxbridge_fhir::DmdTable {
    rxbridge_fhir::DmdTable::from_json(&std::fs::read_to_string(repo(TEST_DMD)).unwrap()).unwrap()
}

impl Eps {
    /// The clinic's system sends `bundle` to the FHIR door.
    async fn post_fhir(&self, bundle: &Value) -> reqwest::Response {
        self.m
            .client
            .post(self.m.url("/fhir/R4/$process-message"))
            .bearer_auth(&self.m.test_key)
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .unwrap()
    }
    fn eps(&self) -> &rxbridge::eps::Eps {
        self.m.running.eps.as_deref().expect("EPS is configured")
    }
    fn received(&self, path: &str) -> Vec<Value> {
        self.sim
            .received()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.body)
            .collect()
    }
    async fn only_prescription(&self) -> String {
        let page = self
            .m
            .running
            .state
            .intake
            .list(
                &rxbridge_app::ports::Caller {
                    clinic_id: self.m.clinic_id.clone(),
                    mode: Mode::Test,
                },
                &Default::default(),
                None,
                10,
            )
            .await
            .unwrap();
        assert_eq!(page.data.len(), 1, "{:?}", page.data);
        page.data[0].id.clone()
    }
}

#[tokio::test]
async fn a_released_prescription_is_recorded_dispensed_notified_and_claimed() {
    let t = start().await;
    // The stand-in releases the published prescription (outside the formulary: returned) and
    // one this pharmacy stocks.
    let bundle = stocked(&short_form_id("819851-A83008-2EFE4"), &today(&t));
    // What the JSON door finds for the same prescription (a dry run, before it is on record).
    let dmd = test_dmd();
    let mut json_body = rxbridge_fhir::map_order(&bundle, &dmd).unwrap().contract;
    json_body["nhs"] = json!({ "exemption": "0007", "evidence_seen": true });
    let dry: Value =
        t.m.client
            .post(t.m.url("/v1/prescriptions/validate"))
            .bearer_auth(&t.m.test_key)
            .json(&json_body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let json_findings: Vec<Value> = dry["findings"]
        .as_array()
        .expect("a dry run answer")
        .clone();
    t.sim.queue(bundle.clone());
    let r = t.eps().release().await.unwrap();
    assert_eq!((r.recorded, r.returned), (1, 1), "{r:?}");
    let id = t.only_prescription().await;
    let rec = t.m.record(Mode::Test, &id).await;
    assert_eq!(rec.status.as_str(), "awaiting_clinical_check", "{rec:?}");
    // The same findings as the JSON equivalent.
    let view = t.m.clinic_view(Mode::Test, &id).await;
    assert_eq!(
        view["findings"].as_array().unwrap(),
        &json_findings,
        "{dry:#}"
    );
    // The sealed original is named on the prescription's own received event.
    let received = t.m.running.store.as_ref().timeline_sync(&id).await;
    let doc = received[0].event.detail["eps_released"]["document"]["id"]
        .as_str()
        .expect("the released original on prescription.received")
        .to_string();
    assert!(doc.starts_with("doc_"));
    // The same prescription released again (a spine retry): nothing new is recorded.
    t.sim.queue(bundle.clone());
    let again = t.eps().release().await.unwrap();
    assert_eq!((again.recorded, again.already), (0, 1), "{again:?}");
    t.only_prescription().await;

    // The exemption is declared at the pharmacy, then the pharmacist approves.
    t.m.running
        .clinical
        .declare_exemption(
            "st_test",
            Mode::Test,
            &id,
            Declared {
                code: "0007",
                evidence_seen: true,
            },
        )
        .await
        .unwrap();
    t.m.approve(Mode::Test, &id).await;
    assert_eq!(t.m.running.fulfilment.sweep().await.unwrap().released, 1);
    let (s, v) = wh_event(
        &t.m,
        "wh_eps_1",
        "dispatched",
        json!({ "order_id": id, "carrier": "x", "tracking_number": "y" }),
    )
    .await;
    assert_eq!(s, Rs::OK, "{v}");

    // The outbox sends EPS the dispense notification: accepted by the stand-in.
    t.m.running.outbox.run_once().await.unwrap();
    let dn = t.received("/FHIR/R4/$process-message");
    assert_eq!(dn.len(), 1, "{:?}", t.sim.received());
    assert_eq!(dn[0]["resourceType"], "Bundle");
    let sent = t.m.event_kinds(&id).await;
    assert!(sent.contains(&"eps.sent".to_string()), "{sent:?}");

    // Month end: one claim per dispensed EPS prescription, queued once.
    let month = rxbridge_app::finance::Month {
        first: rxbridge_domain::dates::london_date(rxbridge_app::Clock::now(t.m.clock.as_ref()))
            .first_of_month(),
    };
    let c = t.eps().claims(month).await.unwrap();
    assert_eq!((c.queued, c.already_queued), (1, 0), "{c:?}");
    let c = t.eps().claims(month).await.unwrap();
    assert_eq!((c.queued, c.already_queued), (0, 1), "{c:?}");
    t.m.running.outbox.run_once().await.unwrap();
    let claims = t.received("/FHIR/R4/Claim");
    assert_eq!(claims.len(), 1, "{:?}", t.sim.received());
    let claim = &claims[0];
    assert_eq!(claim["resourceType"], "Claim");
    let text = claim.to_string();
    // Exempt (0007, evidence seen): nothing paid; the dispense id is the notification's.
    assert!(text.contains("\"code\":\"0007\""), "{claim:#}");
    assert!(text.contains("evidence-seen"), "{claim:#}");
    assert!(text.contains("not-paid"), "{claim:#}");
    assert!(text.contains("\"code\":\"0006\""), "{claim:#}");
    let dispense_id = dn[0]["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "MedicationDispense")
        .unwrap()["resource"]["identifier"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&dispense_id), "{dispense_id} in {claim:#}");
    assert_eq!(
        claim["item"][0]["detail"][0]["quantity"]["value"], 20,
        "{claim:#}"
    );

    // The parcel comes back: the notification is withdrawn.
    let (s, v) = wh_event(
        &t.m,
        "wh_eps_2",
        "returned",
        json!({ "order_id": id, "reason": "refused at the door" }),
    )
    .await;
    assert_eq!(s, Rs::OK, "{v}");
    t.m.running.outbox.run_once().await.unwrap();
    let tasks = t.received("/FHIR/R4/Task");
    let status: Vec<&str> = tasks
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    // The published prescription's return, then the withdraw.
    assert_eq!(status, ["rejected", "in-progress"], "{tasks:#?}");
    assert_eq!(tasks[1]["statusReason"]["coding"][0]["code"], "ONC");
    // Nothing left undelivered.
    let dead =
        t.m.running
            .outbox
            .store()
            .messages(MessageStatus::Dead, 10)
            .await
            .unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

/// A short-form prescription id (`XXXXXX-XXXXXX-XXXXX` + its ISO/IEC 7064 MOD 37-2 check
/// character).
fn short_form_id(body: &str) -> String {
    const CHECK: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+";
    let mut total: u64 = 0;
    for c in body.chars().filter(|&c| c != '-') {
        total = ((total + u64::from(c.to_digit(36).unwrap())) * 2) % 37;
    }
    format!("{body}{}", CHECK[((38 - total % 37) % 37) as usize] as char)
}

/// The published release example's prescription (`24F5DA-A83008-7EFE6Z`).
fn published() -> Value {
    let release: Value = serde_json::from_str(rxbridge_eps::sim::PUBLISHED_RELEASE).unwrap();
    release["parameter"][0]["resource"]["entry"][0]["resource"].clone()
}

const PUBLISHED_ID: &str = "24F5DA-A83008-7EFE6Z";

/// The published prescription made one this pharmacy can take, under the short-form id
/// `short`: its first item only (the product the test-only dm+d table maps), a structured
/// dose, a GMC number of digits, and issued today.
fn stocked(short: &str, today: &str) -> Value {
    let text = published()
        .to_string()
        .replace(PUBLISHED_ID, short)
        .replace("2022-10-21", today)
        .replace("C6095103", "7012345");
    let mut b: Value = serde_json::from_str(&text).unwrap();
    let entries = b["entry"].as_array_mut().unwrap();
    let first_item = entries[1]["fullUrl"].clone();
    let dropped: Vec<Value> = entries
        .iter()
        .filter(|e| {
            e["resource"]["resourceType"] == "MedicationRequest" && e["fullUrl"] != first_item
        })
        .map(|e| e["fullUrl"].clone())
        .collect();
    entries.retain(|e| !dropped.contains(&e["fullUrl"]));
    for e in entries.iter_mut() {
        if let Some(focus) = e["resource"]["focus"].as_array_mut() {
            focus.retain(|f| !dropped.contains(&f["reference"]));
        }
        if let Some(target) = e["resource"]["target"].as_array_mut() {
            target.retain(|f| !dropped.contains(&f["reference"]));
        }
    }
    entries[1]["resource"]["dosageInstruction"][0]["doseAndRate"] = json!([{
        "doseQuantity": { "value": 1, "unit": "capsule", "system": "http://snomed.info/sct", "code": "428641000" }
    }]);
    b
}

fn today(t: &Eps) -> String {
    rxbridge_domain::dates::london_date(rxbridge_app::Clock::now(t.m.clock.as_ref())).to_string()
}

#[tokio::test]
async fn a_released_prescription_outside_the_formulary_is_returned_once() {
    let t = start().await;
    let r = t.eps().release().await.unwrap();
    assert_eq!((r.recorded, r.returned), (0, 1), "{r:?}");
    // Released again by a confused spine: still one return.
    t.sim.queue(published());
    let r = t.eps().release().await.unwrap();
    assert_eq!((r.returned, r.already), (0, 1), "{r:?}");
    t.m.running.outbox.run_once().await.unwrap();
    let tasks = t.received("/FHIR/R4/Task");
    assert_eq!(tasks.len(), 1, "{:?}", t.sim.received());
    assert_eq!(tasks[0]["status"], "rejected", "a return: {:#}", tasks[0]);
    // Invalid here beyond its products (a GMC number with a letter, no structured dose).
    assert_eq!(tasks[0]["statusReason"]["coding"][0]["code"], "0007");
    let kinds = t.m.event_kinds(&format!("eps:{PUBLISHED_ID}")).await;
    assert_eq!(kinds, ["eps.returned_unrecorded", "eps.sent"]);
    let sent =
        t.m.running
            .store
            .as_ref()
            .timeline_sync(&format!("eps:{PUBLISHED_ID}"))
            .await;
    assert_eq!(
        sent[1].event.detail["status"], 200,
        "{:?}",
        sent[1].event.detail
    );
}

#[tokio::test]
async fn a_release_of_what_the_clinic_already_sent_is_matched_not_recorded_twice() {
    let t = start().await;
    let bundle = stocked(&short_form_id("819851-A83008-2EFE5"), &today(&t));
    let r = t.post_fhir(&bundle).await;
    assert_eq!(r.status(), Rs::CREATED, "{}", r.text().await.unwrap());
    let id = t.only_prescription().await;
    t.sim.queue(bundle);
    let r = t.eps().release().await.unwrap();
    assert_eq!((r.recorded, r.matched, r.returned), (0, 1, 1), "{r:?}");
    assert_eq!(t.only_prescription().await, id);
    let kinds = t.m.event_kinds(&id).await;
    assert!(kinds.contains(&"eps.released".to_string()), "{kinds:?}");
}

#[tokio::test]
async fn a_cancelled_release_is_returned_and_a_failed_send_is_retried_as_the_same_message() {
    let t = start().await;
    t.sim
        .queue(stocked(&short_form_id("819851-A83008-2EFE6"), &today(&t)));
    assert_eq!(t.eps().release().await.unwrap().recorded, 1);
    let id = t.only_prescription().await;
    // Deliver the published prescription's return first, so only the next one is in play.
    t.m.running.outbox.run_once().await.unwrap();
    t.m.cancel(Mode::Test, &id).await;
    // The gateway times out after EPS took the first try.
    t.sim.fail_next(
        1,
        rxbridge_eps::sim::Failure {
            status: 504,
            retry_after: None,
            after_processing: true,
        },
    );
    let rep = t.m.running.outbox.run_once().await.unwrap();
    assert_eq!(rep.retried, 1, "{rep:?}");
    let returns = |t: &Eps| {
        t.sim
            .received()
            .into_iter()
            .filter(|r| r.path == "/FHIR/R4/Task")
            .collect::<Vec<_>>()
    };
    assert_eq!(
        returns(&t).len(),
        2,
        "EPS took it before the gateway gave up"
    );
    t.m.advance(jiff::SignedDuration::from_mins(10));
    let rep = t.m.running.outbox.run_once().await.unwrap();
    assert_eq!(rep.delivered, 1, "{rep:?}");
    let tasks = returns(&t);
    // Taken once by EPS, though sent twice.
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(tasks[1].body["status"], "rejected");
    assert_eq!(tasks[1].body["statusReason"]["coding"][0]["code"], "0003");
    // The request id is derived from the outbox message: the same whatever the attempt.
    let msg =
        t.m.running
            .outbox
            .store()
            .messages(MessageStatus::Delivered, 20)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.message.event_type == "eps.return" && m.message.subject == id)
            .unwrap();
    assert_eq!(msg.attempts, 2);
    assert_eq!(
        tasks[1].request_id,
        rxbridge::eps::derived_uuid(&msg.message.id, "request")
    );
}

#[tokio::test]
async fn the_clinic_door_refuses_a_prescription_already_released_and_a_cancelled_one_is_returned_on_release()
 {
    let t = start().await;
    let released = stocked(&short_form_id("819851-A83008-2EFE7"), &today(&t));
    t.sim.queue(released.clone());
    assert_eq!(t.eps().release().await.unwrap().recorded, 1);
    let id = t.only_prescription().await;
    // The clinic's system sends the same prescription afterwards (another message id).
    let mut again = released.clone();
    again["identifier"]["value"] = "0d7e0a14-5b52-4b0f-9f66-0c44ce9ab3c1".into();
    let r = t.post_fhir(&again).await;
    assert_eq!(r.status(), Rs::UNPROCESSABLE_ENTITY);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(
        outcome["issue"][0]["diagnostics"], "eps_prescription_recorded",
        "{outcome:#}"
    );
    assert!(
        outcome["issue"][0]["details"]["text"]
            .as_str()
            .unwrap()
            .contains(&id),
        "{outcome:#}"
    );
    assert_eq!(t.only_prescription().await, id);
    // Or its JSON equivalent, under the clinic's own reference.
    let dmd = test_dmd();
    let mut json_body = rxbridge_fhir::map_order(&released, &dmd).unwrap().contract;
    json_body["nhs"] = json!({ "exemption": "0007", "evidence_seen": true });
    json_body["clinic_reference"] = "CLINIC-REF-7".into();
    let r =
        t.m.client
            .post(t.m.url("/v1/prescriptions"))
            .bearer_auth(&t.m.test_key)
            .header("Idempotency-Key", "json-after-release")
            .json(&json_body)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), Rs::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(
        (
            problem["errors"][0]["pointer"].as_str(),
            problem["errors"][0]["code"].as_str()
        ),
        (
            Some("/authority/eps_prescription_id"),
            Some("eps_prescription_recorded")
        ),
        "{problem:#}"
    );
    assert_eq!(t.only_prescription().await, id);

    // A prescription the clinic sent and then cancelled, released afterwards: matched, and
    // returned so the patient can take it elsewhere.
    let sent_first = stocked(&short_form_id("819851-A83008-2EFE8"), &today(&t));
    let r = t.post_fhir(&sent_first).await;
    assert_eq!(r.status(), Rs::CREATED);
    let outcome: Value = r.json().await.unwrap();
    let cancelled = outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .to_string();
    t.m.cancel(Mode::Test, &cancelled).await;
    // Before the release, its return has nothing to go with.
    t.m.running.outbox.run_once().await.unwrap();
    let before = t.received("/FHIR/R4/Task").len();
    t.sim.queue(sent_first);
    let r = t.eps().release().await.unwrap();
    assert_eq!(r.matched, 1, "{r:?}");
    t.m.running.outbox.run_once().await.unwrap();
    let tasks = t.received("/FHIR/R4/Task");
    assert_eq!(tasks.len(), before + 1, "{tasks:#?}");
    let last = tasks.last().unwrap();
    assert_eq!(
        (
            last["status"].as_str(),
            last["statusReason"]["coding"][0]["code"].as_str()
        ),
        (Some("rejected"), Some("0003"))
    );
}
