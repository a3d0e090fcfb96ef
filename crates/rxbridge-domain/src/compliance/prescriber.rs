//! Who signed: whether the prescriber's kind may prescribe the controlled drugs on the
//! prescription (MDR 2001 reg 2, SI 2012/973, HCPC controlled-drug lists, HMR 2012 regs
//! 214-215), and the outcome of the advanced electronic signature check (HMR 2012 reg 219).

use super::*;
use crate::formulary::Schedule;
use crate::ids::PrescriberKind;

pub(super) fn check(rx: &Prescription, facts: &Facts<'_>, out: &mut Vec<Finding>) {
    let kind = rx.prescriber.kind();
    let is_cd = |p: &Option<&Product>| p.is_some_and(|p| p.schedule != Schedule::Pom);
    if let Some(k) = kind
        && !k.may_prescribe_adhd_cd()
    {
        for (i, p) in facts.products.iter().enumerate() {
            if let Some(p) = p.filter(|_| is_cd(p)) {
                out.push(finding(
                    PRESCRIBER_NOT_AUTHORISED_FOR_CD,
                    Some(i),
                    format!(
                        "{} ({} {}) may not prescribe {} ({}): {}.",
                        capitalise(k.describe()),
                        rx.prescriber.registration.body().to_uppercase(),
                        rx.prescriber.registration.number(),
                        p.name,
                        p.schedule.as_str(),
                        why_not(k)
                    ),
                ));
            }
        }
    }
    if kind.is_none() && facts.products.iter().any(is_cd) {
        out.push(finding(
            CD_PRESCRIBER_KIND_UNKNOWN,
            None,
            format!(
                "The prescriber is registered with the {} but prescriber.kind is not given, so whether they may prescribe a controlled drug is not known; confirm the prescriber's type.",
                rx.prescriber.registration.body().to_uppercase()
            ),
        ));
    }
    if kind == Some(PrescriberKind::Supplementary) {
        out.push(finding(
            SUPPLEMENTARY_PRESCRIBER,
            None,
            format!(
                "A supplementary prescriber may prescribe these {} item(s) only within a clinical management plan agreed with a doctor; confirm the plan covers them.",
                rx.items.len()
            ),
        ));
    }
}

fn why_not(k: PrescriberKind) -> &'static str {
    match k {
        PrescriberKind::PhysiotherapistIndependent
        | PrescriberKind::PodiatristIndependent
        | PrescriberKind::ParamedicIndependent
        | PrescriberKind::TherapeuticRadiographerIndependent => {
            "no ADHD stimulant is on the controlled drugs an HCPC independent prescriber may prescribe"
        }
        PrescriberKind::OptometristIndependent => {
            "an optometrist independent prescriber may prescribe no controlled drug"
        }
        PrescriberKind::Dentist => {
            "a dentist may prescribe controlled drugs for dental treatment only"
        }
        _ => "not within their prescribing rights",
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub(super) fn signature(rx: &Prescription, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let f = match &ctx.signature {
        SignatureCheck::NotRequired => return,
        SignatureCheck::Verified { kid, alg } => finding(
            SIGNATURE_VERIFIED,
            None,
            format!(
                "Signed by the prescriber with key {kid} ({alg}); the signature verifies over the submission as received."
            ),
        ),
        SignatureCheck::Missing => finding(
            SIGNATURE_MISSING,
            None,
            format!(
                "An {} prescription must carry the prescriber's advanced electronic signature (signature.jws); none was sent.",
                rx.authority.kind.as_str()
            ),
        ),
        SignatureCheck::Invalid(why) => finding(
            SIGNATURE_INVALID,
            None,
            format!("The prescriber's signature does not verify: {why}."),
        ),
        SignatureCheck::KeyUnknown(kid) => finding(
            SIGNATURE_KEY_UNKNOWN,
            None,
            format!(
                "The signature names key \"{kid}\", which is not registered for this clinic and prescriber {}.",
                rx.prescriber.registration.key()
            ),
        ),
        SignatureCheck::KeyRevoked { kid, revoked_at } => finding(
            SIGNATURE_KEY_REVOKED,
            None,
            format!(
                "The signing key \"{kid}\" was revoked at {revoked_at}, before this prescription was received."
            ),
        ),
    };
    out.push(f);
}
