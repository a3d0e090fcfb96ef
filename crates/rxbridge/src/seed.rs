//! `rxbridge dev seed`: fill a data directory with realistic prescriptions quickly, through the
//! real store port (so group commit batches them), for benchmarks and scale tests.

use crate::App;
use jiff::civil::Date;
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::{
    IdempotencyRecord, InsertOutcome, ItemSummary, Mode, NewPrescription, PrescriptionRecord,
};
use rxbridge_domain::contact::Address;
use rxbridge_domain::ids::{
    ClinicReference, GmcNumber, NhsNumber, PrivatePrescriberCode, Registration, nhs_check_digit,
};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::*;
use rxbridge_domain::quantity::{Quantity, to_words};

const GIVEN: [&str; 8] = [
    "Sam", "Alex", "Priya", "Tom", "Aisha", "Ben", "Chloe", "Dev",
];
const FAMILY: [&str; 8] = [
    "Taylor", "Smith", "Khan", "Jones", "Patel", "Brown", "Evans", "Wilson",
];
const PRODUCTS: [(&str, &str); 4] = [
    ("CONCERTA-XL-36", "methylphenidate"),
    ("ELVANSE-ADULT-30", "lisdexamfetamine"),
    ("STRATTERA-40", "atomoxetine"),
    ("MEDIKINET-XL-20", "methylphenidate"),
];

/// A valid NHS number for patient `n` (skipping the numbers Modulus 11 never issues).
pub fn nhs_for(n: u64) -> NhsNumber {
    let mut k = n;
    loop {
        let s = format!("{:09}", 100_000_000 + (k % 800_000_000));
        let d: Vec<u32> = s.chars().map(|c| c.to_digit(10).unwrap_or(0)).collect();
        if let Some(c) = nhs_check_digit(&d) {
            return NhsNumber::parse(&format!("{s}{c}")).expect("valid by construction");
        }
        k += 1_000_003;
    }
}

/// A prescription for synthetic patient `patient`, issued on `issued_on`.
pub fn synthetic(patient: u64, product: usize, issued_on: Date) -> Prescription {
    let (code, _) = PRODUCTS[product % PRODUCTS.len()];
    let addr = |line: String, pc: &str| Address {
        lines: vec![line],
        town: "Manchester".into(),
        postcode: pc.into(),
        country: "GB".into(),
    };
    Prescription {
        clinic_reference: ClinicReference::parse(&format!("SEED-{patient}-{product}"))
            .expect("valid"),
        kind: PrescriptionType::Private,
        issued_on,
        authority: Authority {
            kind: AuthorityKind::PaperFp10pcd,
            form: None,
            serial_number: Some(format!("PCD{patient:07}")),
            eps_prescription_id: None,
        },
        prescriber: Prescriber {
            given_name: "Priya".into(),
            family_name: "Shah".into(),
            registration: Registration::Gmc(GmcNumber::parse("7012345").expect("valid")),
            kind: None,
            private_prescriber_code: Some(PrivatePrescriberCode::parse("123456").expect("valid")),
            address: addr("1 Harley Street".into(), "W1G 9QD"),
        },
        patient: Patient {
            nhs_number: Some(nhs_for(patient)),
            given_name: GIVEN[(patient % 8) as usize].into(),
            family_name: FAMILY[((patient / 8) % 8) as usize].into(),
            date_of_birth: jiff::civil::date(
                1970 + (patient % 35) as i16,
                1 + (patient % 12) as i8,
                1 + (patient % 28) as i8,
            ),
            email: None,
            phone: None,
            address: addr(format!("{} High Street", patient % 10_000 + 1), "M1 1AE"),
        },
        items: vec![Item {
            product_code: code.into(),
            quantity: Quantity::new(28).expect("valid"),
            quantity_figures_given: true,
            quantity_in_words: Some(to_words(28)),
            quantity_in_words_value: Some(28),
            quantity_words_corrected: None,
            dose: Dose {
                units: 1.0,
                times_per_day: 1,
            },
            instructions: "Take ONE each morning".into(),
            days_supply: 28,
            declared_days_supply: Some(28),
            repeats: 0,
            repeatable: false,
        }],
        nhs: None,
        signature: None,
    }
}

/// Insert `count` prescriptions for `clinic_id` in `mode`: patients cycle through `patients`
/// identities; `hot_patient_history` more go to patient 0 (a long history). Returns how many
/// were inserted.
pub async fn seed(
    app: &App,
    clinic_id: &str,
    mode: Mode,
    count: u64,
    patients: u64,
    hot_patient_history: u64,
) -> anyhow::Result<u64> {
    let intake = app.state.intake.clone();
    let store = app.state.store.clone();
    let total = count + hot_patient_history;
    let today = rxbridge_domain::dates::london_date(jiff::Timestamp::now());
    let mut inserted = 0u64;
    let mut i = 0u64;
    while i < total {
        // Twice the bulk-load batch in flight, so the writer always has a full batch queued.
        let chunk_end = (i + 8192).min(total);
        let mut tasks = Vec::with_capacity((chunk_end - i) as usize);
        for n in i..chunk_end {
            let patient = if n < hot_patient_history {
                0
            } else {
                1 + n % patients.max(1)
            };
            // Spread issue dates over the past three years, monthly per patient.
            let issued = today.saturating_sub(
                jiff::Span::new().days(((n / patients.max(1)) % 36 * 30 + 60) as i64),
            );
            let rx = synthetic(patient, (n % 4) as usize, issued);
            let keys = intake.patient_keys(&rx.patient);
            let id = format!("rx_seed{n:012}");
            let now = jiff::Timestamp::now();
            let record = PrescriptionRecord {
                sealed: intake.seal(&id, &rx)?,
                id: id.clone(),
                clinic_id: clinic_id.to_string(),
                mode,
                clinic_reference: rx.clinic_reference.as_str().into(),
                kind: rx.kind,
                status: Status::Delivered,
                version: 1,
                issued_on: rx.issued_on,
                created_at: now,
                updated_at: now,
                findings: vec![],
                items: vec![ItemSummary {
                    product_code: rx.items[0].product_code.clone(),
                    active_ingredient: PRODUCTS[(n % 4) as usize].1.into(),
                    quantity: 28,
                    days_supply: 28,
                }],
                event_seq: 0,
                nhs_exemption: None,
            };
            let new = NewPrescription {
                idempotency: IdempotencyRecord {
                    clinic_id: clinic_id.into(),
                    mode,
                    key: format!("seed-{n}"),
                    request_hash: String::new(),
                    response_status: 201,
                    response_body: String::new(),
                    created_at: now,
                },
                event: NewEvent {
                    at: now,
                    kind: "prescription.seeded".into(),
                    actor: "cli".into(),
                    subject: id,
                    detail: serde_json::json!({}),
                },
                patient: keys,
                record,
            };
            let s = store.clone();
            tasks.push(tokio::spawn(
                async move { s.insert_prescription(new).await },
            ));
        }
        for t in tasks {
            if matches!(t.await??, InsertOutcome::Inserted) {
                inserted += 1;
            }
        }
        i = chunk_end;
    }
    Ok(inserted)
}
