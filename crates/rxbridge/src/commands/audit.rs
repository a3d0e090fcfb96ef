//! `rxbridge audit anchor|verify`: signed anchors of the chains' heads, and the full check of
//! the event log, the registers and the anchors.

use crate::cli::AuditCommand;
use rxbridge::{App, Config};
use std::process::ExitCode;

pub async fn run(config: Config, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Anchor { out } => {
            let app = App::open(config)?;
            let key = rxbridge::anchors::load_or_create_key(&app.config.data_dir)?;
            let r = rxbridge_app::anchor::take(
                app.state.store.as_ref(),
                app.store.as_ref(),
                &key,
                jiff::Timestamp::now(),
            )
            .await;
            app.store.close();
            rxbridge::anchors::print_or_write(&r?, out.as_deref())?;
        }
        AuditCommand::Verify { anchor } => {
            let app = App::open(config)?;
            let r = audit_verify(&app, &anchor).await;
            app.store.close();
            let (ok, broken) = r?;
            for l in ok {
                println!("ok: {l}");
            }
            if !broken.is_empty() {
                for l in broken {
                    println!("BROKEN: {l}");
                }
                return Ok(std::process::ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every check of `audit verify`: (intact lines, broken lines).
async fn audit_verify(
    app: &App,
    anchors: &[std::path::PathBuf],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let (mut ok, mut broken) = match rxbridge_app::audit::verify_all(
        app.state.store.as_ref(),
        app.store.as_ref(),
        app.store.as_ref(),
    )
    .await?
    {
        Ok(lines) => (lines, vec![]),
        Err(lines) => (vec![], lines),
    };
    if !anchors.is_empty() {
        let trusted = rxbridge::anchors::trusted_key(&app.config.audit, &app.config.data_dir)?;
        rxbridge::anchors::check_files(
            anchors,
            &trusted,
            app.state.store.as_ref(),
            app.store.as_ref(),
            &mut ok,
            &mut broken,
        )
        .await?;
    }
    Ok((ok, broken))
}
