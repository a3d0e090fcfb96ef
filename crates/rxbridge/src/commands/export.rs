//! `rxbridge export …`: the full data export, the warehouse orders file and the month-end
//! finance exports (CSV or PDF, to a file or standard output).

use crate::cli::{ExportArgs, ExportCommand};
use anyhow::Context as _;
use rxbridge::{App, Config};

pub async fn run(config: Config, command: ExportCommand) -> anyhow::Result<()> {
    let (kind, args) = match command {
        ExportCommand::All { out } => {
            let store = rxbridge_store_sqlite::SqliteStore::open(config.db_path())?;
            let counts = match &out {
                Some(path) => {
                    // Owner-only: the file holds password hashes and keyed lookup hashes.
                    let f = rxbridge::create_secret_file(path)?;
                    let mut w = std::io::BufWriter::new(f);
                    let c = rxbridge_app::transfer::export(&store, &mut w).await?;
                    w.into_inner()
                        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?
                        .sync_all()?;
                    c
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout());
                    rxbridge_app::transfer::export(&store, &mut w).await?
                }
            };
            store.close();
            eprintln!(
                "exported {} records: {}",
                counts.total(),
                serde_json::to_string(&counts.0)?
            );
            return Ok(());
        }
        ExportCommand::Orders {
            date,
            format,
            out,
            mode,
        } => {
            let app = App::open(config)?;
            let r = app.fulfilment.orders_file(mode, date, "cli").await;
            app.store.close();
            write_report(&r?, &format, out.as_deref())?;
            return Ok(());
        }
        ExportCommand::NhsClaim(a) => (rxbridge_app::finance::ExportKind::NhsClaim, a),
        ExportCommand::Fp34pcd(a) => (rxbridge_app::finance::ExportKind::Fp34pcd, a),
        ExportCommand::Payments(a) => (rxbridge_app::finance::ExportKind::Payments, a),
    };
    super::with_app(config, async |app| export(app, kind, &args).await).await
}

pub fn write_report(
    report: &rxbridge_app::finance::Report,
    format: &str,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let bytes = match format {
        "pdf" => rxbridge_export::to_pdf(report),
        _ => rxbridge_export::to_csv(report),
    };
    match out {
        Some(path) => {
            let tmp = path.with_extension("partial");
            // Reports can name patients (the orders file): owner-only.
            rxbridge::private_file(&tmp)
                .and_then(|mut f| {
                    f.write_all(&bytes)?;
                    f.sync_all()
                })
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "{}: {} rows written to {}",
                report.title,
                report.rows.len(),
                path.display()
            );
            for (k, v) in &report.totals {
                eprintln!("  {k}: {v}");
            }
            if !report.differences.is_empty() {
                eprintln!(
                    "  {} difference(s) or warning(s): see the PDF or the difference column",
                    report.differences.len()
                );
            }
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

async fn export(
    app: &App,
    kind: rxbridge_app::finance::ExportKind,
    args: &ExportArgs,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("{} {}", kind.as_str(), args.month));
    let b = bar.clone();
    let progress = move |done: u64, total: u64| {
        if b.length() != Some(total) {
            b.set_length(total);
        }
        b.set_position(done);
    };
    let mode = args.mode;
    let report = app
        .finance
        .report(kind, mode, args.month, "cli", &progress)
        .await?;
    bar.finish_and_clear();
    write_report(&report, &args.format, args.out.as_deref())?;
    Ok(())
}
