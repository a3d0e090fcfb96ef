//! Item layouts of the store ports on DynamoDB: clinics, API keys, idempotency records,
//! patient lookups and payments (their keys, attributes and parsing).

use crate::items::{self, Get, Item, n, ns_key, pad, s};
use crate::unexpected;
use aws_sdk_dynamodb::types::AttributeValue;
use rxbridge_app::payments::{PaymentRecord, PaymentStatus};
use rxbridge_app::ports::*;
use rxbridge_domain::lifecycle::Status;

/// Whether the payment sweep must look at this payment.
pub(crate) fn needs_attention(p: PaymentStatus, rx: Status) -> bool {
    match p {
        PaymentStatus::AwaitingPayment | PaymentStatus::RefundPending => true,
        PaymentStatus::Paid => rx.ended_unsupplied(),
        _ => false,
    }
}

pub(crate) fn pat_pk(mode: Mode, tag: &str, value: &str) -> String {
    format!("PAT#{}#{tag}:{value}", mode.as_str())
}

pub(crate) fn pat_sk(seq: i64, id: &str) -> String {
    format!("{}#{id}", pad(seq))
}

pub(crate) fn idem_pk(clinic: &str, mode: Mode, key: &str) -> String {
    format!("IDEM#{clinic}#{}#{key}", mode.as_str())
}

pub(crate) fn pay_pk(id: &str) -> String {
    format!("PAY#{id}")
}

/// One lookup item per keyed hash of the patient; the first one or two (NHS, demographic) are
/// the history items whose status follows the prescription.
pub(crate) fn patient_items(
    r: &PrescriptionRecord,
    seq: i64,
    p: &PatientKeys,
) -> (Vec<Item>, Vec<String>) {
    let items_json = serde_json::to_string(&r.items).unwrap_or_default();
    let mut lookups: Vec<(&str, &str)> = Vec::new();
    if let Some(nhs) = &p.nhs {
        lookups.push(("n", nhs));
    }
    lookups.push(("d", &p.demographic));
    if p.nhs.is_none() {
        // Records without an NHS number also under their own demographic partition: the
        // history of a patient who has one reads these, never the (possibly huge) partition of
        // everyone sharing the demographics under other NHS numbers.
        lookups.push(("d0", &p.demographic));
    }
    let hist = lookups.len();
    lookups.push(("nd", &p.name_dob));
    lookups.push(("f", &p.family_dob));
    if let Some(e) = &p.email {
        lookups.push(("e", e));
    }
    if let Some(ph) = &p.phone {
        lookups.push(("ph", ph));
    }
    lookups.push(("p", &p.postcode));
    lookups.push(("a", &p.address));
    let mut hist_pks = Vec::new();
    let mut out = Vec::new();
    for (i, (tag, value)) in lookups.into_iter().enumerate() {
        let pk = pat_pk(r.mode, tag, value);
        if i < hist {
            hist_pks.push(pk.clone());
        }
        let mut attrs = vec![
            ("rx", s(&r.id)),
            ("seq", n(seq)),
            ("clinic_id", s(&r.clinic_id)),
            ("identity", s(p.identity())),
            ("name_dob", s(&p.name_dob)),
            ("has_nhs", AttributeValue::Bool(p.nhs.is_some())),
            ("status", s(r.status.as_str())),
            ("issued_on", s(r.issued_on.to_string())),
            ("items", s(&items_json)),
        ];
        if let Some(nhs) = &p.nhs {
            attrs.push(("nhs", s(nhs)));
        }
        out.push(items::item(pk, pat_sk(seq, &r.id), attrs));
    }
    // One item per distinct value (the sort key is the value, rewritten by every record that
    // has it): the identity checks read at most a fixed number of them, however many records
    // share the address, the NHS number or the name and date of birth.
    out.push(items::item(
        pat_pk(r.mode, "ai", &p.address),
        p.identity(),
        vec![],
    ));
    if let Some(nhs) = &p.nhs {
        out.push(items::item(
            pat_pk(r.mode, "nn", nhs),
            p.name_dob.as_str(),
            vec![],
        ));
        out.push(items::item(
            pat_pk(r.mode, "dn", &p.name_dob),
            nhs.as_str(),
            vec![],
        ));
    }
    (out, hist_pks)
}

pub(crate) fn payment_item(p: &PaymentRecord, rx_status: Status) -> Result<Item, StoreError> {
    let charge = p.charge_date();
    let mut attrs = vec![
        ("doc", s(serde_json::to_string(p).map_err(unexpected)?)),
        ("version", n(p.version)),
        ("status", s(p.status.as_str())),
        ("prescription_id", s(&p.prescription_id)),
        ("mode", s(p.mode.as_str())),
        ("charge_date", s(charge.to_string())),
        (
            "gsi3pk",
            s(format!(
                "PAYMONTH#{}#{:04}-{:02}",
                p.mode.as_str(),
                charge.year(),
                charge.month()
            )),
        ),
        (
            "gsi3sk",
            s(format!("{charge}#{}#{}", ns_key(p.created_at), p.id)),
        ),
    ];
    if needs_attention(p.status, rx_status) {
        attrs.push(("gsi2pk", s("PAYATTN")));
        attrs.push(("gsi2sk", s(attention_sk(p))));
    }
    Ok(items::item(pay_pk(&p.id), "PAY", attrs))
}

pub(crate) fn attention_sk(p: &PaymentRecord) -> String {
    format!("{}#{}", ns_key(p.created_at), p.id)
}

pub(crate) fn parse_payment(i: &Item) -> Result<PaymentRecord, StoreError> {
    Get(i).json("doc")
}

pub(crate) fn key_item(k: &ApiKeyRecord) -> Item {
    items::item(
        format!("KEY#{}", k.key_hash),
        "KEY",
        vec![
            ("prefix", s(&k.prefix)),
            ("clinic_id", s(&k.clinic_id)),
            ("mode", s(k.mode.as_str())),
            ("created_at", s(k.created_at.to_string())),
        ],
    )
}

pub(crate) fn idem_item(i: &IdempotencyRecord) -> Item {
    items::item(
        idem_pk(&i.clinic_id, i.mode, &i.key),
        "IDEM",
        vec![
            ("clinic_id", s(&i.clinic_id)),
            ("mode", s(i.mode.as_str())),
            ("key", s(&i.key)),
            ("request_hash", s(&i.request_hash)),
            ("response_status", n(i64::from(i.response_status))),
            ("response_body", s(&i.response_body)),
            ("created_at", s(i.created_at.to_string())),
        ],
    )
}

pub(crate) fn seen_item(source: &str, id: &str, at: jiff::Timestamp) -> Item {
    items::item(
        format!("SEEN#{source}#{id}"),
        "SEEN",
        vec![
            ("source", s(source)),
            ("id", s(id)),
            ("at", s(at.to_string())),
        ],
    )
}

pub(crate) fn clinic_item(clinic: &Clinic) -> Item {
    items::item(
        format!("CLINIC#{}", clinic.id),
        "CLINIC",
        vec![
            ("gsi1pk", s("CLINICS")),
            (
                "gsi1sk",
                s(format!("{}#{}", ns_key(clinic.created_at), clinic.id)),
            ),
            ("id", s(&clinic.id)),
            ("name", s(&clinic.name)),
            ("created_at", s(clinic.created_at.to_string())),
        ],
    )
}

pub(crate) fn parse_clinic(i: &Item) -> Result<Clinic, StoreError> {
    let g = Get(i);
    Ok(Clinic {
        id: g.s("id")?,
        name: g.s("name")?,
        created_at: g.ts("created_at")?,
    })
}
