//! The `karamail` command: `main` only parses and dispatches the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use karamail::config::{CONFIG_ENV, Config};
use karamail::db::documents;
use karamail::db::records::Kind;
use karamail::postcards::Sheet;
use karamail::{cli, daemon, qr};

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
    /// Create the database if it does not exist (`serve` always may). Without it, a
    /// command refuses to start a new, empty database beside the daemon's.
    #[arg(long, global = true)]
    create_database: bool,
    /// The server key (`karamail.key`) is lost for good: use the one in its place (made
    /// if missing) from now on. Every open link, session, pending login and unused
    /// postcard becomes void; reissue postcards. Without it, a missing or different key
    /// is refused.
    #[arg(long, global = true)]
    new_server_key: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: SMTP intake, web site and outbox.
    ///
    /// Example: karamail --config /etc/karamail/karamail.toml serve
    Serve,
    /// Manage members: import, list, show, disable, enable, reissue.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Manage the society's notices (お知らせ) on every member's top page.
    #[command(subcommand)]
    Notices(NoticesCommand),
    /// A consistent copy of the database while the daemon runs (SQLite's online backup),
    /// checked (integrity_check, schema version) and described. The server key is not in
    /// it: keep karamail.key apart.
    ///
    /// Example: karamail backup /var/backups/karamail/karamail-2026-11-22.db
    Backup {
        /// The copy to write (must not exist).
        file: PathBuf,
    },
    /// Put a backup back: refused while the daemon or a command has the database open;
    /// the file and the server key are checked first; the replaced database is kept
    /// beside it (karamail.db.before-restore-…).
    ///
    /// Example: systemctl stop karamail; karamail restore karamail-2026-11-22.db
    Restore {
        /// The backup to restore.
        file: PathBuf,
    },
    /// The roll-out week by week: members imported, postcards reissued, sign-up mails
    /// asked for (by mail, on the web) and why some were not answered, registrations,
    /// first logins, members active in the last 30 days; optionally as a chart.
    ///
    /// Example: karamail report --since 2026-10-01 --chart funnel.svg
    Report {
        /// First day counted (YYYY-MM-DD, Japan time); default the first import.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: cli::report::Format,
        /// Also draw the chart to this file (.svg or .png).
        #[arg(long, value_name = "FILE")]
        chart: Option<PathBuf>,
    },
    /// Purge now what [retention] says is too old (the daemon does it daily).
    ///
    /// Example: karamail retention
    Retention,
    /// Print postcards 「…への登録について」 as a PDF.
    #[command(subcommand)]
    Postcards(PostcardsCommand),
    /// Load members' records (健診結果, 医療費のお知らせ).
    #[command(subcommand)]
    Records(RecordsCommand),
    /// Members' documents (PDF): 資格情報のお知らせ, 医療費のお知らせ, 健診結果.
    #[command(subcommand)]
    Documents(DocumentsCommand),
    /// Would this mail be answered? For each file (a mail as received, .eml), says
    /// whether the intake would answer it or which rule judged it a machine's (a bounce,
    /// a report, an auto-reply…), as `/metrics` and the log name them.
    ///
    /// Example: karamail check-mail --sender taro@docomo.ne.jp mail.eml
    CheckMail {
        /// The envelope sender to assume (default: the mail's Return-Path, else From).
        #[arg(long)]
        sender: Option<String>,
        /// The mails to judge.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check the configuration: every problem at once, nothing started.
    ///
    /// Example: karamail --config /etc/karamail/karamail.toml check-config
    CheckConfig,
    /// Send one test mail now through the configured transport.
    ///
    /// Example: karamail send-test-mail admin@example.jp
    SendTestMail { address: String },
    /// Look at and act on the outgoing mail queue.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// DKIM signing keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Print shell completions.
    ///
    /// Example: karamail completions bash > /etc/bash_completion.d/karamail
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    ///
    /// Example: karamail man > /usr/share/man/man1/karamail.1
    Man,
    /// Measure argon2id at karamail's parameters on every core (for the benchmarks).
    ///
    /// Example: karamail hash-rate --seconds 5
    #[command(hide = true)]
    HashRate {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Write the QR code that opens the empty mail to the intake address.
    ///
    /// Example: karamail qr --address kc@example.jp --out-dir qr
    Qr {
        /// Address the mail goes to (default: the first of [smtp] intake_addresses).
        #[arg(long)]
        address: Option<String>,
        /// Subject to put in the mail (optional). One a machine's mail would have (自動応答,
        /// 配信エラー…) is refused: such mails are never answered.
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
        #[command(flatten)]
        pdf: PdfArgs,
    },
    /// List every member with their status.
    ///
    /// Example: karamail members list
    List,
    /// Show one member: status, login ID, addresses, lockout.
    ///
    /// Example: karamail members show 1001
    Show { member_no: String },
    /// Stop a member from logging in (ends their sessions).
    ///
    /// Example: karamail members disable 1001
    Disable { member_no: String },
    /// Let a disabled member log in again.
    ///
    /// Example: karamail members enable 1001
    Enable { member_no: String },
    /// A lost postcard: new temporary credentials (the old ones die), written like an import's.
    ///
    /// Example: karamail members reissue 1001 --postcards reissue-1001.csv
    Reissue {
        member_no: String,
        /// Where to write the new postcard line (must not exist).
        #[arg(long)]
        postcards: PathBuf,
        #[command(flatten)]
        pdf: PdfArgs,
    },
}

/// The postcards also as a print-ready PDF.
#[derive(clap::Args)]
struct PdfArgs {
    /// Also write the postcards as a PDF (must not exist).
    #[arg(long, value_name = "FILE")]
    pdf: Option<PathBuf>,
    /// One はがき a page, or four to an A4 sheet with cut marks.
    #[arg(long, value_enum, default_value = "postcard", requires = "pdf")]
    sheet: Sheet,
}

impl PdfArgs {
    fn option(&self) -> cli::PdfOption<'_> {
        self.pdf.as_deref().map(|path| (path, self.sheet))
    }
}

#[derive(Subcommand)]
enum PostcardsCommand {
    /// Print the postcards CSV of `members import` or `members reissue` as a PDF: one
    /// はがき (100×148 mm) per member, or `--sheet a4` for four to a sheet. The layout
    /// is the template postcard.txt ([site] templates_dir overrides it).
    ///
    /// Example: karamail postcards print postcards.csv --out postcards.pdf
    Print {
        /// The postcards CSV (member_no,name,temp_login_id,temp_password).
        file: PathBuf,
        /// The PDF to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "postcard")]
        sheet: Sheet,
    },
}

#[derive(Subcommand)]
enum NoticesCommand {
    /// Add a notice, shown newest first until its end date.
    ///
    /// Example: karamail notices add --title "健診のご案内" --body "今年度の健診…" --until 2026-12-31
    Add {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
        /// Last day shown (YYYY-MM-DD, Japan time); without it, shown until removed.
        #[arg(long)]
        until: Option<String>,
        /// Mail no one: by default every member who signed up (and did not turn it
        /// off) gets 「新しいお知らせがあります」.
        #[arg(long)]
        no_mail: bool,
    },
    /// List every notice.
    ///
    /// Example: karamail notices list
    List,
    /// Remove a notice by its id (see `list`).
    ///
    /// Example: karamail notices remove 3
    Remove { id: i64 },
}

#[derive(Subcommand)]
enum DkimCommand {
    /// Write a new RSA signing key and print the DNS TXT record to publish.
    ///
    /// Example: karamail dkim keygen --out /etc/karamail/dkim.key --selector km2026
    Keygen {
        /// Where to write the private key (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Default: [mail] dkim_selector.
        #[arg(long)]
        selector: Option<String>,
        /// Default: [mail] dkim_domain, or the domain of [mail] from.
        #[arg(long)]
        domain: Option<String>,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Show outgoing mail, newest first.
    ///
    /// Example: karamail outbox list --status failed
    List {
        /// Only this status: queued, sent, failed, expired (its useful life passed
        /// unsent) or cancelled.
        #[arg(long, value_parser = ["queued", "sent", "failed", "expired", "cancelled"])]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Send a failed or waiting mail again now (without an id: every failed one).
    ///
    /// Example: karamail outbox retry 42
    Retry { id: Option<i64> },
    /// Never send this queued or failed mail (it stays in the list as cancelled).
    ///
    /// Example: karamail outbox cancel 42
    Cancel { id: i64 },
    /// Remove sent mail older than a duration (queued and failed mail is kept).
    ///
    /// Example: karamail outbox purge --older-than 30d
    Purge {
        #[arg(long, default_value = "30d")]
        older_than: karamail::config::HumanDuration,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RecordKind {
    /// 健診結果
    Checkup,
    /// 医療費のお知らせ
    MedicalExpense,
}

#[derive(Clone, Copy, ValueEnum)]
enum DocumentKind {
    /// 資格情報のお知らせ
    Qualification,
    /// 医療費のお知らせ
    MedicalExpense,
    /// 健診結果
    Checkup,
}

#[derive(Subcommand)]
enum DocumentsCommand {
    /// Load PDFs from a folder, each named by its member's number (1001.pdf). A
    /// documents.csv beside them (header file,date,title; optionally member_no) gives
    /// each its date and title; else --date and --title apply to all. Every file is
    /// checked first, then all are stored in one transaction; each member concerned
    /// gets one 「新しいお知らせがあります」 mail.
    ///
    /// Example: karamail documents import --kind qualification --date 2026-11-01 shikaku-2026-11/
    Import {
        #[arg(long, value_enum)]
        kind: DocumentKind,
        /// The documents' date (YYYY-MM-DD) when there is no documents.csv; default today.
        #[arg(long)]
        date: Option<String>,
        /// The documents' title when there is no documents.csv; default the kind's name.
        #[arg(long)]
        title: Option<String>,
        /// The largest file taken, in MB.
        #[arg(long, default_value_t = 10)]
        max_size: u64,
        dir: PathBuf,
    },
    /// List documents (all, or one member's), without their files.
    ///
    /// Example: karamail documents list --member-no 1001
    List {
        #[arg(long)]
        member_no: Option<String>,
    },
    /// Remove a document by its id (see `list`).
    ///
    /// Example: karamail documents remove 12
    Remove { id: i64 },
}

#[derive(Subcommand)]
enum RecordsCommand {
    /// Load records from CSV: header member_no,date,title,body; other columns are shown
    /// as a table on the detail page. UTF-8 or Shift_JIS; one bad row fails the file.
    ///
    /// Example: karamail records import --kind checkup checkups-2026.csv
    Import {
        #[arg(long, value_enum)]
        kind: RecordKind,
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    karamail::files::private_umask();
    karamail::log::init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("karamail: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::CheckConfig => return cli::check_config(cli.config.as_deref()),
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "karamail",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        Command::HashRate { seconds } => {
            return cli::hash_rate(std::time::Duration::from_secs_f64(*seconds));
        }
        Command::Man => {
            return Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?);
        }
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref())?;
    config.database.new_server_key = cli.new_server_key;
    config.database.create_if_missing =
        cli.create_database || matches!(cli.command, Command::Serve);
    match cli.command {
        Command::CheckConfig
        | Command::Completions { .. }
        | Command::Man
        | Command::HashRate { .. } => {
            unreachable!("handled above")
        }
        Command::SendTestMail { address } => cli::send_test_mail(config, &address),
        Command::Dkim(DkimCommand::Keygen {
            out,
            selector,
            domain,
        }) => cli::dkim_keygen(&config, &out, selector.as_deref(), domain.as_deref()),
        Command::Outbox(command) => match command {
            OutboxCommand::List { status, limit } => {
                cli::outbox_list(&config, status.as_deref(), limit)
            }
            OutboxCommand::Retry { id } => cli::outbox_retry(&config, id),
            OutboxCommand::Cancel { id } => cli::outbox_cancel(&config, id),
            OutboxCommand::Purge { older_than } => cli::outbox_purge(&config, older_than),
        },
        Command::Serve => serve(config),
        Command::Members(command) => match command {
            MembersCommand::Import {
                file,
                postcards,
                pdf,
            } => cli::members_import(&config, &file, &postcards, pdf.option()),
            MembersCommand::List => cli::members_list(&config),
            MembersCommand::Show { member_no } => cli::members_show(&config, &member_no),
            MembersCommand::Disable { member_no } => {
                cli::members_set_disabled(&config, &member_no, true)
            }
            MembersCommand::Enable { member_no } => {
                cli::members_set_disabled(&config, &member_no, false)
            }
            MembersCommand::Reissue {
                member_no,
                postcards,
                pdf,
            } => cli::members_reissue(&config, &member_no, &postcards, pdf.option()),
        },
        Command::Notices(command) => match command {
            NoticesCommand::Add {
                title,
                body,
                until,
                no_mail,
            } => cli::notices_add(&config, &title, &body, until.as_deref(), !no_mail),
            NoticesCommand::List => cli::notices_list(&config),
            NoticesCommand::Remove { id } => cli::notices_remove(&config, id),
        },
        Command::Documents(command) => match command {
            DocumentsCommand::Import {
                kind,
                date,
                title,
                max_size,
                dir,
            } => {
                let kind = match kind {
                    DocumentKind::Qualification => documents::Kind::Qualification,
                    DocumentKind::MedicalExpense => documents::Kind::MedicalExpense,
                    DocumentKind::Checkup => documents::Kind::Checkup,
                };
                let options = karamail::documents::Options {
                    kind,
                    date,
                    title,
                    max_bytes: max_size.saturating_mul(1_000_000),
                };
                cli::documents::import(&config, &options, &dir)
            }
            DocumentsCommand::List { member_no } => {
                cli::documents::list(&config, member_no.as_deref())
            }
            DocumentsCommand::Remove { id } => cli::documents::remove(&config, id),
        },
        Command::Report {
            since,
            format,
            chart,
        } => cli::report::report(&config, since.as_deref(), format, chart.as_deref()),
        Command::Retention => cli::report::retention(&config),
        Command::CheckMail { sender, files } => {
            cli::check_mail::check_mail(&config, &files, sender.as_deref())
        }
        Command::Backup { file } => cli::backup::backup(&config, &file),
        Command::Restore { file } => cli::backup::restore(&config, &file),
        Command::Postcards(PostcardsCommand::Print { file, out, sheet }) => {
            cli::postcards::print(&config, &file, &out, sheet)
        }
        Command::Records(RecordsCommand::Import { kind, file }) => {
            let kind = match kind {
                RecordKind::Checkup => Kind::Checkup,
                RecordKind::MedicalExpense => Kind::MedicalExpense,
            };
            cli::records_import(&config, kind, &file)
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
            Ok(())
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    // Blocking work is SQLite calls, `.eml` writes and reading each received mail for
    // a machine's signs: a few threads do it all. Without a bound, hundreds of requests waiting for the
    // connection would each get a thread (and its memory).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(daemon::BLOCKING_THREADS)
        .build()?;
    runtime.block_on(async {
        let daemon = daemon::start(config).await.context("cannot start")?;
        daemon.run_until_signal().await?;
        Ok(())
    })
}
