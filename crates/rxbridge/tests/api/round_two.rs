//! The 2026-12 rules end to end: signed electronic private prescriptions, prescriber keys on
//! the command line, amendments a pharmacist records, identity matching across records.

use crate::api::cli::{one_json_line, rxbridge, succeeded};
use crate::api::helpers::*;
use crate::api::portal::{csrf_in, signed_in};
use crate::common::get_text;
use reqwest::StatusCode;
use rxbridge_app::signatures::{SigningAlg, sign_detached};
use rxbridge_app::staff::Role;
use serde_json::{Value, json};

fn pom(reference: &str) -> Value {
    let mut b = private_pom_body();
    b["clinic_reference"] = reference.into();
    b
}

fn signed(mut b: Value, kid: &str) -> Value {
    let jws = sign_detached(
        &b,
        &fixture_key("es256-private.pem"),
        SigningAlg::Es256,
        kid,
    )
    .unwrap();
    b["signature"] = json!({ "jws": jws });
    b
}

#[tokio::test]
async fn signed_electronic_private_prescriptions_are_recorded_with_their_signature_check() {
    let app = spawn_app().await;
    let keys = app.running.as_ref().unwrap().state.intake.prescriber_keys();
    keys.add(
        "test",
        &app.clinic_id,
        "gmc:7012345",
        &fixture_key("es256-public.pem"),
        Some("dr-shah-1"),
        None,
    )
    .await
    .unwrap();
    // Signed: recorded for the pharmacist, the key named in the finding.
    let v = app.submit_ok(&signed(pom("SIG-1"), "dr-shah-1")).await;
    assert_eq!(v["status"], "awaiting_clinical_check", "{v:#}");
    let f = &v["findings"][0];
    assert_eq!(f["code"], "signature_verified");
    assert!(f["message"].as_str().unwrap().contains("dr-shah-1"));
    // Changed after signing (another patient name): recorded as rejected, with the reason.
    let mut tampered = signed(pom("SIG-2"), "dr-shah-1");
    tampered["patient"]["given_name"] = "Samuel".into();
    let v = app.submit_ok(&tampered).await;
    assert_eq!(v["status"], "rejected");
    assert!(
        codes(&v).contains(&"signature_invalid".to_string()),
        "{v:#}"
    );
    // Unsigned.
    let v = app.submit_ok(&pom("SIG-3")).await;
    assert_eq!(v["status"], "rejected");
    assert!(
        codes(&v).contains(&"signature_missing".to_string()),
        "{v:#}"
    );
    // Not a JWS at all: 422, nothing stored.
    let before = app.count(&app.test_key).await;
    let mut junk = pom("SIG-4");
    junk["signature"] = json!({ "jws": "Dr P Shah" });
    let r = app.submit(&junk).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert!(
        error_pointers(&body)
            .iter()
            .any(|(p, c)| p == "/signature/jws" && c == "invalid_signature"),
        "{body:#}"
    );
    assert_eq!(app.count(&app.test_key).await, before);
    // Revoked now: a prescription received from now on is blocked.
    keys.revoke("test", &app.clinic_id, "dr-shah-1", None)
        .await
        .unwrap();
    let v = app.submit_ok(&signed(pom("SIG-5"), "dr-shah-1")).await;
    assert_eq!(v["status"], "rejected");
    assert!(
        codes(&v).contains(&"signature_key_revoked".to_string()),
        "{v:#}"
    );
    // A paper or EPS authority needs no signature.
    let v = app.submit_ok(&nhs_body()).await;
    assert!(
        !codes(&v).iter().any(|c| c.starts_with("signature_")),
        "{v:#}"
    );
}

#[test]
fn prescriber_keys_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = rxbridge(dir.path(), &["clinic", "add", "--name", "Keys", "--json"]);
    let clinic: Value = serde_json::from_slice(&out.stdout).unwrap();
    let clinic = clinic["clinic_id"].as_str().unwrap();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, fixture_key("es256-public.pem")).unwrap();
    let pem = pem.to_str().unwrap();
    let add = |more: &[&str]| {
        let base = [
            "prescriber-key",
            "add",
            "--clinic",
            clinic,
            "--registration",
            "gmc:7012345",
        ];
        rxbridge(
            dir.path(),
            &[&base[..], &["--public-key", pem], more].concat(),
        )
    };
    let out = add(&["--json"]);
    let v = one_json_line(out);
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert_eq!(v["registration"], "gmc:7012345");
    let kid = v["kid"].as_str().unwrap().to_string();
    assert!(kid.starts_with("pk_"), "{kid}");
    // Rotation: a second key with its own id beside the first.
    let out = add(&["--kid", "dr-shah-2026", "--json"]);
    succeeded(&out);
    // Refusals name what is wrong and change nothing.
    for (args, says) in [
        (vec!["--registration", "gmc:12"], "--registration"),
        (vec!["--registration", "7012345"], "body:number"),
        (
            vec!["--registration", "gmc:7012345", "--alg", "RS256"],
            "cannot sign RS256",
        ),
        (
            vec!["--registration", "gmc:7012345", "--kid", "dr-shah-2026"],
            "already has a key",
        ),
    ] {
        let mut a = vec![
            "prescriber-key",
            "add",
            "--clinic",
            clinic,
            "--public-key",
            pem,
        ];
        a.extend(args);
        let out = rxbridge(dir.path(), &a);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{says}: {err}");
    }
    let revoke = |more: &[&str]| {
        let base = [
            "prescriber-key",
            "revoke",
            "--clinic",
            clinic,
            "--kid",
            &kid,
        ];
        rxbridge(dir.path(), &[&base[..], more].concat())
    };
    let out = revoke(&["--at", "2026-12-01T09:00:00Z"]);
    succeeded(&out);
    let out = revoke(&[]);
    assert!(!out.status.success(), "revoked twice");
    let out = rxbridge(
        dir.path(),
        &["prescriber-key", "list", "--clinic", clinic, "--json"],
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let first = list.iter().find(|k| k["kid"] == kid.as_str()).unwrap();
    assert_eq!(first["revoked_at"], "2026-12-01T09:00:00Z");
    assert_eq!(first["alg"], "ES256");
    let out = rxbridge(
        dir.path(),
        &["prescriber-key", "list", "--clinic", "cl_nope", "--json"],
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!([])
    );
    let out = rxbridge(
        dir.path(),
        &[
            "prescriber-key",
            "add",
            "--clinic",
            "cl_nope",
            "--registration",
            "gmc:7012345",
            "--public-key",
            pem,
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no clinic cl_nope"));
}

#[tokio::test]
async fn a_pharmacist_records_the_quantity_in_words_before_approving() {
    let app = spawn_app().await;
    // An NHS EPS CD with the quantity in figures only.
    let mut b = nhs_body();
    b["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("quantity_in_words");
    let v = app.submit_ok(&b).await;
    assert_eq!(v["status"], "awaiting_clinical_check", "{v:#}");
    assert_eq!(codes(&v), ["cd_quantity_words_missing"]);
    let id = v["id"].as_str().unwrap();
    let c = signed_in(&app, Role::Pharmacist, "amend@example.com").await;
    let page = get_text(&c, app.url(&format!("/staff/prescriptions/{id}?mode=test"))).await;
    assert!(
        page.contains("name=\"amend.cd_quantity_words_missing.0\""),
        "the form asks for it"
    );
    let csrf = csrf_in(&page);
    let url = app.url(&format!("/staff/prescriptions/{id}/decision?mode=test"));
    let post = |amend: Option<&'static str>| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("version", "1".to_string()),
            ("decision", "approve".into()),
            ("ack", "cd_quantity_words_missing".into()),
            ("reason", "Confirmed with the prescriber".into()),
        ];
        if let Some(a) = amend {
            form.push(("amend.cd_quantity_words_missing.0", a.into()));
        }
        c.post(&url).form(&form).send()
    };
    // Acknowledged but not amended; amended with another number: refused, nothing changes.
    let r = crate::common::follow(&c, post(None).await.unwrap()).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("record what you added"));
    let r = crate::common::follow(&c, post(Some("thirty")).await.unwrap()).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("must state the quantity 28")
    );
    let r = post(Some("twenty-eight")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = app
        .get_json(&format!("/v1/prescriptions/{id}"), &app.test_key)
        .await;
    let amended = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "prescription.amended")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(amended["detail"]["added"], "twenty-eight");
    assert_eq!(amended["detail"]["gphc"], "2033467");
    assert!(amended["actor"].as_str().unwrap().starts_with("staff:"));
}

/// A valid NHS number from nine digits.
fn nhs(first9: u32) -> String {
    let d: Vec<u32> = format!("{first9:09}")
        .chars()
        .map(|c| c.to_digit(10).unwrap())
        .collect();
    match rxbridge_domain::ids::nhs_check_digit(&d) {
        Some(c) => format!("{first9:09}{c}"),
        None => nhs(first9 + 1),
    }
}

#[tokio::test]
async fn one_person_one_identity_however_the_clinic_types_it() {
    let app = spawn_app().await;
    let person = |given: &str, family: &str, n: u32, lines: Value, reference: &str| {
        let mut b = nhs_body();
        b["clinic_reference"] = reference.into();
        b["patient"]["given_name"] = given.into();
        b["patient"]["family_name"] = family.into();
        b["patient"]["nhs_number"] = nhs(n).into();
        b["patient"]["address"]["lines"] = lines;
        b
    };
    let numbers: std::collections::BTreeSet<String> =
        [401_000_000, 402_000_000, 403_000_000, 404_000_000]
            .map(nhs)
            .into();
    assert_eq!(numbers.len(), 4, "four different NHS numbers");
    // (who, NHS number, address lines, reference; the finding; whether it is raised)
    let cases = [
        (
            ("Siân", "O'Brien"),
            401_000_000,
            json!(["Flat 2", "10 High St."]),
            "ID-1",
            "identity_conflict",
            false,
        ),
        // The same name and birth date, typed another way, under another NHS number.
        (
            ("SIAN", "OBRIEN"),
            402_000_000,
            json!(["FLAT 2, 10 HIGH STREET"]),
            "ID-2",
            "identity_conflict",
            true,
        ),
        // A third person at the same flat (spelt a third way) makes three patients at one address.
        (
            ("Alex", "Jones"),
            403_000_000,
            json!(["flat 2", "10, High Street"]),
            "ID-3",
            "address_multiple_patients",
            true,
        ),
        // Another flat in the same building is another address: every line counts.
        (
            ("Kim", "Lee"),
            404_000_000,
            json!(["Flat 3", "10 High Street"]),
            "ID-4",
            "address_multiple_patients",
            false,
        ),
    ];
    for ((given, family), n, lines, reference, code, raised) in cases {
        let v = app
            .submit_ok(&person(given, family, n, lines, reference))
            .await;
        assert_eq!(
            codes(&v).contains(&code.to_string()),
            raised,
            "{reference}: {v:#}"
        );
    }
}
