//! `rxbridge clinic add|rotate-key|list`: clinics and their API keys.

use crate::cli::ClinicCommand;
use rxbridge::{App, Config};

pub async fn run(config: Config, command: ClinicCommand) -> anyhow::Result<()> {
    let app = App::open(config)?;
    let clinics = &app.state.clinics;
    match command {
        ClinicCommand::Add { name, json } => {
            let c = clinics.add(&name).await?;
            if json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                println!(
                    "clinic_id: {}\ntest_key:  {}\nlive_key:  {}\n\nThe keys are shown once; only their hashes are stored.",
                    c.clinic_id, c.test_key, c.live_key
                );
            }
        }
        ClinicCommand::RotateKey { clinic, mode, json } => {
            let key = clinics.rotate_key(&clinic, mode).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "clinic_id": clinic, "mode": mode.as_str(), "key": key })
                );
            } else {
                println!(
                    "new {} key for {clinic}: {key}\nThe previous {} key no longer works.",
                    mode.as_str(),
                    mode.as_str()
                );
            }
        }
        ClinicCommand::List => {
            for c in app.state.store.list_clinics().await? {
                println!("{}\t{}\t{}", c.id, c.created_at, c.name);
            }
        }
    }
    app.store.close();
    Ok(())
}
