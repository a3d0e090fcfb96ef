//! The dispensing client against the EPS stand-in, in process, over HTTP on a local port.

use std::time::Duration;

use rxbridge_domain::nhs::NhsTables;
use rxbridge_eps::sim::{EpsSim, Failure, SimConfig};
use rxbridge_eps::{EpsClient, EpsConfig, EpsError, Retry};
use rxbridge_fhir::dispensing::codes::{
    LineStatus, PrescriptionStatus, ReturnReason, WithdrawReason,
};
use rxbridge_fhir::dispensing::resources::MessageBundle;
use rxbridge_fhir::dispensing::types::Quantity;
use rxbridge_fhir::dispensing::{
    Agent, ClaimInput, ClaimedItem, Dispatch, DispensedItem, Dispenser, Released, claim,
    dispense_notification, release_request, return_task, withdraw_task,
};

const KID: &str = "rxbridge-test-1";
const API_KEY: &str = "test-api-key";

fn key(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/keys")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

struct Running {
    sim: EpsSim,
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sim = EpsSim::new(SimConfig {
        public_key_pem: key("rs256-public.pem"),
        key_id: KID.into(),
        api_key: API_KEY.into(),
        token_url: format!("{base}/oauth2/token"),
        token_ttl: Duration::from_secs(600),
    })
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(rxbridge_eps::sim::run(listener, sim.clone(), async {
        let _ = stopped.await;
    }));
    Running {
        sim,
        base,
        _stop: stop,
    }
}

fn client(r: &Running, private_key: &str, kid: &str) -> EpsClient {
    EpsClient::new(EpsConfig {
        base_url: r.base.clone(),
        token_url: format!("{}/oauth2/token", r.base),
        api_key: API_KEY.into(),
        key_id: kid.into(),
        private_key_pem: key(private_key),
        retry: Retry {
            attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
    })
    .unwrap()
}

fn dispenser() -> Dispenser {
    Dispenser {
        ods_code: "FA565".into(),
        name: "Test Pharmacy".into(),
        address_lines: vec!["1 Test Street".into()],
        city: "Leeds".into(),
        postcode: "LS1 1AA".into(),
        phone: "0113 0000000".into(),
        reimbursement_authority: "T1450".into(),
        agent: Agent {
            role_profile_id: "555086415105".into(),
            user_id: "3415870201".into(),
            name: "Test Pharmacist".into(),
            job_role_code: "R8000".into(),
            phone: "0113 0000001".into(),
        },
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn released(c: &EpsClient) -> Released {
    let (release, sent) = c
        .release(
            &release_request(&uuid(), &dispenser(), None),
            "corr-release",
        )
        .await
        .unwrap();
    assert_eq!(sent.status, 200);
    let mut ps = release.prescriptions();
    assert!(!ps.is_empty(), "the stand-in released nothing");
    ps.remove(0).unwrap()
}

fn notification(p: &Released) -> MessageBundle {
    let items = p
        .items
        .iter()
        .map(|mr| DispensedItem {
            line_id: mr.identifier[0].value.clone().unwrap(),
            dispense_id: uuid(),
            status: LineStatus::FullyDispensed,
            quantity: mr
                .dispense_request
                .as_ref()
                .and_then(|d| d.quantity.clone()),
            not_dispensed_reason: None,
        })
        .collect();
    let (id, header, org) = (uuid(), uuid(), uuid());
    let d = Dispatch {
        id: &id,
        header_id: &header,
        organization_id: &org,
        handed_over: "2026-12-01T11:45:00+00:00",
        prescription: p,
        status: PrescriptionStatus::Dispensed,
        items,
    };
    dispense_notification(&d, &dispenser()).unwrap()
}

#[tokio::test]
async fn release_notify_return_withdraw_and_claim_are_accepted() {
    let r = start().await;
    let c = client(&r, "rs256-private.pem", KID);
    let p = released(&c).await;
    assert_eq!(p.short_form_id, "24F5DA-A83008-7EFE6Z");

    let dn = notification(&p);
    let sent = c.notify(&dn, "corr-1").await.unwrap();
    assert_eq!((sent.status, sent.attempts), (200, 1));
    assert_eq!(sent.answer["issue"][0]["code"], "informational");

    let at = "2026-12-01T12:00:00+00:00";
    let dn_id = dn.identifier.as_ref().unwrap().value.clone().unwrap();
    c.task(
        &withdraw_task(
            &uuid(),
            at,
            &p,
            &dn_id,
            WithdrawReason::QuantityUpdate,
            &dispenser(),
        ),
        "corr-2",
    )
    .await
    .unwrap();
    c.task(
        &return_task(
            &uuid(),
            at,
            &p,
            ReturnReason::UnableToDispense,
            &dispenser(),
        ),
        "corr-3",
    )
    .await
    .unwrap();

    let exemption = NhsTables::builtin().exemption("0001").unwrap();
    let items = p
        .items
        .iter()
        .map(|mr| ClaimedItem {
            line_id: mr.identifier[0].value.clone().unwrap(),
            dispense_id: uuid(),
            sequence_id: uuid(),
            status: LineStatus::FullyDispensed,
            quantity: mr
                .dispense_request
                .as_ref()
                .and_then(|d| d.quantity.clone())
                .unwrap_or_else(Quantity::default),
            endorsement: None,
            charges_paid: 1,
        })
        .collect();
    let input = ClaimInput {
        id: &uuid(),
        created: at,
        prescription: &p,
        status: PrescriptionStatus::Dispensed,
        exemption,
        evidence_seen: false,
        items,
    };
    c.claim(&claim(&input, &dispenser()).unwrap(), "corr-4")
        .await
        .unwrap();

    let paths: Vec<&str> = r.sim.received().iter().map(|m| m.path).collect();
    assert_eq!(
        paths,
        [
            "/FHIR/R4/Task/$release",
            "/FHIR/R4/$process-message",
            "/FHIR/R4/Task",
            "/FHIR/R4/Task",
            "/FHIR/R4/Claim"
        ]
    );
    assert_eq!(
        r.sim.tokens_issued(),
        1,
        "the token is reused until it expires"
    );
    // Everything was released: the next release is empty.
    let (again, _) = c
        .release(&release_request(&uuid(), &dispenser(), None), "corr-5")
        .await
        .unwrap();
    assert!(again.passed.is_empty());
}

#[tokio::test]
async fn a_503_is_retried_once_with_the_same_request_id_and_not_duplicated() {
    let r = start().await;
    let c = client(&r, "rs256-private.pem", KID);
    let p = released(&c).await;
    r.sim.fail_next(
        1,
        Failure {
            status: 503,
            retry_after: Some(0),
            after_processing: false,
        },
    );
    let sent = c.notify(&notification(&p), "corr").await.unwrap();
    assert_eq!((sent.status, sent.attempts), (200, 2));
    let same: Vec<_> = r
        .sim
        .received()
        .into_iter()
        .filter(|m| m.request_id == sent.request_id)
        .collect();
    assert_eq!(same.len(), 1);
}

#[tokio::test]
async fn a_timeout_after_processing_is_retried_and_answered_from_the_first_processing() {
    let r = start().await;
    let c = client(&r, "rs256-private.pem", KID);
    let p = released(&c).await;
    let before = r.sim.received().len();
    r.sim.fail_next(
        1,
        Failure {
            status: 504,
            retry_after: None,
            after_processing: true,
        },
    );
    let sent = c.notify(&notification(&p), "corr").await.unwrap();
    assert_eq!((sent.status, sent.attempts), (200, 2));
    assert_eq!(
        r.sim.received().len(),
        before + 1,
        "processed once, though sent twice"
    );
}

#[tokio::test]
async fn still_throttled_after_every_attempt_is_unavailable_and_nothing_is_recorded() {
    let r = start().await;
    let c = client(&r, "rs256-private.pem", KID);
    let p = released(&c).await;
    let before = r.sim.received().len();
    r.sim.fail_next(
        3,
        Failure {
            status: 429,
            retry_after: Some(0),
            after_processing: false,
        },
    );
    match c.notify(&notification(&p), "corr").await {
        Err(EpsError::Unavailable { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.sim.received().len(), before);
}

#[tokio::test]
async fn an_assertion_signed_with_another_key_or_kid_gets_401() {
    let r = start().await;
    for (key, kid) in [
        ("other-rs-private.pem", KID),
        ("rs256-private.pem", "another-kid"),
    ] {
        let c = client(&r, key, kid);
        match c
            .release(&release_request(&uuid(), &dispenser(), None), "corr")
            .await
        {
            Err(EpsError::Unauthorized(why)) => assert!(why.contains("401"), "{why}"),
            other => panic!("{key}/{kid}: {other:?}"),
        }
    }
    assert_eq!(r.sim.tokens_issued(), 0);
    assert!(r.sim.received().is_empty());
}

#[tokio::test]
async fn a_message_the_specification_refuses_comes_back_with_its_issues() {
    let r = start().await;
    let c = client(&r, "rs256-private.pem", KID);
    let p = released(&c).await;
    // The pharmacy without its reimbursement authority.
    let mut dn = serde_json::to_value(notification(&p)).unwrap();
    let last = dn["entry"].as_array().unwrap().len() - 1;
    dn["entry"][last]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("extension");
    match c
        .send(rxbridge_eps::client::PROCESS_MESSAGE, &dn, "corr")
        .await
    {
        Err(EpsError::Refused { status, issues }) => {
            assert_eq!(status, 400);
            assert!(issues.iter().any(|i| i.text.as_deref() == Some("The dispense notification is missing the reimbursement authority and it should be provided.")), "{issues:?}");
        }
        other => panic!("{other:?}"),
    }
    // A prescription this pharmacy never released.
    let mut other = p.clone();
    other.short_form_id = "000000-A00000-00000X".into();
    let t = return_task(
        &uuid(),
        "2026-12-01T12:00:00+00:00",
        &other,
        ReturnReason::PatientRequestedRelease,
        &dispenser(),
    );
    match c.task(&t, "corr").await {
        Err(EpsError::Refused { issues, .. }) => assert_eq!(
            issues[0].spine_code.as_deref(),
            Some("PRESCRIPTION_NOT_FOUND")
        ),
        other => panic!("{other:?}"),
    }
    // A Task that is neither a return nor a withdraw.
    let mut t = serde_json::to_value(return_task(
        &uuid(),
        "2026-12-01T12:00:00+00:00",
        &p,
        ReturnReason::Expired,
        &dispenser(),
    ))
    .unwrap();
    t["status"] = "completed".into();
    match c.send(rxbridge_eps::client::TASK, &t, "corr").await {
        Err(EpsError::Refused { issues, .. }) => assert!(
            issues.iter().any(|i| i.text.as_deref()
                == Some("Task.status must be one of: 'in-progress', 'rejected'")),
            "{issues:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_call_without_a_token_or_request_id_is_refused_by_the_stand_in() {
    let r = start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/FHIR/R4/Claim", r.base);
    let no_token = http
        .post(&url)
        .header("X-Request-ID", uuid())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let body: serde_json::Value = no_token.json().await.unwrap();
    assert_eq!(
        body["issue"][0]["details"]["coding"][0]["code"],
        "ACCESS_DENIED"
    );
}

#[tokio::test]
async fn a_token_the_platform_ended_is_replaced_once() {
    let r = start().await;
    let c = client(&r, "rs256-private.pem", KID);
    let p = released(&c).await;
    r.sim.expire_tokens();
    let sent = c.notify(&notification(&p), "corr").await.unwrap();
    assert_eq!(sent.status, 200);
    assert_eq!(r.sim.tokens_issued(), 2);
}

#[tokio::test]
async fn a_service_that_cannot_be_reached_is_unavailable_after_every_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let r = Running {
        sim: start().await.sim,
        base,
        _stop: tokio::sync::oneshot::channel().0,
    };
    let c = client(&r, "rs256-private.pem", KID);
    match c
        .release(&release_request(&uuid(), &dispenser(), None), "corr")
        .await
    {
        Err(EpsError::Unavailable { attempts, last }) => {
            assert_eq!(attempts, 3);
            assert!(last.contains("token endpoint"), "{last}");
        }
        other => panic!("{other:?}"),
    }
}
