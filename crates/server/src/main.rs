//! `repairops-server`: parse the command line, run one command, map failures to an exit
//! code with a readable message.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use repairops_api::Plan;
use repairops_server::{Config, SystemClock, audit, seed};

/// RepairOps Backup server.
#[derive(Parser)]
#[command(name = "repairops-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        /// TOML configuration file (see docs/server-config.sample.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data folder (default ./repairops-data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Address to listen on (default 127.0.0.1:8443; port 0 picks one).
        #[arg(long)]
        listen: Option<String>,
        /// Create the demo account on first start and print how to sign in.
        #[arg(long)]
        demo: bool,
        /// Plain HTTP instead of TLS; allowed only on a loopback address.
        #[arg(long)]
        insecure_http: bool,
    },
    /// Add or refill an account with realistic demo data (deterministic).
    Seed {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "pro")]
        plan: String,
        #[arg(long, default_value = "America/Chicago")]
        timezone: String,
        #[arg(long, value_enum)]
        size: seed::Size,
    },
    /// Export an account's data to a file (or `-` for standard output), as the API's
    /// export jobs do; audited as the operator.
    Export {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        account: String,
        /// tickets, customers, invoices, inventory, users or transactions.
        #[arg(long)]
        dataset: String,
        /// csv, json or pdf (invoices only).
        #[arg(long, default_value = "csv")]
        format: String,
        /// CSV delimiter (one ASCII character).
        #[arg(long)]
        delimiter: Option<String>,
        /// First shop-local date, YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        /// Last shop-local date, YYYY-MM-DD.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        shop_id: Option<i64>,
        /// Where to write the file.
        #[arg(long)]
        out: PathBuf,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Exit 0 when the audit chain is intact; otherwise name the first break.
    Verify {
        #[arg(long)]
        data: PathBuf,
    },
}

/// Writes a line to standard output, as `println!` does, but a closed or full output
/// (`| head`, `> /dev/full`) is an error to report, not a panic. `serve` ignores it: its
/// start-up lines are a courtesy, and the server goes on.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err(|e| format!("cannot write to standard output: {e}"))
    }};
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging();
    // A panic (a bug) goes to the log like any error, with where it happened; the
    // server answers the request or fails the job it was in, and a command ends with a
    // sentence saying what to do rather than Rust's own panic output.
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!(panic = %info, %backtrace, "internal error (a bug)");
    }));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(message)) => {
            eprintln!("repairops-server: {message}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!(
                "repairops-server: stopped on an internal error (a bug), logged above. Try again; \
                 if it happens again, send that log to support."
            );
            ExitCode::from(70)
        }
    }
}

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("REPAIROPS_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
}

fn load_config(config: Option<PathBuf>, data: Option<PathBuf>) -> Result<Config, String> {
    let mut c = Config::load(config.as_deref())?;
    if let Some(d) = data {
        c.data = d;
    }
    Ok(c)
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve {
            config,
            data,
            listen,
            demo,
            insecure_http,
        } => {
            let mut c = load_config(config, data)?;
            if let Some(l) = listen {
                c.listen = l
                    .parse()
                    .map_err(|_| format!("--listen {l:?} is not an address such as 127.0.0.1:8443"))?;
            }
            c.insecure_http |= insecure_http;
            c.validate()?;
            if demo && let Some(report) = seed::ensure_demo(&c)? {
                let _ = say!(
                    "created the demo account: {} tickets, {} customers, {} photos",
                    report.tickets,
                    report.customers,
                    report.attachments
                );
            }
            let listener =
                std::net::TcpListener::bind(c.listen).map_err(|e| format!("cannot listen on {}: {e}", c.listen))?;
            let (tls, listening) = repairops_server::prepare(&c, &listener)?;
            let _ = say!(
                "data folder {}",
                std::path::absolute(&c.data).unwrap_or(c.data.clone()).display()
            );
            let _ = say!("listening on {}", listening.url);
            if let (Some(fp), Some(ca)) = (&listening.ca_sha256, &listening.ca_pem) {
                let _ = say!("ca-sha256 {fp}");
                let _ = say!("ca-pem {}", std::path::absolute(ca).unwrap_or(ca.clone()).display());
            }
            if demo {
                let _ = say!("sign in to account \"demo\" with:");
                for (role, email, password) in seed::demo_sign_ins() {
                    let _ = say!("  {:<11} {email} / {password}", role.as_str());
                }
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start: {e}"))?;
            runtime.block_on(repairops_server::launch(
                c,
                Arc::new(SystemClock),
                listener,
                tls,
                shutdown_signal(),
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Seed {
            data,
            account,
            plan,
            timezone,
            size,
        } => {
            let c = load_config(None, data)?;
            let plan = Plan::parse(&plan).ok_or_else(|| format!("--plan {plan:?}: use starter, pro or enterprise"))?;
            let started = std::time::Instant::now();
            let report = seed::seed(&c, &account, plan, &timezone, size)?;
            say!(
                "account {}: {} tickets, {} customers, {} photos ({:.1} MB) in {:.1} s",
                report.slug,
                report.tickets,
                report.customers,
                report.attachments,
                report.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            )?;
            for (role, email, password) in &report.sign_ins {
                say!("  {:<11} {email} / {password}", role.as_str())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            data,
            account,
            dataset,
            format,
            delimiter,
            from,
            to,
            status,
            shop_id,
            out,
        } => {
            let c = load_config(None, data)?;
            let request = repairops_api::NewExport {
                dataset,
                format,
                delimiter,
                filters: Some(repairops_api::ExportFilters {
                    from,
                    to,
                    status,
                    shop_id,
                }),
            };
            let report = repairops_server::export_command::run(&c.data, &account, &request, &out)?;
            eprintln!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Verify { data },
        } => {
            let key = audit::AuditKey::load(&data)
                .map_err(|e| format!("cannot read the audit key under {}: {e}", data.display()))?;
            let conn = rusqlite::Connection::open_with_flags(
                data.join("server.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .map_err(|e| format!("cannot open {}: {e}", data.join("server.db").display()))?;
            match audit::verify(&conn, &key) {
                // The exit code is the answer (0 intact, 3 broken): it stands even when
                // the sentence cannot be written (said on stderr).
                Ok(n) => {
                    if let Err(e) = say!("audit log intact: {n} rows") {
                        eprintln!("repairops-server: {e}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(audit::VerifyError::Broken(b)) => {
                    if let Err(e) = say!("{b}") {
                        eprintln!("repairops-server: {e}; the audit log is broken: {b}");
                    }
                    Ok(ExitCode::from(3))
                }
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
