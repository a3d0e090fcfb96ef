//! `rxbridge staff add`: staff accounts with a one-time password.

use crate::cli::StaffCommand;
use rxbridge::{App, Config};

pub async fn run(config: Config, command: StaffCommand) -> anyhow::Result<()> {
    let StaffCommand::Add {
        email,
        role,
        gphc,
        json,
    } = command;
    let app = App::open(config)?;
    let r = app.staff.add(&email, role, gphc.as_deref()).await;
    app.store.close();
    let (account, password) = r?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "staff_id": account.id, "email": account.email, "role": role.as_str(), "one_time_password": password })
        );
    } else {
        println!(
            "staff_id: {}\nemail:    {}\nrole:     {}\none-time password: {password}\n\nShown once; it must be changed at first sign-in.",
            account.id,
            account.email,
            role.as_str()
        );
    }
    Ok(())
}
