//! The request shapes as OpenAPI schemas, with the examples the documentation shows. Optional
//! fields may be omitted or null (both mean absent). Parsing
//! is done by `contract::parse_prescription` (which collects every error); a test checks that
//! these schemas and the examples agree with it.

#![allow(dead_code)] // the fields exist for the schema and for the agreement test

use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressIn {
    /// 1 to 4 lines.
    pub lines: Vec<String>,
    pub town: String,
    /// A UK postcode when `country` is GB.
    pub postcode: String,
    /// ISO 3166-1 alpha-2; `GB` when omitted. Patient addresses must be in the UK.
    pub country: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationIn {
    #[schema(example = "gmc")]
    pub body: RegistrationBody,
    /// GMC: 7 digits (or L + 6); NMC: NNANNNNA; GPhC: 7 digits starting 2; HCPC: 2 letters + up to 6 digits; GDC: up to 6 digits; GOC: 01- and up to 6 digits.
    #[schema(example = "7012345")]
    pub number: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationBody {
    Gmc,
    Nmc,
    Gphc,
    Hcpc,
    Gdc,
    Goc,
}

/// The kind of prescriber who signed. It must be one the registration body registers (gmc:
/// doctor; nmc: nurse_independent or supplementary; gphc: pharmacist_independent or
/// supplementary; hcpc: an HCPC profession or supplementary; gdc: dentist; goc:
/// optometrist_independent or supplementary). Omitted: a doctor for gmc, unknown otherwise (a
/// controlled-drug item is then flagged).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrescriberKindIn {
    Doctor,
    NurseIndependent,
    PharmacistIndependent,
    Supplementary,
    PhysiotherapistIndependent,
    PodiatristIndependent,
    ParamedicIndependent,
    TherapeuticRadiographerIndependent,
    OptometristIndependent,
    Dentist,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriberIn {
    pub given_name: String,
    pub family_name: String,
    pub registration: RegistrationIn,
    pub kind: Option<PrescriberKindIn>,
    /// 6 digits; required by law on a private Schedule 2/3 prescription.
    pub private_prescriber_code: Option<String>,
    pub address: AddressIn,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientIn {
    /// 10 digits with a Modulus 11 check digit; required on NHS prescriptions.
    pub nhs_number: Option<String>,
    pub given_name: String,
    pub family_name: String,
    #[schema(format = Date)]
    pub date_of_birth: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: AddressIn,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityKindIn {
    PaperFp10pcd,
    PaperFp10,
    Eps,
    ElectronicPrivate,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorityIn {
    pub kind: AuthorityKindIn,
    /// paper_fp10pcd only: the form, when it is not England's FP10PCD (an equivalent body's
    /// private CD form, accepted only when configured).
    #[schema(example = "FP10PCD")]
    pub form: Option<String>,
    /// The paper form's serial number (paper authorities only).
    pub serial_number: Option<String>,
    /// EPS short-form prescription id (eps only).
    pub eps_prescription_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoseIn {
    /// Dosage units per administration, in steps of 0.25.
    #[schema(minimum = 0.25, maximum = 20)]
    pub units: f64,
    #[schema(minimum = 1, maximum = 12)]
    pub times_per_day: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// A code from `GET /v1/formulary`.
    pub product_code: String,
    /// The total quantity in figures. May be omitted when `quantity_in_words` states it (the
    /// pharmacist may add the figures, MDR 2001 reg 16(1A)); one of the two is required.
    #[schema(minimum = 1, maximum = 9999)]
    pub quantity: Option<u32>,
    /// The same number in English words, optionally with the dosage unit ("twenty-eight
    /// capsules"); required by law for Schedule 2/3 items (figures only is a flag the
    /// pharmacist may amend).
    pub quantity_in_words: Option<String>,
    pub dose: DoseIn,
    pub instructions: String,
    /// Days of treatment as the clinic states them. The rules compute quantity ÷ (units ×
    /// times a day) whatever is declared, and flag a declared value that disagrees.
    #[schema(minimum = 1, maximum = 366)]
    pub days_supply: Option<u32>,
    /// How many times the item may be dispensed again after the first supply; Schedule 2/3
    /// items may not be repeated.
    #[schema(minimum = 0, maximum = 12)]
    pub repeats: Option<u32>,
    /// Marked repeatable; without `repeats`, at most two dispensings in all (HMR 2012 reg
    /// 217(6)). Not allowed on Schedule 2/3 items.
    pub repeatable: Option<bool>,
}

/// The prescriber's advanced electronic signature (required of `electronic_private`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureIn {
    /// A compact JWS with a detached payload (`header..signature`, RFC 7515 appendix F). The
    /// signed payload is the RFC 8785 canonical JSON of the whole submission as sent, without
    /// its `signature` member. The protected header names `alg` (ES256, ES384, RS256 or PS256)
    /// and `kid`, a key registered for this clinic and prescriber.
    #[schema(example = "eyJhbGciOiJFUzI1NiIsImtpZCI6InByZXNjcmliZXIta2V5LTEifQ..MEUCIQ")]
    pub jws: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NhsIn {
    /// NHS charge exemption code, `0001` = paid; 0002-0016, or the 9003-9016 code the real-time
    /// exemption checking service returned. Judged on the dispensing date.
    #[schema(example = "0001")]
    pub exemption: String,
    pub evidence_seen: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrescriptionTypeIn {
    Private,
    Nhs,
}

/// A prescription as a clinic submits it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!(example_submission()))]
pub struct PrescriptionIn {
    pub clinic_reference: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: PrescriptionTypeIn,
    /// The appropriate date (signing date, or a later start date).
    #[schema(format = Date)]
    pub issued_on: String,
    pub authority: AuthorityIn,
    pub prescriber: PrescriberIn,
    pub patient: PatientIn,
    #[schema(min_items = 1, max_items = 4)]
    pub items: Vec<ItemIn>,
    /// Required for `nhs`, forbidden for `private`.
    pub nhs: Option<NhsIn>,
    pub signature: Option<SignatureIn>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryResponseIn {
    /// The prescriber's answer to the pharmacist's query (1 to 2000 characters).
    #[schema(example = "Dose confirmed: 54 mg each morning, reviewed at clinic on 18 November.")]
    pub answer: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelIn {
    /// Why the prescription is cancelled (1 to 500 characters).
    #[schema(example = "Patient no longer needs the medicine")]
    pub reason: String,
}

/// The example the documentation shows: a valid private Concerta XL prescription. `issued_on`
/// is filled with a recent date so the example stays within the 28-day window.
pub fn example_submission_on(issued_on: &str) -> serde_json::Value {
    serde_json::json!({
        "clinic_reference": "ADHD-2026-000123",
        "type": "private",
        "issued_on": issued_on,
        "authority": { "kind": "paper_fp10pcd", "serial_number": "PCD1234567" },
        "prescriber": {
            "given_name": "Priya", "family_name": "Shah",
            "registration": { "body": "gmc", "number": "7012345" },
            "private_prescriber_code": "123456",
            "address": { "lines": ["1 Harley Street"], "town": "London", "postcode": "W1G 9QD" }
        },
        "patient": {
            "nhs_number": "9434765919",
            "given_name": "Sam", "family_name": "Taylor",
            "date_of_birth": "1998-02-14",
            "email": "sam.taylor@example.com", "phone": "07700900123",
            "address": { "lines": ["Flat 2", "10 High Street"], "town": "Manchester", "postcode": "M1 1AE" }
        },
        "items": [{
            "product_code": "CONCERTA-XL-36",
            "quantity": 28,
            "quantity_in_words": "twenty-eight",
            "dose": { "units": 1, "times_per_day": 1 },
            "instructions": "Take ONE tablet each morning",
            "days_supply": 28
        }]
    })
}

pub fn example_submission() -> serde_json::Value {
    example_submission_on("2026-11-20")
}

/// A submission with three contract errors, and the 422 it gets.
pub fn example_invalid_submission() -> serde_json::Value {
    let mut v = example_submission();
    v["patient"]["nhs_number"] = "9434765918".into();
    v["patient"]["address"]["postcode"] = "NOT A POSTCODE".into();
    v["items"][0]["colour"] = "blue".into();
    v
}

pub fn example_validation_problem() -> serde_json::Value {
    serde_json::json!({
        "type": "urn:rxbridge:problem:validation_failed",
        "title": "The request breaks the contract",
        "status": 422,
        "code": "validation_failed",
        "detail": "3 problems found; each is listed in `errors`.",
        "errors": [
            { "pointer": "/patient/nhs_number", "code": "invalid_nhs_number", "detail": "fails the Modulus 11 check digit" },
            { "pointer": "/patient/address/postcode", "code": "invalid_postcode", "detail": "is not a valid UK postcode (e.g. M1 1AE)" },
            { "pointer": "/items/0/colour", "code": "unknown_field", "detail": "unknown field; expected one of: product_code, quantity, quantity_in_words, dose, instructions, days_supply, repeats, repeatable" }
        ]
    })
}
