//! The synthetic prescription every engine stores, and its item set in the single-table layout
//! of the DynamoDB adapter (`crates/rxbridge-store-dynamodb`: `items.rs`, `rx_items.rs`).
//!
//! Sizes, chosen to match what one intake writes today (bench/README.md, "Pages per
//! prescription"): the sealed record 2 048 random bytes (AES-GCM output does not compress;
//! the prescriptions table holds ~0.5 of a 4 KiB page per row); the stored answer of the
//! idempotency record 1 400 bytes of JSON text, which with its random client key, request hash
//! and the rest makes the ~1.6 KiB row; items 1 summary (~170 bytes of JSON), findings ~90;
//! the patient's keyed hashes 64 hex characters each, for a pool of 20 000 patients (as
//! `bench/submit.lua`), every one with an NHS number, email and phone: 2 history keys (NHS
//! number, demographics) and 6 identity-signal keys (name+DOB, family+DOB, email, phone,
//! postcode, address).
//!
//! Everything is generated from a seed: the same (seed, producer, counter) gives the same
//! prescription, so every engine is given the same data.

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// Patients the prescriptions are drawn from.
pub const PATIENTS: u64 = 20_000;
/// Clinics submitting (each with its own references).
pub const CLINICS: u64 = 8;
pub const SEALED_BYTES: usize = 2_048;
pub const ANSWER_BYTES: usize = 1_400;
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The keyed hashes of a patient (what `PatientKeys` holds: HMAC-SHA256 hex).
#[derive(Clone, Debug)]
pub struct Patient {
    pub identity: String,
    pub nhs: String,
    pub demographic: String,
    pub name_dob: String,
    pub family_dob: String,
    pub email: String,
    pub phone: String,
    pub postcode: String,
    pub address: String,
}

impl Patient {
    /// Patient `n`'s keys. A postcode is shared by 40 patients, a family name and date of
    /// birth by 5; the rest are the patient's own.
    pub fn of(n: u64) -> Self {
        let h = |tag: &str, v: u64| hex::encode(Sha256::digest(format!("{tag}:{v}")));
        Self {
            identity: h("identity", n),
            nhs: h("nhs", n),
            demographic: h("demographic", n),
            name_dob: h("name_dob", n),
            family_dob: h("family_dob", n / 5),
            email: h("email", n),
            phone: h("phone", n),
            postcode: h("postcode", n / 40),
            address: h("address", n),
        }
    }
}

/// One prescription as the store receives it.
#[derive(Clone, Debug)]
pub struct Rx {
    pub id: String,
    pub clinic_id: String,
    pub clinic_reference: String,
    pub idem_key: String,
    pub request_hash: String,
    pub answer: String,
    pub sealed: Vec<u8>,
    pub items_json: String,
    pub findings_json: String,
    pub patient: Patient,
    pub event_detail: String,
    pub created_at: String,
    pub issued_on: String,
}

/// A generator of prescriptions for one producer.
pub struct Gen {
    rng: StdRng,
}

fn hex_of(rng: &mut StdRng, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rng.fill_bytes(&mut b);
    hex::encode(b)
}

impl Gen {
    /// `seed` separates data sets (the preload from a measured run); `producer` the streams.
    pub fn new(seed: u64, producer: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed.wrapping_mul(1_000_003) ^ producer),
        }
    }

    pub fn next_rx(&mut self) -> Rx {
        let r = &mut self.rng;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // Time-ordered like a UUIDv7 (`rx_` + 32 hex digits): millisecond time, then random.
        let id = format!("rx_{:012x}{:020x}", now.as_millis(), r.r#gen::<u64>());
        let clinic = r.gen_range(0..CLINICS);
        let clinic_id = format!("cl_{:016x}", clinic.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // The clinic's own reference: in no order of ours.
        let clinic_reference = format!("REF-{}", &hex_of(r, 6));
        let idem_key = {
            let h = hex_of(r, 16);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        };
        let request_hash = hex_of(r, 32);
        let mut sealed = vec![0u8; SEALED_BYTES];
        r.fill_bytes(&mut sealed);
        let secs = now.as_secs() % 86_400;
        let created_at = format!(
            "2026-12-01T{:02}:{:02}:{:02}.{:09}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            now.subsec_nanos()
        );
        let product = [
            "CONCERTA-XL-36",
            "ELVANSE-ADULT-30",
            "MEDIKINET-XL-20",
            "STRATTERA-40",
        ][r.gen_range(0..4)];
        let items_json = format!(
            r#"[{{"product_code":"{product}","active_ingredient":"methylphenidate hydrochloride","quantity":28,"days_supply":28}}]"#
        );
        let findings_json =
            r#"[{"code":"controlled_drug_schedule_2","severity":"info"}]"#.to_string();
        let answer = answer_body(r, &id, &clinic_reference, &created_at, &items_json);
        let event_detail = format!(
            r#"{{"clinic_reference":"{clinic_reference}","findings":["info:controlled_drug_schedule_2"],"status":"received"}}"#
        );
        let patient = Patient::of(r.gen_range(0..PATIENTS));
        Rx {
            id,
            clinic_id,
            clinic_reference,
            idem_key,
            request_hash,
            answer,
            sealed,
            items_json,
            findings_json,
            patient,
            event_detail,
            created_at,
            issued_on: "2026-12-01".into(),
        }
    }
}

/// A JSON answer (the `PrescriptionView` stored for replays) padded to `ANSWER_BYTES`.
fn answer_body(r: &mut StdRng, id: &str, reference: &str, at: &str, items: &str) -> String {
    let mut s = format!(
        r#"{{"id":"{id}","clinic_reference":"{reference}","type":"private","status":"received","version":1,"issued_on":"2026-12-01","created_at":"{at}","updated_at":"{at}","items":{items},"findings":[{{"code":"controlled_drug_schedule_2","severity":"info","message":"Schedule 2 controlled drug: the prescription is valid for 28 days from the appropriate date and a pharmacist must check the prescriber's registration."}}],"links":{{"self":"/v1/prescriptions/{id}","events":"/v1/prescriptions/{id}/events"}},"#
    );
    s.push_str(r#""trace":""#);
    while s.len() + 2 < ANSWER_BYTES {
        s.push_str(&hex_of(r, 8));
    }
    s.truncate(ANSWER_BYTES - 2);
    s.push_str("\"}");
    s
}

/// The hash-chain link of an event (the same construction as `rxbridge_app::events::chain_hash`).
pub fn chain_hash(prev: &str, seq: i64, rx: &Rx) -> String {
    let mut h = Sha256::new();
    let seq = seq.to_string();
    let actor = format!("clinic:{}", rx.clinic_id);
    for part in [
        prev.as_bytes(),
        seq.as_bytes(),
        rx.created_at.as_bytes(),
        b"prescription.received".as_slice(),
        actor.as_bytes(),
        rx.id.as_bytes(),
        rx.event_detail.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// The head of the event chain a writer carries from write to write.
#[derive(Clone, Debug)]
pub struct Chain {
    pub seq: i64,
    pub hash: String,
}

impl Default for Chain {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_string(),
        }
    }
}

/// One item of the single-table layout: partition key, sort key, attributes.
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub value: Vec<u8>,
}

impl Item {
    /// `pk`, a 0 byte, `sk`: one ordered byte key (keys never contain a 0 byte).
    pub fn key(&self) -> Vec<u8> {
        key(&self.pk, &self.sk)
    }
}

pub fn key(pk: &str, sk: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(pk.len() + 1 + sk.len());
    k.extend_from_slice(pk.as_bytes());
    k.push(0);
    k.extend_from_slice(sk.as_bytes());
    k
}

/// Attributes as (name length, name, value length, value) records.
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(mut self, name: &str, v: impl AsRef<[u8]>) -> Self {
        let v = v.as_ref();
        self.0.push(name.len() as u8);
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
}

/// Zero-padded so that string order is numeric order (`items::pad`).
pub fn pad(v: i64) -> String {
    format!("{:020}", v.max(0))
}

pub fn idem_pk(rx: &Rx) -> String {
    format!("IDEM#{}#live#{}", rx.clinic_id, rx.idem_key)
}

pub fn rx_pk(rx: &Rx) -> String {
    format!("RX#{}", rx.id)
}

fn pat_pk(tag: &str, v: &str) -> String {
    format!("PAT#live#{tag}:{v}")
}

/// Every item one intake writes, in the DynamoDB adapter's layout, with the adapter's global
/// secondary indexes written as items of their own (an ordered key-value engine has none):
/// the idempotency item; the prescription (with its hist list and patient keys); its clinic,
/// worklist and reference index entries; the event, its subject index entry and the chain
/// head; one patient item per history key (2) and identity signal (6); the three distinct-value
/// items (address → identity, NHS number ↔ name+DOB). 19 items; `seq` is the event's number.
pub fn items(rx: &Rx, seq: i64, prev_hash: &str, hash: &str) -> Vec<Item> {
    let p = &rx.patient;
    let (s, sq) = (pad(seq), seq.to_string());
    let it = |pk: String, sk: String, a: Attrs| Item { pk, sk, value: a.0 };
    let hist = [pat_pk("n", &p.nhs), pat_pk("d", &p.demographic)];
    let patient_json = format!(
        r#"{{"identity":"{}","nhs":"{}","demographic":"{}","name_dob":"{}","family_dob":"{}","email":"{}","phone":"{}","postcode":"{}","address":"{}"}}"#,
        p.identity,
        p.nhs,
        p.demographic,
        p.name_dob,
        p.family_dob,
        p.email,
        p.phone,
        p.postcode,
        p.address
    );
    let mut out = vec![
        it(
            idem_pk(rx),
            "IDEM".into(),
            Attrs::default()
                .put("clinic_id", &rx.clinic_id)
                .put("mode", "live")
                .put("key", &rx.idem_key)
                .put("request_hash", &rx.request_hash)
                .put("response_status", "201")
                .put("response_body", &rx.answer)
                .put("created_at", &rx.created_at),
        ),
        it(
            rx_pk(rx),
            "RX".into(),
            Attrs::default()
                .put("seq", &sq)
                .put("id", &rx.id)
                .put("clinic_id", &rx.clinic_id)
                .put("mode", "live")
                .put("clinic_reference", &rx.clinic_reference)
                .put("kind", "private")
                .put("status", "received")
                .put("version", "1")
                .put("issued_on", &rx.issued_on)
                .put("created_at", &rx.created_at)
                .put("updated_at", &rx.created_at)
                .put("items", &rx.items_json)
                .put("findings", &rx.findings_json)
                .put("sealed", &rx.sealed)
                .put("event_seq", &sq)
                .put("hist", hist.join("\n"))
                .put("patient", &patient_json),
        ),
        it(
            format!("CLIN#{}#live", rx.clinic_id),
            s.clone(),
            Attrs::default().put("rx", &rx.id),
        ),
        it(
            "WORK#live#received".into(),
            s.clone(),
            Attrs::default().put("rx", &rx.id),
        ),
        it(
            format!("REF#live#{}", rx.clinic_reference),
            s.clone(),
            Attrs::default().put("rx", &rx.id),
        ),
        it(
            "EVT".into(),
            s.clone(),
            Attrs::default()
                .put("seq", &sq)
                .put("at", &rx.created_at)
                .put("kind", "prescription.received")
                .put("actor", format!("clinic:{}", rx.clinic_id))
                .put("subject", &rx.id)
                .put("detail", &rx.event_detail)
                .put("prev_hash", prev_hash)
                .put("hash", hash),
        ),
        it(format!("SUBJ#{}", rx.id), s.clone(), Attrs::default()),
        it(
            "CHAIN".into(),
            "HEAD".into(),
            Attrs::default().put("seq", &sq).put("hash", hash),
        ),
    ];
    let lookups = [
        hist[0].clone(),
        hist[1].clone(),
        pat_pk("nd", &p.name_dob),
        pat_pk("f", &p.family_dob),
        pat_pk("e", &p.email),
        pat_pk("ph", &p.phone),
        pat_pk("p", &p.postcode),
        pat_pk("a", &p.address),
    ];
    for pk in lookups {
        out.push(it(
            pk,
            format!("{s}#{}", rx.id),
            Attrs::default()
                .put("rx", &rx.id)
                .put("seq", &sq)
                .put("clinic_id", &rx.clinic_id)
                .put("identity", &p.identity)
                .put("name_dob", &p.name_dob)
                .put("has_nhs", "1")
                .put("status", "received")
                .put("issued_on", &rx.issued_on)
                .put("items", &rx.items_json)
                .put("nhs", &p.nhs),
        ));
    }
    out.push(it(
        pat_pk("ai", &p.address),
        p.identity.clone(),
        Attrs::default(),
    ));
    out.push(it(
        pat_pk("nn", &p.nhs),
        p.name_dob.clone(),
        Attrs::default(),
    ));
    out.push(it(
        pat_pk("dn", &p.name_dob),
        p.nhs.clone(),
        Attrs::default(),
    ));
    out
}
