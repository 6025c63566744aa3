//! The `karamail` command: `main` only dispatches the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use karamail::config::{CONFIG_ENV, Config};
use karamail::{daemon, db::Db, members, qr};

#[derive(Parser)]
#[command(
    name = "karamail",
    version,
    about = "Member sign-up for a health-insurance portal, started by an empty mail"
)]
struct Cli {
    /// TOML config file (every key optional; see README). Without it, built-in defaults.
    #[arg(long, global = true, env = CONFIG_ENV, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: SMTP intake, web site and outbox.
    ///
    /// Example: karamail --config /etc/karamail/karamail.toml serve
    Serve,
    /// Manage members.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Write the QR code that opens the empty mail to the intake address.
    ///
    /// Example: karamail qr --address kc@example.jp --out-dir qr
    Qr {
        /// Address the mail goes to (default: the first of [smtp] intake_addresses).
        #[arg(long)]
        address: Option<String>,
        /// Subject to put in the mail (optional; karamail ignores it).
        #[arg(long)]
        subject: Option<String>,
        /// Folder for signup.png and signup.svg.
        #[arg(long, default_value = "qr")]
        out_dir: PathBuf,
        /// Pixels per QR module in the PNG.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
        module_size: u32,
    },
}

#[derive(Subcommand)]
enum MembersCommand {
    /// Load members from CSV (header member_no,name; UTF-8 or Shift_JIS) and issue
    /// temporary credentials for their postcards.
    ///
    /// Example: karamail members import members.csv --postcards postcards.csv
    Import {
        /// The members file.
        file: PathBuf,
        /// Where to write member_no,name,temp_login_id,temp_password (must not exist).
        #[arg(long)]
        postcards: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("karamail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(config),
        Command::Members(MembersCommand::Import { file, postcards }) => {
            import_members(config, &file, &postcards)
        }
        Command::Qr {
            address,
            subject,
            out_dir,
            module_size,
        } => {
            let address = address.unwrap_or_else(|| config.smtp.intake_addresses[0].clone());
            let url = qr::mailto(&address, subject.as_deref())?;
            let written = qr::write(&url, &out_dir, module_size)?;
            println!("{}", written.terminal);
            println!("{url}");
            println!(
                "wrote {} and {}",
                written.png.display(),
                written.svg.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let daemon = daemon::start(config).await.context("cannot start")?;
        daemon.run_until_signal().await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn import_members(
    config: Config,
    file: &std::path::Path,
    postcards: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = members::decode(&bytes, &file.display().to_string())?;
    let rows = members::parse(&text).with_context(|| format!("{} not imported", file.display()))?;
    let db = Db::open(&config.database.path).with_context(|| {
        format!(
            "cannot open the database {}",
            config.database.path.display()
        )
    })?;
    let summary = members::import(&db, rows, postcards)
        .with_context(|| format!("{} not imported", file.display()))?;
    println!(
        "imported {} new member(s); skipped {} already imported",
        summary.imported, summary.skipped
    );
    if summary.imported > 0 {
        println!(
            "postcards: {} (the only copy of the temporary passwords: print, then delete it)",
            postcards.display()
        );
    } else {
        println!("no postcards file written: nobody new");
    }
    Ok(ExitCode::SUCCESS)
}
