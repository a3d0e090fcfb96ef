//! `rxbridge staff add` and `rxbridge staff reset-password`: staff accounts with a one-time
//! password.

use crate::cli::StaffCommand;
use rxbridge::{App, Config};
use rxbridge_app::staff::StaffAccount;

pub async fn run(config: Config, command: StaffCommand) -> anyhow::Result<()> {
    let app = App::open(config)?;
    let (r, json) = match command {
        StaffCommand::Add {
            email,
            role,
            gphc,
            json,
        } => (app.staff.add(&email, role, gphc.as_deref()).await, json),
        StaffCommand::ResetPassword { email, json } => {
            (app.staff.reset_password("cli", &email).await, json)
        }
    };
    app.store.close();
    let (account, password) = r?;
    print_account(&account, &password, json);
    Ok(())
}

fn print_account(account: &StaffAccount, password: &str, json: bool) {
    let role = account.role.as_str();
    if json {
        println!(
            "{}",
            serde_json::json!({ "staff_id": account.id, "email": account.email, "role": role, "one_time_password": password })
        );
    } else {
        println!(
            "staff_id: {}\nemail:    {}\nrole:     {role}\none-time password: {password}\n\nShown once; it must be changed at first sign-in.",
            account.id, account.email,
        );
    }
}
