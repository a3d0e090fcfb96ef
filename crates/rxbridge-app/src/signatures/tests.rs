//! The signature check against keys in memory, signed here with the test-only keys in
//! `tests/fixtures/keys`; RFC 8785's own examples for the canonical form.

use super::*;
use crate::clock::FixedClock;
use std::sync::Mutex;

#[derive(Default)]
struct MemKeys(Mutex<Vec<PrescriberKey>>);

#[async_trait]
impl PrescriberKeyStore for MemKeys {
    async fn add_prescriber_key(&self, key: PrescriberKey, _: NewEvent) -> Result<(), StoreError> {
        let mut v = self.0.lock().unwrap();
        if v.iter()
            .any(|k| k.clinic_id == key.clinic_id && k.kid == key.kid)
        {
            return Err(StoreError::Duplicate);
        }
        v.push(key);
        Ok(())
    }
    async fn prescriber_key(
        &self,
        c: &str,
        kid: &str,
    ) -> Result<Option<PrescriberKey>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|k| k.clinic_id == c && k.kid == kid)
            .cloned())
    }
    async fn prescriber_keys(&self, c: &str) -> Result<Vec<PrescriberKey>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.clinic_id == c)
            .cloned()
            .collect())
    }
    async fn revoke_prescriber_key(
        &self,
        c: &str,
        kid: &str,
        at: Timestamp,
        _: NewEvent,
    ) -> Result<(), StoreError> {
        let mut v = self.0.lock().unwrap();
        let k = v
            .iter_mut()
            .find(|k| k.clinic_id == c && k.kid == kid)
            .ok_or(StoreError::NotFound)?;
        if k.revoked_at.is_some() {
            return Err(StoreError::Conflict);
        }
        k.revoked_at = Some(at);
        Ok(())
    }
}

pub(crate) fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/keys")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Sign `body` as a prescriber's system would: detached JWS over the canonical JSON.
pub(crate) fn sign(
    body: &serde_json::Value,
    private_pem: &str,
    alg: Algorithm,
    kid: &str,
) -> String {
    let alg = SigningAlg::parse(&format!("{alg:?}")).unwrap();
    sign_detached(body, private_pem, alg, kid).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn keys() -> PrescriberKeys {
    PrescriberKeys::new(
        Arc::new(MemKeys::default()),
        Arc::new(FixedClock::new(t("2026-11-26T09:00:00Z"))),
    )
}

fn body() -> serde_json::Value {
    serde_json::json!({
        "clinic_reference": "REF-€-1",
        "items": [{ "quantity": 28, "dose": { "units": 1.0, "times_per_day": 1 } }],
        "b": "second", "a": "first"
    })
}

/// The parts of a prescription the check reads: the prescriber's registration and the JWS.
fn rx_for(_body: &serde_json::Value, jws: Option<String>) -> Prescription {
    use rxbridge_domain::contact::Address;
    use rxbridge_domain::ids::ClinicReference;
    use rxbridge_domain::prescription::*;
    let address = Address {
        lines: vec!["1 Harley Street".into()],
        town: "London".into(),
        postcode: "W1G 9QD".into(),
        country: "GB".into(),
    };
    Prescription {
        clinic_reference: ClinicReference::parse("REF-1").unwrap(),
        kind: PrescriptionType::Private,
        issued_on: jiff::civil::date(2026, 11, 20),
        authority: Authority {
            kind: AuthorityKind::ElectronicPrivate,
            form: None,
            serial_number: None,
            eps_prescription_id: None,
        },
        prescriber: Prescriber {
            given_name: "Priya".into(),
            family_name: "Shah".into(),
            registration: Registration::parse("gmc", "7012345").unwrap(),
            kind: None,
            private_prescriber_code: None,
            address: address.clone(),
        },
        patient: Patient {
            nhs_number: None,
            given_name: "Sam".into(),
            family_name: "Taylor".into(),
            date_of_birth: jiff::civil::date(1998, 2, 14),
            email: None,
            phone: None,
            address,
        },
        items: vec![],
        nhs: None,
        signature: jws,
    }
}

#[test]
fn rfc_8785_examples() {
    // RFC 8785 section 3.2.2.
    let input: serde_json::Value = serde_json::from_str(
        r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]}"#,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(signed_payload(&input).unwrap()).unwrap(),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
    // Section 3.2.3: keys sorted by UTF-16 code units, astral-plane characters included.
    let input: serde_json::Value = serde_json::from_str(
        r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#,
    )
    .unwrap();
    let out = String::from_utf8(signed_payload(&input).unwrap()).unwrap();
    let order: Vec<&str> = [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small",
        "Euro Sign",
        "Emoji",
        "Hebrew",
    ]
    .to_vec();
    let pos: Vec<usize> = order.iter().map(|k| out.find(k).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{out}");
    // ECMAScript number forms.
    let input: serde_json::Value =
        serde_json::from_str(r#"[1e21, -0, 0.1, 28, 28.0, 1E-7]"#).unwrap();
    assert_eq!(
        String::from_utf8(signed_payload(&input).unwrap()).unwrap(),
        "[1e+21,0,0.1,28,28,1e-7]"
    );
    // The signature member is left out, wherever it stands.
    let with = serde_json::json!({"a": 1, "signature": {"jws": "x..y"}});
    assert_eq!(signed_payload(&with).unwrap(), b"{\"a\":1}");
}

#[test]
fn detached_jws_shapes() {
    let good = sign(
        &body(),
        &fixture("es256-private.pem"),
        Algorithm::ES256,
        "k1",
    );
    let j = parse_detached_jws(&good).unwrap();
    assert_eq!((j.alg.as_str(), j.kid.as_str()), ("ES256", "k1"));
    for bad in [
        "",
        "abc",
        "a.b.c",
        "eyJhbGciOiJFUzI1NiJ9..c2ln",
        "bm90LWpzb24..c2ln",
        "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0..",
        "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0..not base64!",
    ] {
        assert!(parse_detached_jws(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn keys_are_added_with_their_algorithm_and_refused_when_wrong() {
    let k = keys();
    let es = k
        .add(
            "cli",
            "cl_1",
            "gmc:7012345",
            &fixture("es256-public.pem"),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(es.alg, SigningAlg::Es256);
    assert!(
        es.kid.starts_with("pk_") && es.kid.len() == 19,
        "{}",
        es.kid
    );
    let es384 = k
        .add(
            "cli",
            "cl_1",
            "gmc:7012345",
            &fixture("es384-public.pem"),
            Some("k384"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(es384.alg, SigningAlg::Es384);
    let rs = k
        .add(
            "cli",
            "cl_1",
            "gmc:7012345",
            &fixture("rs256-public.pem"),
            Some("krs"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(rs.alg, SigningAlg::Rs256);
    let ps = k
        .add(
            "cli",
            "cl_1",
            "gmc:7012345",
            &fixture("rs256-public.pem"),
            Some("kps"),
            Some("PS256"),
        )
        .await
        .unwrap();
    assert_eq!(ps.alg, SigningAlg::Ps256);
    for (pem, alg, reg) in [
        (fixture("es256-public.pem"), Some("RS256"), "gmc:7012345"),
        (fixture("rs256-public.pem"), Some("ES256"), "gmc:7012345"),
        (fixture("es256-public.pem"), Some("HS256"), "gmc:7012345"),
        ("not a key".to_string(), None, "gmc:7012345"),
        (fixture("es256-public.pem"), None, "gmc:12"),
        (fixture("es256-public.pem"), None, "7012345"),
    ] {
        assert!(
            matches!(
                k.add("cli", "cl_1", reg, &pem, Some("x"), alg).await,
                Err(KeyError::Invalid(_))
            ),
            "{alg:?} {reg}"
        );
    }
    assert!(matches!(
        k.add(
            "cli",
            "cl_1",
            "gmc:7012345",
            &fixture("es256-public.pem"),
            Some("k384"),
            None
        )
        .await,
        Err(KeyError::KidTaken(_))
    ));
    assert_eq!(k.list("cl_1").await.unwrap().len(), 4);
    assert!(k.list("cl_2").await.unwrap().is_empty());
}

#[tokio::test]
async fn signatures_verify_only_over_the_submission_as_received() {
    let k = keys();
    let received = t("2026-11-26T10:00:00Z");
    for (private, public, alg, kid) in [
        (
            "es256-private.pem",
            "es256-public.pem",
            Algorithm::ES256,
            "k256",
        ),
        (
            "es384-private.pem",
            "es384-public.pem",
            Algorithm::ES384,
            "k384",
        ),
        (
            "rs256-private.pem",
            "rs256-public.pem",
            Algorithm::RS256,
            "krs",
        ),
    ] {
        k.add(
            "cli",
            "cl_1",
            "gmc:7012345",
            &fixture(public),
            Some(kid),
            None,
        )
        .await
        .unwrap();
        let b = body();
        let jws = sign(&b, &fixture(private), alg, kid);
        let rx = rx_for(&b, Some(jws.clone()));
        let payload = signed_payload(&b).unwrap();
        assert_eq!(
            k.check("cl_1", &rx, &payload, received).await.unwrap(),
            SignatureCheck::Verified {
                kid: kid.into(),
                alg: format!("{alg:?}")
            },
            "{kid}"
        );
        // One character changed in the submission.
        let mut tampered = b.clone();
        tampered["b"] = "Second".into();
        let r = k
            .check("cl_1", &rx, &signed_payload(&tampered).unwrap(), received)
            .await
            .unwrap();
        assert!(
            matches!(r, SignatureCheck::Invalid(ref m) if m.contains("does not match")),
            "{r:?}"
        );
        // Same JSON, other key order and spacing: the canonical form is the same.
        let reordered: serde_json::Value = serde_json::from_str(
            r#"{ "a":"first","b":"second","items":[{"dose":{"times_per_day":1,"units":1.0},"quantity":28}],"clinic_reference":"REF-€-1"}"#,
        ).unwrap();
        assert!(matches!(
            k.check("cl_1", &rx, &signed_payload(&reordered).unwrap(), received)
                .await
                .unwrap(),
            SignatureCheck::Verified { .. }
        ));
    }
}

#[tokio::test]
async fn unknown_foreign_revoked_and_mislabelled_keys() {
    let k = keys();
    let b = body();
    let payload = signed_payload(&b).unwrap();
    let received = t("2026-11-26T10:00:00Z");
    k.add(
        "cli",
        "cl_1",
        "gmc:7012345",
        &fixture("es256-public.pem"),
        Some("k1"),
        None,
    )
    .await
    .unwrap();
    k.add(
        "cli",
        "cl_1",
        "gmc:7654321",
        &fixture("other-es256-public.pem"),
        Some("other"),
        None,
    )
    .await
    .unwrap();
    let check = |jws: Option<String>| {
        let rx = rx_for(&b, jws);
        let (k, payload) = (&k, &payload);
        async move { k.check("cl_1", &rx, payload, received).await.unwrap() }
    };
    assert_eq!(check(None).await, SignatureCheck::Missing);
    let jws = sign(&b, &fixture("es256-private.pem"), Algorithm::ES256, "nope");
    assert_eq!(
        check(Some(jws)).await,
        SignatureCheck::KeyUnknown("nope".into())
    );
    // Another clinic's key of the same id is not this clinic's.
    let jws = sign(&b, &fixture("es256-private.pem"), Algorithm::ES256, "k1");
    let rx = rx_for(&b, Some(jws.clone()));
    assert_eq!(
        k.check("cl_2", &rx, &payload, received).await.unwrap(),
        SignatureCheck::KeyUnknown("k1".into())
    );
    // A key registered for another prescriber.
    let jws_other = sign(
        &b,
        &fixture("other-es256-private.pem"),
        Algorithm::ES256,
        "other",
    );
    assert_eq!(
        check(Some(jws_other)).await,
        SignatureCheck::KeyUnknown("other".into())
    );
    // The header must name the key's algorithm.
    let jws384 = sign(&b, &fixture("es384-private.pem"), Algorithm::ES384, "k1");
    assert!(
        matches!(check(Some(jws384)).await, SignatureCheck::Invalid(m) if m.contains("alg ES384"))
    );
    // Revocation counts against the time of receipt: after it, blocked; before it, valid.
    k.revoke("cli", "cl_1", "k1", Some(t("2026-11-26T10:00:00Z")))
        .await
        .unwrap();
    assert!(matches!(
        check(Some(jws.clone())).await,
        SignatureCheck::KeyRevoked { .. }
    ));
    let rx = rx_for(&b, Some(jws));
    assert!(matches!(
        k.check("cl_1", &rx, &payload, t("2026-11-26T09:59:59Z"))
            .await
            .unwrap(),
        SignatureCheck::Verified { .. }
    ));
    assert!(matches!(
        k.revoke("cli", "cl_1", "k1", None).await,
        Err(KeyError::AlreadyRevoked(_))
    ));
    assert!(matches!(
        k.revoke("cli", "cl_1", "zz", None).await,
        Err(KeyError::NoKey(_))
    ));
}
