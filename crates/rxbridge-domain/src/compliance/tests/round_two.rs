//! The 2026-12 rules: who may prescribe, Crown Dependencies, the "as directed" family,
//! directions against the dose, amendable quantities, computed days, the POM window at month
//! ends, repeatable POMs, exemption codes as data, equivalent bodies' forms, signatures.
//! Each on both sides of its boundary.

use super::*;
use crate::ids::{GdcNumber, GocNumber, HcpcNumber, NmcPin, PrescriberKind};

fn with_kind(reg: Registration, kind: Option<PrescriberKind>) -> Prescription {
    let mut rx = clean();
    rx.prescriber.registration = reg;
    rx.prescriber.kind = kind;
    rx
}
fn nmc() -> Registration {
    Registration::Nmc(NmcPin::parse("71A2998E").unwrap())
}
fn hcpc() -> Registration {
    Registration::Hcpc(HcpcNumber::parse("PH123456").unwrap())
}
/// An electronic private prescription for a non-CD (Strattera 40 mg, adult).
fn pom() -> Prescription {
    let mut rx = clean();
    rx.authority.kind = AuthorityKind::ElectronicPrivate;
    rx.authority.serial_number = None;
    rx.items = vec![item("STRATTERA-40", 28, 1.0, 1, 28)];
    rx
}

#[test]
fn prescriber_kinds_decide_what_may_be_prescribed() {
    use PrescriberKind as K;
    // May prescribe a Sch2 stimulant.
    for (reg, kind) in [
        (clean().prescriber.registration, None),
        (clean().prescriber.registration, Some(K::Doctor)),
        (nmc(), Some(K::NurseIndependent)),
        (
            Registration::Gphc(crate::ids::GphcNumber::parse("2033467").unwrap()),
            Some(K::PharmacistIndependent),
        ),
    ] {
        let rx = with_kind(reg, kind);
        assert!(
            codes(&rx, TODAY).is_empty(),
            "{kind:?}: {:?}",
            codes(&rx, TODAY)
        );
    }
    // May not.
    for (reg, kind) in [
        (hcpc(), K::PhysiotherapistIndependent),
        (hcpc(), K::PodiatristIndependent),
        (hcpc(), K::ParamedicIndependent),
        (hcpc(), K::TherapeuticRadiographerIndependent),
        (
            Registration::Goc(GocNumber::parse("01-23456").unwrap()),
            K::OptometristIndependent,
        ),
        (
            Registration::Gdc(GdcNumber::parse("123456").unwrap()),
            K::Dentist,
        ),
    ] {
        let rx = with_kind(reg.clone(), Some(kind));
        assert_eq!(
            codes(&rx, TODAY),
            vec![PRESCRIBER_NOT_AUTHORISED_FOR_CD],
            "{kind:?}"
        );
        let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
        assert_eq!(f[0].severity, Severity::Block);
        assert_eq!(f[0].item, Some(0));
        assert_eq!(intake_status(&rx, &f), Status::Rejected);
        // The same prescriber's non-CD prescription is not refused for the kind.
        let mut p = pom();
        p.prescriber.registration = reg;
        p.prescriber.kind = Some(kind);
        assert!(
            codes(&p, TODAY).is_empty(),
            "{kind:?}: {:?}",
            codes(&p, TODAY)
        );
    }
}

#[test]
fn supplementary_prescribers_are_flagged_once_per_prescription() {
    let mut rx = with_kind(nmc(), Some(PrescriberKind::Supplementary));
    rx.items.push(item("CONCERTA-XL-18", 28, 1.0, 1, 28));
    let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
    let sup: Vec<&Finding> = f
        .iter()
        .filter(|f| f.code == SUPPLEMENTARY_PRESCRIBER)
        .collect();
    assert_eq!(sup.len(), 1, "{f:?}");
    assert_eq!((sup[0].severity, sup[0].item), (Severity::Flag, None));
    assert!(sup[0].message.contains("2 item(s)"), "{}", sup[0].message);
    // A POM too: the plan is never visible.
    let mut p = pom();
    p.prescriber.registration = nmc();
    p.prescriber.kind = Some(PrescriberKind::Supplementary);
    assert_eq!(codes(&p, TODAY), vec![SUPPLEMENTARY_PRESCRIBER]);
}

#[test]
fn an_unknown_kind_is_flagged_on_a_cd_only() {
    let rx = with_kind(nmc(), None);
    assert_eq!(codes(&rx, TODAY), vec![CD_PRESCRIBER_KIND_UNKNOWN]);
    // A GMC registration implies a doctor: not unknown.
    assert!(codes(&with_kind(clean().prescriber.registration, None), TODAY).is_empty());
    let mut p = pom();
    p.prescriber.registration = nmc();
    assert!(codes(&p, TODAY).is_empty());
}

#[test]
fn crown_dependency_prescriber_addresses_fail_for_cds_only() {
    for pc in ["JE2 3AB", "GY1 1AA", "IM1 1AA"] {
        let mut rx = clean();
        rx.prescriber.address.postcode = pc.into();
        assert_eq!(codes(&rx, TODAY), vec![PRESCRIBER_ADDRESS_NOT_UK], "{pc}");
        let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
        assert!(
            f[0].message.contains("Crown Dependency"),
            "{}",
            f[0].message
        );
        let mut p = pom();
        p.prescriber.address.postcode = pc.into();
        assert!(codes(&p, TODAY).is_empty(), "POM from {pc}");
    }
    // The UK-address rule is an MDR rule: a POM prescriber abroad is not refused for it.
    let mut p = pom();
    p.prescriber.address.country = "FR".into();
    assert!(codes(&p, TODAY).is_empty());
    let mut rx = clean();
    rx.prescriber.address.postcode = "GU1 1AA".into();
    assert!(codes(&rx, TODAY).is_empty());
}

#[test]
fn po_boxes_however_spelt() {
    for line in ["P.O.Box12", "Post Office Box 7", "POB 3", "p o box 9"] {
        let mut rx = clean();
        rx.patient.address.lines = vec![line.into()];
        assert_eq!(codes(&rx, TODAY), vec![PATIENT_ADDRESS_PO_BOX], "{line}");
    }
    let mut rx = clean();
    rx.patient.address.lines = vec!["12 Pobble Road".into()];
    assert!(codes(&rx, TODAY).is_empty());
}

#[test]
fn the_as_directed_family_blocks_a_cd() {
    super::dose_explicit_cases(&[
        ("as instructed", true),
        ("Use as directed by your specialist", true),
        ("MDU", true),
        ("u.d.", true),
        ("One as directed", false),
    ]);
}

#[test]
fn directions_that_contradict_the_dose_are_flagged_naming_both() {
    let mut rx = clean();
    rx.items[0].instructions = "Take TWO capsules each morning".into();
    assert_eq!(codes(&rx, TODAY), vec![DIRECTIONS_CONTRADICT_DOSE]);
    let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
    assert!(
        f[0].message.contains("2 tablets at a time") && f[0].message.contains("the dose says 1"),
        "{}",
        f[0].message
    );
    rx.items[0].instructions = "Take ONE tablet twice daily".into();
    let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
    assert!(
        f[0].message.contains("2 time(s) a day (the dose says 1)"),
        "{}",
        f[0].message
    );
    for fine in [
        "Take ONE tablet each morning",
        "Take one in the morning",
        "Swallow whole with water",
    ] {
        rx.items[0].instructions = fine.into();
        assert!(
            codes(&rx, TODAY).is_empty(),
            "{fine}: {:?}",
            codes(&rx, TODAY)
        );
    }
}

#[test]
fn quantities_the_pharmacist_may_amend_are_flags_and_a_different_number_blocks() {
    // Figures only.
    let mut rx = clean();
    rx.items[0].quantity_in_words = None;
    rx.items[0].quantity_in_words_value = None;
    let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
    assert_eq!(
        (f[0].code.as_str(), f[0].severity),
        (CD_QUANTITY_WORDS_MISSING, Severity::Flag)
    );
    assert!(
        f[0].message.contains("\"twenty-eight\""),
        "{}",
        f[0].message
    );
    assert_eq!(intake_status(&rx, &f), Status::AwaitingOriginal);
    // Words only.
    let mut rx = clean();
    rx.items[0].quantity_figures_given = false;
    assert_eq!(codes(&rx, TODAY), vec![CD_QUANTITY_FIGURES_MISSING]);
    // A spelling slip.
    let mut rx = clean();
    rx.items[0].quantity_in_words = Some("twenty-eigth".into());
    rx.items[0].quantity_words_corrected = Some("twenty-eight".into());
    assert_eq!(codes(&rx, TODAY), vec![CD_QUANTITY_WORDS_MISSPELT]);
    // A slip that reads as another number is a mismatch: block.
    rx.items[0].quantity_in_words = Some("twenty-nien".into());
    rx.items[0].quantity_in_words_value = Some(29);
    rx.items[0].quantity_words_corrected = Some("twenty-nine".into());
    let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
    assert_eq!(
        (f[0].code.as_str(), f[0].severity),
        (CD_QUANTITY_WORDS_MISMATCH, Severity::Block)
    );
    // Non-CD items need neither.
    let mut p = pom();
    p.items[0].quantity_in_words = None;
    p.items[0].quantity_in_words_value = None;
    assert!(codes(&p, TODAY).is_empty());
}

#[test]
fn days_of_treatment_are_computed_not_trusted() {
    // Declared 28 but 60 tablets at 1 x 2 = 30 days: a mismatch, not over 30.
    let mut rx = clean();
    rx.items = vec![item("CONCERTA-XL-18", 60, 1.0, 2, 28)];
    rx.patient.date_of_birth = date(1990, 1, 1);
    assert_eq!(codes(&rx, TODAY), vec![DAYS_SUPPLY_MISMATCH]);
    let f = run_with(&rx, TODAY, &[], IdentitySignals::default());
    assert!(
        f[0].message.contains("28 days") && f[0].message.contains("30 days"),
        "{}",
        f[0].message
    );
    // 62 at 1 x 2 = 31 days, declared 28: over 30 whatever is declared, and the mismatch.
    rx.items = vec![item("CONCERTA-XL-18", 62, 1.0, 2, 28)];
    assert_eq!(
        codes(&rx, TODAY),
        vec![CD_OVER_30_DAYS, DAYS_SUPPLY_MISMATCH]
    );
    // Declared 31 for 62 at two a day: agrees; over 30 still.
    rx.items[0].declared_days_supply = Some(31);
    assert_eq!(codes(&rx, TODAY), vec![CD_OVER_30_DAYS]);
    // Half a day's difference (59 at two a day = 29.5, declared 29 or 30) is rounding.
    rx.items = vec![item("CONCERTA-XL-18", 59, 1.0, 2, 29)];
    assert!(codes(&rx, TODAY).is_empty(), "{:?}", codes(&rx, TODAY));
    rx.items[0].declared_days_supply = Some(30);
    assert!(codes(&rx, TODAY).is_empty());
    rx.items[0].declared_days_supply = Some(28);
    assert_eq!(codes(&rx, TODAY), vec![DAYS_SUPPLY_MISMATCH]);
    // Nothing declared: nothing to disagree with.
    rx.items[0].declared_days_supply = None;
    assert!(codes(&rx, TODAY).is_empty());
}

#[test]
fn pom_window_ends_the_day_before_the_same_date_six_months_on() {
    for (issued, last) in [
        (date(2026, 6, 1), date(2026, 11, 30)),
        (date(2026, 5, 31), date(2026, 11, 30)),
        (date(2026, 8, 31), date(2027, 2, 28)),
        (date(2027, 8, 31), date(2028, 2, 29)),
        (date(2028, 2, 29), date(2028, 8, 28)),
        (date(2026, 8, 30), date(2027, 2, 28)),
        (date(2026, 8, 28), date(2027, 2, 27)),
        (date(2026, 7, 15), date(2027, 1, 14)),
    ] {
        assert_eq!(pom_last_valid_day(issued), last, "{issued}");
        let mut p = pom();
        p.issued_on = issued;
        assert!(codes(&p, last).is_empty(), "{issued} on {last}");
        let after = last.tomorrow().unwrap();
        assert_eq!(codes(&p, after), vec![POM_EXPIRED], "{issued} on {after}");
    }
}

#[test]
fn repeatable_poms_without_a_number_may_be_dispensed_twice() {
    let mut p = pom();
    p.items[0].repeatable = true;
    let f = run_with(&p, TODAY, &[], IdentitySignals::default());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].code.as_str(), f[0].severity),
        (POM_REPEATS_UNSTATED, Severity::Info)
    );
    assert!(f[0].message.contains("at most 2 times"), "{}", f[0].message);
    assert_eq!(p.items[0].dispensings_allowed(), 2);
    p.items[0].repeats = 3;
    assert!(codes(&p, TODAY).is_empty());
    assert_eq!(p.items[0].dispensings_allowed(), 4);
    // A Sch2/3 item may carry neither.
    let mut rx = clean();
    rx.items[0].repeatable = true;
    assert_eq!(codes(&rx, TODAY), vec![CD_REPEAT_NOT_ALLOWED]);
}

#[test]
fn confirmed_by_source_exemptions_are_checked_against_age_too() {
    let mut rx = clean();
    rx.kind = PrescriptionType::Nhs;
    rx.authority = Authority {
        kind: AuthorityKind::Eps,
        form: None,
        serial_number: None,
        eps_prescription_id: Some("x".into()),
    };
    rx.prescriber.private_prescriber_code = None;
    for (code, dob, contradicts) in [
        ("9004", date(1966, 11, 26), false),
        ("9004", date(1986, 1, 1), true),
        ("9011", date(1986, 1, 1), false),
        ("0016", date(1986, 1, 1), false),
    ] {
        rx.nhs = Some(NhsDetails {
            exemption: ExemptionCode::parse(code).unwrap(),
            evidence_seen: true,
        });
        rx.patient.date_of_birth = dob;
        assert_eq!(
            codes(&rx, TODAY) == vec![NHS_EXEMPTION_CONTRADICTS_AGE],
            contradicts,
            "{code} {dob}: {:?}",
            codes(&rx, TODAY)
        );
    }
}

#[test]
fn equivalent_bodies_forms_only_from_the_configured_list() {
    let mut rx = clean();
    rx.authority.form = Some("FP10PCDSS".into());
    assert!(codes(&rx, TODAY).is_empty());
    rx.authority.form = Some("PPCD(R)".into());
    assert_eq!(codes(&rx, TODAY), vec![PRIVATE_CD_FORM_NOT_RECOGNISED]);
    let t = Thresholds {
        equivalent_private_cd_forms: vec!["PPCD(R)".into()],
        ..Default::default()
    };
    let f = evaluate(
        &rx,
        &Context {
            today: TODAY,
            formulary: Formulary::builtin(),
            thresholds: &t,
            history: &[],
            identity: IdentitySignals::default(),
            signature: SignatureCheck::NotRequired,
        },
    );
    assert!(
        f.iter().all(|f| f.code != PRIVATE_CD_FORM_NOT_RECOGNISED),
        "{f:?}"
    );
}

#[test]
fn signature_outcomes_become_findings() {
    let p = pom();
    for (check, code, sev) in [
        (SignatureCheck::Missing, SIGNATURE_MISSING, Severity::Block),
        (
            SignatureCheck::Invalid("bad".into()),
            SIGNATURE_INVALID,
            Severity::Block,
        ),
        (
            SignatureCheck::KeyUnknown("k9".into()),
            SIGNATURE_KEY_UNKNOWN,
            Severity::Block,
        ),
        (
            SignatureCheck::KeyRevoked {
                kid: "k1".into(),
                revoked_at: "2026-11-01T00:00:00Z".into(),
            },
            SIGNATURE_KEY_REVOKED,
            Severity::Block,
        ),
        (
            SignatureCheck::Verified {
                kid: "k1".into(),
                alg: "ES256".into(),
            },
            SIGNATURE_VERIFIED,
            Severity::Info,
        ),
    ] {
        let f = evaluate(
            &p,
            &Context {
                today: TODAY,
                formulary: Formulary::builtin(),
                thresholds: &Thresholds::default(),
                history: &[],
                identity: IdentitySignals::default(),
                signature: check.clone(),
            },
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].code.as_str(), f[0].severity),
            (code, sev),
            "{check:?}"
        );
    }
}
