//! `rxbridge`: the one binary. `serve` runs the service; the other commands administer the
//! same data directory (the server may be running).

mod cli;
mod prescriber_key_cli;

use anyhow::Context as _;
use clap::Parser as _;
use cli::*;
use rxbridge::{App, Config};
use rxbridge_app::Mode;

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RXBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logs();
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    match cli.command {
        Command::Serve { listen, demo } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            let listener = tokio::net::TcpListener::bind(&config.listen)
                .await
                .with_context(|| format!("binding {}", config.listen))?;
            let addr = listener.local_addr()?;
            if config.public_url.is_none() && config.listen.ends_with(":0") {
                // A port chosen at start: payment links must carry the real one.
                config.public_url = Some(format!("http://{addr}"));
            }
            let sim = if demo {
                Some(demo_warehouse(&mut config)?)
            } else {
                None
            };
            let metrics = rxbridge::bind_metrics(&config).await?;
            let app = App::open(config)?;
            if app.config.payments.provider == "sandbox" {
                tracing::warn!(
                    "live-mode payments use the sandbox provider: no money moves (set payments.provider = \"stripe\" for production)"
                );
            }
            if let Some((order_secret, _)) = &sim
                && app
                    .outbox
                    .store()
                    .endpoint_for("warehouse:test")
                    .await?
                    .is_none()
            {
                app.outbox
                    .set_endpoint_with_secret(
                        "warehouse:test",
                        &demo_sim_url(),
                        order_secret.clone(),
                    )
                    .await?;
            }
            if demo {
                print_demo(&app, addr).await?;
                if let Some((order, event)) = &sim {
                    let url = demo_sim_url();
                    let listen = url
                        .trim_start_matches("http://")
                        .split('/')
                        .next()
                        .unwrap_or("127.0.0.1:9090")
                        .to_string();
                    println!(
                        "Warehouse: sandbox orders go to {url}; start the simulator in another terminal:\n\n  cargo run -- dev warehouse-sim --listen {listen} --rxbridge http://{addr} --order-secret {order} --event-secret {event}\n"
                    );
                }
            }
            tracing::info!(%addr, data_dir = %app.config.data_dir.display(), "rxbridge listening");
            match metrics.as_ref().map(|l| l.local_addr()).transpose()? {
                Some(m) => tracing::info!(metrics = %m, "metrics at http://{m}/metrics"),
                None => tracing::info!("metrics listener off"),
            }
            rxbridge::serve(app, listener, metrics, shutdown_signal()).await?;
        }
        Command::PrescriberKey { command } => {
            let app = App::open(config)?;
            let r = prescriber_key_cli::run(&app, command).await;
            app.store.close();
            r?;
        }
        Command::Clinic { command } => {
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
                    let mode = Mode::parse(&mode).unwrap_or(Mode::Test);
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
        }
        Command::Dev {
            command:
                DevCommand::WarehouseSim {
                    listen,
                    rxbridge,
                    order_secret,
                    event_secret,
                    mode,
                    stock,
                    delay_ms,
                },
        } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            println!(
                "warehouse simulator: orders at http://{}/orders",
                listener.local_addr()?
            );
            rxbridge::warehouse_sim::run(
                listener,
                rxbridge::warehouse_sim::SimConfig {
                    rxbridge: rxbridge.trim_end_matches('/').to_string(),
                    order_secret,
                    event_secret,
                    mode: Mode::parse(&mode).unwrap_or(Mode::Test),
                    stock,
                    delay: std::time::Duration::from_millis(delay_ms),
                },
                shutdown_signal(),
            )
            .await?;
        }
        Command::Dev {
            command:
                DevCommand::Sign {
                    private_key,
                    kid,
                    alg,
                    file,
                },
        } => prescriber_key_cli::sign(&private_key, &kid, &alg, &file)?,
        Command::Dev {
            command: DevCommand::CliReference,
        } => print!("{}", cli::reference_markdown()),
        Command::Dev {
            command:
                DevCommand::Seed {
                    clinic,
                    count,
                    patients,
                    hot_patient,
                    mode,
                },
        } => {
            let app = App::open_for_bulk_load(config)?;
            let clinic_id = match clinic {
                Some(c) => c,
                None => {
                    let c = app.state.clinics.add("Seed Clinic").await?;
                    println!("{}", serde_json::to_string(&c)?);
                    c.clinic_id
                }
            };
            let started = std::time::Instant::now();
            let mode = Mode::parse(&mode).unwrap_or(Mode::Test);
            let n =
                rxbridge::seed::seed(&app, &clinic_id, mode, count, patients, hot_patient).await?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "seeded {n} prescriptions in {secs:.1} s ({:.0}/s)",
                n as f64 / secs
            );
            app.store.close();
        }
        Command::Staff {
            command:
                StaffCommand::Add {
                    email,
                    role,
                    gphc,
                    json,
                },
        } => {
            let app = App::open(config)?;
            let role = rxbridge_app::staff::Role::parse(&role)
                .unwrap_or(rxbridge_app::staff::Role::Support);
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
        }
        Command::Rules { markdown } => {
            config.validate()?;
            if markdown {
                print!(
                    "{}",
                    rxbridge_domain::compliance::rules_markdown(&config.compliance)
                );
            } else {
                for r in rxbridge_domain::compliance::RULES {
                    println!("{:<36} {:<6} {}", r.code, r.severity.as_str(), r.rule);
                }
            }
        }
        Command::Export {
            command: ExportCommand::All { out },
        } => {
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
        }
        Command::Export {
            command:
                ExportCommand::Orders {
                    date,
                    format,
                    out,
                    mode,
                },
        } => {
            let app = App::open(config)?;
            let r = app
                .fulfilment
                .orders_file(Mode::parse(&mode).unwrap_or(Mode::Live), date, "cli")
                .await;
            app.store.close();
            write_report(&r?, &format, out.as_deref())?;
        }
        Command::Webhook { command } => {
            let app = App::open(config)?;
            let r = webhook(&app, command).await;
            app.store.close();
            r?;
        }
        Command::Outbox { command } => {
            let app = App::open(config)?;
            let r = outbox_cmd(&app, command).await;
            app.store.close();
            r?;
        }
        Command::CdRegister { command } => {
            let app = App::open(config)?;
            let r = register_cmd(&app, rxbridge_app::registers::Register::Cd, command).await;
            app.store.close();
            return r;
        }
        Command::PomRegister { command } => {
            let app = App::open(config)?;
            let r = register_cmd(&app, rxbridge_app::registers::Register::Pom, command).await;
            app.store.close();
            return r;
        }
        Command::Export { command } => {
            let (kind, args) = match command {
                ExportCommand::Orders { .. } | ExportCommand::All { .. } => {
                    unreachable!("handled above")
                }
                ExportCommand::NhsClaim(a) => (rxbridge_app::finance::ExportKind::NhsClaim, a),
                ExportCommand::Fp34pcd(a) => (rxbridge_app::finance::ExportKind::Fp34pcd, a),
                ExportCommand::Payments(a) => (rxbridge_app::finance::ExportKind::Payments, a),
            };
            let app = App::open(config)?;
            let r = export(&app, kind, &args).await;
            app.store.close();
            r?;
        }
        Command::Payments {
            command: PaymentsCommand::Sweep,
        } => {
            let app = App::open(config)?;
            let r = app.payments.tick().await;
            app.store.close();
            let r = r?;
            println!(
                "links sent {}, reminders {}, cancelled {}, expired {}, refunded {}, failures {}",
                r.links_sent, r.reminders_sent, r.cancelled, r.expired, r.refunded, r.failures
            );
            if r.failures > 0 {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        Command::Audit {
            command: AuditCommand::Anchor { out },
        } => {
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
            let text = rxbridge::anchors::to_json(&r?);
            match out {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("anchor written to {}", path.display());
                }
                None => print!("{text}"),
            }
        }
        Command::Audit {
            command: AuditCommand::Verify { anchor },
        } => {
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
    Ok(std::process::ExitCode::SUCCESS)
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
        for path in anchors {
            let a = rxbridge::anchors::read(path)?;
            let problems = rxbridge_app::anchor::check(
                &a,
                &trusted,
                app.state.store.as_ref(),
                app.store.as_ref(),
            )
            .await?;
            if problems.is_empty() {
                ok.push(format!(
                    "anchor {}: every chain holds what the anchor of {} saw",
                    path.display(),
                    a.at
                ));
            }
            broken.extend(
                problems
                    .into_iter()
                    .map(|p| format!("anchor {}: {p}", path.display())),
            );
        }
    }
    Ok((ok, broken))
}

fn write_report(
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
            rxbridge_app::files::private_file(&tmp)
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

async fn webhook(app: &App, command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Set {
            destination,
            url,
            json,
        } => {
            check_destination(app, &destination).await?;
            rxbridge::webhooks::check_url(
                &url,
                &rxbridge::webhooks::UrlPolicy::from_settings(&app.config.webhooks),
                rxbridge::webhooks::is_sandbox(&destination),
            )
            .map_err(|e| anyhow::anyhow!("--url: {e}"))?;
            let (e, secret) = app.outbox.set_endpoint(&destination, &url).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "endpoint_id": e.id, "destination": destination, "url": url, "secret": secret })
                );
            } else {
                println!(
                    "endpoint {} for {destination} → {url}\nsigning secret: {secret}\nShown once: give it to the receiver to verify webhook-signature.",
                    e.id
                );
            }
        }
        WebhookCommand::RotateSecret { destination } => {
            let secret = app
                .outbox
                .rotate_secret(&destination)
                .await
                .map_err(|e| match e {
                    rxbridge_app::StoreError::NotFound => {
                        anyhow::anyhow!("no endpoint for {destination}")
                    }
                    e => e.into(),
                })?;
            println!(
                "new signing secret for {destination}: {secret}\nThe previous secret signs beside it until the next rotation."
            );
        }
        WebhookCommand::List => {
            for e in app.outbox.store().endpoints().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    e.destination,
                    e.url,
                    if e.enabled { "enabled" } else { "DISABLED" },
                    e.disabled_reason.unwrap_or_default()
                );
            }
        }
        WebhookCommand::NewSecret => println!("{}", rxbridge_app::outbox::generate_secret()),
    }
    Ok(())
}

async fn check_destination(app: &App, d: &str) -> anyhow::Result<()> {
    match rxbridge_app::outbox::parse_destination(d) {
        Ok(None) => Ok(()),
        Ok(Some(id)) => {
            if app.state.store.get_clinic(id).await?.is_none() {
                anyhow::bail!("--destination: no clinic {id}");
            }
            Ok(())
        }
        Err(why) => anyhow::bail!("--destination: {why}"),
    }
}

async fn outbox_cmd(app: &App, command: OutboxCommand) -> anyhow::Result<()> {
    use rxbridge_app::outbox::MessageStatus;
    match command {
        OutboxCommand::List { status, limit } => {
            let status = MessageStatus::parse(&status).unwrap_or(MessageStatus::Dead);
            for m in app.outbox.store().messages(status, limit).await? {
                println!(
                    "{}\t{}\t{}\t{}\tattempts {}\t{}",
                    m.message.id,
                    m.message.created_at,
                    m.message.destination,
                    m.message.event_type,
                    m.attempts,
                    m.last_error.unwrap_or_default()
                );
            }
        }
        OutboxCommand::Replay { all, id } => {
            if !all && id.is_empty() {
                anyhow::bail!("say which: --all or --id msg_…");
            }
            let n = app.outbox.replay(if all { None } else { Some(id) }).await?;
            println!("{n} message(s) back in the queue");
        }
    }
    Ok(())
}

async fn register_cmd(
    app: &App,
    register: rxbridge_app::registers::Register,
    command: RegisterCommand,
) -> anyhow::Result<std::process::ExitCode> {
    use rxbridge_app::registers::RegisterStore;
    match command {
        RegisterCommand::Verify => {
            let entries = app.store.register_entries(register, None).await?;
            match rxbridge_app::registers::verify(&entries) {
                Ok(n) => println!("ok: {n} entries, links, hashes and balances intact"),
                Err(e) => {
                    println!("BROKEN: {e}");
                    return Ok(std::process::ExitCode::from(2));
                }
            }
        }
        RegisterCommand::Print {
            section,
            format,
            out,
        } => match section {
            None => {
                for s in app.store.register_sections(register).await? {
                    let b = app.store.register_balance(register, &s).await?;
                    println!("{s}\tbalance {b}");
                }
            }
            Some(s) => {
                let r = app.fulfilment.register_report(register, &s, "cli").await?;
                write_report(&r, &format, out.as_deref())?;
            }
        },
    }
    Ok(std::process::ExitCode::SUCCESS)
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
    let mode = Mode::parse(&args.mode).unwrap_or(Mode::Live);
    let report = app
        .finance
        .report(kind, mode, args.month, "cli", &progress)
        .await?;
    bar.finish_and_clear();
    write_report(&report, &args.format, args.out.as_deref())?;
    Ok(())
}

/// Where `--demo` sends sandbox orders (`RXBRIDGE_DEMO_SIM_URL` overrides).
fn demo_sim_url() -> String {
    std::env::var("RXBRIDGE_DEMO_SIM_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9090/orders".to_string())
}

/// `--demo`: secrets for the local warehouse simulator, kept in `<data_dir>/demo-warehouse.json`
/// (0600); the inbound one is added to the config, and the simulator's origin (only it) is
/// exempt from the SSRF guard for sandbox deliveries.
fn demo_warehouse(config: &mut Config) -> anyhow::Result<(String, String)> {
    std::fs::create_dir_all(&config.data_dir)?;
    let path = config.data_dir.join("demo-warehouse.json");
    if !path.exists() {
        let v = serde_json::json!({
            "order_secret": rxbridge_app::outbox::generate_secret(),
            "event_secret": rxbridge_app::outbox::generate_secret(),
        });
        rxbridge::write_secret_file(&path, &v.to_string())?;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let order = v["order_secret"].as_str().unwrap_or_default().to_string();
    let event = v["event_secret"].as_str().unwrap_or_default().to_string();
    if !config.warehouse.inbound_secrets.contains(&event) {
        config.warehouse.inbound_secrets.push(event.clone());
    }
    let sim = demo_sim_url();
    tracing::warn!(
        simulator = %sim,
        "--demo: sandbox webhooks may reach the warehouse simulator's address (only it)"
    );
    config.webhooks.exempt_origin = Some(sim);
    Ok((order, event))
}

/// `--demo`: a demo clinic and demo staff (a pharmacist and a support agent). Their secrets
/// are kept in `<data_dir>/demo-clinic.json` (0600) so every demo start can print them; the
/// staff passwords are one-time and must be changed at first sign-in.
async fn print_demo(app: &App, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let path = app.config.data_dir.join("demo-clinic.json");
    let demo: serde_json::Value = if path.exists() {
        serde_json::from_str(&std::fs::read_to_string(&path)?)?
    } else if app.state.store.list_clinics().await?.is_empty() {
        let c = app.state.clinics.add("Demo ADHD Clinic").await?;
        let (_, pharmacist) = app
            .staff
            .add(
                "pharmacist@demo.rxbridge",
                rxbridge_app::staff::Role::Pharmacist,
                Some("2033467"),
            )
            .await?;
        let (_, support) = app
            .staff
            .add(
                "support@demo.rxbridge",
                rxbridge_app::staff::Role::Support,
                None,
            )
            .await?;
        let (_, finance) = app
            .staff
            .add(
                "finance@demo.rxbridge",
                rxbridge_app::staff::Role::Finance,
                None,
            )
            .await?;
        let v = serde_json::json!({
            "clinic_id": c.clinic_id, "test_key": c.test_key,
            "staff": [
                { "email": "pharmacist@demo.rxbridge", "role": "pharmacist", "one_time_password": pharmacist },
                { "email": "support@demo.rxbridge", "role": "support", "one_time_password": support },
                { "email": "finance@demo.rxbridge", "role": "finance", "one_time_password": finance }
            ]
        });
        rxbridge::write_secret_file(&path, &v.to_string())?;
        v
    } else {
        println!(
            "--demo: clinics already exist and no demo file is on record; use `rxbridge clinic add` and `rxbridge staff add`."
        );
        return Ok(());
    };
    let clinic_id = demo["clinic_id"].as_str().unwrap_or_default().to_string();
    let key = demo["test_key"].as_str().unwrap_or_default().to_string();
    println!(
        "rxbridge demo\n  staff portal: http://{addr}/staff  (sandbox data: /staff?mode=test)"
    );
    for s in demo["staff"].as_array().into_iter().flatten() {
        println!(
            "    {:<26} {:<10} one-time password {} (change it at first sign-in)",
            s["email"].as_str().unwrap_or(""),
            s["role"].as_str().unwrap_or(""),
            s["one_time_password"].as_str().unwrap_or("")
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
