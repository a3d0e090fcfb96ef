//! Patient data at rest: after a whole submit → approve → pay → release → dispatch run, no
//! file under the data directory (database, WAL, shared memory, key file, documents) holds any
//! of the patient's details in the clear, and every file is readable by its owner only.
//!
//! One documented exception: with the `files` mail transport (the default, for development)
//! the `.eml` files under `mail/` are the outgoing emails themselves and hold the patient's
//! email address and name; they are left out of the search (their modes are still checked).

use crate::money::fulfilment::{INBOUND, warehouse_receiver, wh_event};
use crate::money::harness::*;
use reqwest::StatusCode;
use rxbridge_app::payments::PaymentStatus;
use rxbridge_app::ports::Mode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A patient whose every detail is long and unusual enough that a chance match in random
/// ciphertext is out of the question.
fn patient() -> Value {
    json!({
        "nhs_number": "4857773457",
        "given_name": "Perpetua", "family_name": "Quillfeather",
        "date_of_birth": "1987-06-05",
        "email": "perpetua.quillfeather@example.org", "phone": "07700900987",
        "address": { "lines": ["Flat 9 Zephyrine Court", "77 Marigoldwell Lane"], "town": "Wolverhampton", "postcode": "WV10 9QX" }
    })
}

/// Every form in which a patient detail could be stored.
fn needles() -> Vec<String> {
    [
        "4857773457",
        "485 777 3457",
        "Perpetua",
        "Quillfeather",
        "Perpetua Quillfeather",
        "1987-06-05",
        "05/06/1987",
        "19870605",
        "perpetua.quillfeather@example.org",
        "quillfeather@example",
        "07700900987",
        "+447700900987",
        "7700900987",
        "Zephyrine",
        "Marigoldwell",
        "Wolverhampton",
        "WV10 9QX",
        "WV109QX",
    ]
    .map(String::from)
    .to_vec()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            dirs.push(p.clone());
            files_under(&p, out, dirs);
        } else {
            out.push(p);
        }
    }
}

/// (file, needle) for every case-insensitive hit outside `mail/`.
fn hits(data_dir: &Path) -> Vec<(String, String)> {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    files_under(data_dir, &mut files, &mut dirs);
    let mut out = Vec::new();
    for f in files {
        if f.starts_with(data_dir.join("mail")) {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap().to_ascii_lowercase();
        for n in needles() {
            let n = n.to_ascii_lowercase();
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                out.push((f.display().to_string(), n));
            }
        }
    }
    out
}

/// Files and directories that anyone but the owner could read.
#[cfg(unix)]
fn loose_modes(data_dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    files_under(data_dir, &mut files, &mut dirs);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    files
        .iter()
        .filter(|f| mode(f) != 0o600)
        .chain(dirs.iter().filter(|d| mode(d) != 0o700))
        .map(|p| (p.display().to_string(), mode(p)))
        .collect()
}

#[tokio::test]
async fn no_patient_detail_in_any_file_of_the_data_directory_after_a_full_run() {
    let m = start(|c| c.warehouse.inbound_secrets = vec![INBOUND.into()]).await;
    let (_, r) = warehouse_receiver(&m).await;
    let data_dir = m.running.data_dir.clone();

    // Submit, approve, pay on the sandbox checkout.
    let mut body = private_pom("SEAL-1");
    body["patient"] = patient();
    // Signed again: the prescriber signs the prescription as it is sent.
    let body = crate::money::harness::signed(body);
    let id = m.submit(Mode::Test, &body).await;
    assert_eq!(
        m.approve(Mode::Test, &id).await.status.as_str(),
        "awaiting_payment"
    );
    let p = m.payment(&id).await;
    let checkout = m.open_link(&m.link_in_email(&p.id)).await;
    let paid = m.post_empty(format!("{checkout}/pay")).await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert_eq!(m.payment(&id).await.status, PaymentStatus::Paid);

    // Release: the order, with the delivery address, goes through the outbox to the warehouse.
    assert_eq!(m.running.fulfilment.sweep().await.unwrap().released, 1);
    m.running.outbox.run_once().await.unwrap();
    let got = r.got.lock().unwrap().clone();
    let order = got
        .iter()
        .find(|(n, _, _)| n == "warehouse")
        .map(|(_, _, v)| v.clone())
        .expect("the warehouse received the order");
    // Opened at the moment of delivery: the warehouse gets the details in the clear.
    let to = &order["data"]["deliver_to"];
    assert_eq!(to["name"], "Perpetua Quillfeather");
    assert_eq!(to["postcode"], "WV10 9QX");
    assert_eq!(to["phone"], "+447700900987");

    // Dispatched and delivered, as the warehouse reports them.
    let (s, v) = wh_event(&m, "wh_seal_d", "dispatched", json!({ "order_id": id, "carrier": "Royal Mail Tracked 24", "tracking_number": "RM123456785GB" })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = wh_event(&m, "wh_seal_v", "delivered", json!({ "order_id": id, "received_by": "Perpetua Quillfeather", "recipient": "patient", "id_checked": true })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    m.running.outbox.run_once().await.unwrap();
    assert_eq!(m.clinic_view(Mode::Test, &id).await["status"], "delivered");

    // While running (the latest writes are still in the WAL) and after a checkpoint.
    assert!(
        data_dir.join("rxbridge.db-wal").exists(),
        "the WAL is part of the search"
    );
    assert_eq!(hits(&data_dir), Vec::<(String, String)>::new());
    #[cfg(unix)]
    assert_eq!(loose_modes(&data_dir), Vec::<(String, u32)>::new());
    let store = m.running.store.clone();
    store.close();
    assert_eq!(hits(&data_dir), Vec::<(String, String)>::new());
    #[cfg(unix)]
    assert_eq!(loose_modes(&data_dir), Vec::<(String, u32)>::new());
    // The search itself finds what it looks for: the emails do hold the patient's address.
    assert!(
        m.emails()
            .iter()
            .any(|(_, t)| t.contains("perpetua.quillfeather@example.org"))
    );
}
