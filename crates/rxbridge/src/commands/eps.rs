//! `rxbridge eps release|notify|claim`: the EPS dispensing steps `serve` runs on its schedule,
//! run once by hand.

use crate::cli::EpsCommand;
use rxbridge::{App, Config};

pub async fn run(config: Config, command: EpsCommand) -> anyhow::Result<()> {
    super::with_app(config, async |app| eps_cmd(app, command).await).await
}

async fn eps_cmd(app: &App, command: EpsCommand) -> anyhow::Result<()> {
    let Some(eps) = app.eps.as_ref() else {
        anyhow::bail!(
            "EPS is not configured: set eps.base_url (RXBRIDGE_EPS_BASE_URL) and the other eps settings (docs/nhs-eps.md)"
        );
    };
    match command {
        EpsCommand::Release { from_document } => {
            let r = match from_document {
                Some(doc) => eps.retake(&doc).await?,
                None => eps.release().await?,
            };
            println!(
                "released: {} recorded, {} matched with the clinic's, {} already recorded, {} returned to EPS, {} EPS could not release, {} unreadable, {} not taken in (see the log)",
                r.recorded,
                r.matched,
                r.already,
                r.returned,
                r.failed_at_eps,
                r.unreadable,
                r.not_taken
            );
            if r.not_taken > 0 {
                anyhow::bail!("{} released prescription(s) were not taken in", r.not_taken);
            }
        }
        EpsCommand::Notify => {}
        EpsCommand::Claim { month } => {
            let month = month.unwrap_or_else(|| eps.last_month());
            let r = eps.claims(month).await?;
            println!(
                "claims for {month}: {} queued, {} queued before, {} NHS prescriptions not from EPS (claimed on paper), {} not claimed (the parcel came back)",
                r.queued, r.already_queued, r.not_electronic, r.returned
            );
        }
    }
    let sent = app.outbox.run_once().await?;
    println!(
        "sent: {} delivered, {} to retry, {} refused or given up, {} not applicable",
        sent.delivered, sent.retried, sent.dead, sent.no_endpoint
    );
    Ok(())
}
