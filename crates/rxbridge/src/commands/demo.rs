//! `serve --demo`: a demo clinic and demo staff (a pharmacist, a support agent, a finance
//! officer and an administrator). Their secrets are kept in `<data_dir>/demo-clinic.json`
//! (0600). Every demo start says which demo accounts exist and prints a one-time password only
//! while it still opens the account; a changed one is not printed again, and `rxbridge staff
//! reset-password` gives a new one.

use rxbridge::App;
use rxbridge_app::crypto::sha256_hex;
use rxbridge_app::staff::{Role, StaffAccount};
use serde_json::{Value, json};

/// The demo accounts: email, role, GPhC number.
const DEMO_STAFF: [(&str, Role, Option<&str>); 4] = [
    (
        "pharmacist@demo.rxbridge",
        Role::Pharmacist,
        Some("2033467"),
    ),
    ("support@demo.rxbridge", Role::Support, None),
    ("finance@demo.rxbridge", Role::Finance, None),
    ("admin@demo.rxbridge", Role::Admin, None),
];

/// The demo file: the demo clinic, then each demo account made for it (one made by an older
/// version is added now).
async fn demo_file(app: &App) -> anyhow::Result<Option<Value>> {
    let path = app.config.data_dir.join("demo-clinic.json");
    let mut demo: Value = if path.exists() {
        serde_json::from_str(&std::fs::read_to_string(&path)?)?
    } else if app.state.store.list_clinics().await?.is_empty() {
        let c = app.state.clinics.add("Demo ADHD Clinic").await?;
        json!({ "clinic_id": c.clinic_id, "test_key": c.test_key, "staff": [] })
    } else {
        return Ok(None);
    };
    let existing = app.staff.list().await?;
    let mut added = false;
    for (email, role, gphc) in DEMO_STAFF {
        let on_file = demo["staff"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["email"] == email));
        if on_file || existing.iter().any(|a| a.email == email) {
            continue;
        }
        let (account, password) = app.staff.add(email, role, gphc).await?;
        let entry = json!({ "email": email, "role": role.as_str(), "one_time_password": password, "hash_sha256": sha256_hex(account.password_hash.as_bytes()) });
        if let Some(staff) = demo["staff"].as_array_mut() {
            staff.push(entry);
        }
        added = true;
    }
    if added {
        rxbridge::write_secret_file(&path, &demo.to_string())?;
    }
    Ok(Some(demo))
}

/// What to print of a demo account's password: the one-time password while it still opens the
/// account (not changed, not reset since), else how to get a new one.
fn password_line(entry: &Value, account: Option<&StaffAccount>, data_dir: &str) -> String {
    let email = entry["email"].as_str().unwrap_or("");
    let reset = format!(
        "password changed since: forgotten it? rxbridge --data-dir {data_dir} staff reset-password --email {email}"
    );
    let Some(account) = account.filter(|a| a.must_change_password) else {
        return reset;
    };
    let recorded = entry["hash_sha256"].as_str();
    match recorded {
        Some(h) if h != sha256_hex(account.password_hash.as_bytes()) => reset,
        _ => format!(
            "one-time password {} (change it at first sign-in)",
            entry["one_time_password"].as_str().unwrap_or("")
        ),
    }
}

pub async fn print_demo(app: &App, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let Some(demo) = demo_file(app).await? else {
        println!(
            "--demo: clinics already exist and no demo file is on record; use `rxbridge clinic add` and `rxbridge staff add`."
        );
        return Ok(());
    };
    let accounts = app.staff.list().await?;
    let data_dir = app.config.data_dir.display().to_string();
    let clinic_id = demo["clinic_id"].as_str().unwrap_or_default().to_string();
    let key = demo["test_key"].as_str().unwrap_or_default().to_string();
    println!(
        "rxbridge demo\n  staff portal: http://{addr}/staff  (sandbox data: /staff?mode=test)\n  demo accounts:"
    );
    for s in demo["staff"].as_array().into_iter().flatten() {
        let email = s["email"].as_str().unwrap_or("");
        let account = accounts.iter().find(|a| a.email == email);
        println!(
            "    {:<26} {:<10} {}",
            email,
            s["role"].as_str().unwrap_or(""),
            password_line(s, account, &data_dir)
        );
    }
    let today = rxbridge_domain::dates::london_date(jiff::Timestamp::now());
    let example = rxbridge_http::schema::example_submission_on(&today.to_string());
    println!(
        "  clinic:      {clinic_id}\n  sandbox key: {key}\n  API:         http://{addr}/v1  (OpenAPI: http://{addr}/openapi.json)\n\nTry it:\n\ncurl -s http://{addr}/v1/prescriptions \\\n  -H 'Authorization: Bearer {key}' \\\n  -H 'Content-Type: application/json' \\\n  -H \"Idempotency-Key: demo-$(date +%s)\" \\\n  -d '{}'\n",
        serde_json::to_string(&example)?
    );
    Ok(())
}
