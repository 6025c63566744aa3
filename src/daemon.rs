//! `karamail serve`: the SMTP intake, the web site and the outbox worker in one process.
//! `start` returns once every listener is bound, so tests can run the real daemon
//! in-process on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use crate::config::Config;
use crate::db::{Db, sessions};
use crate::error::Result;
use crate::mail::Mailer;
use crate::outbox::{Sender, Worker};
use crate::secrets::ServerKey;
use crate::smtp::{self, Intake};
use crate::templates::Templates;
use crate::tls::Certificate;
use crate::web::{self, AppState, Site};

/// Threads for blocking work (SQLite calls, file writes, the SMTP handler) in the
/// daemon's runtime: tokio's default of 512 let every request waiting for the one
/// SQLite connection hold a thread.
pub const BLOCKING_THREADS: usize = 32;

/// A running daemon. Dropping it does not stop it; call `shutdown`.
pub struct Daemon {
    pub smtp_addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub http_addr: SocketAddr,
    pub public_url: String,
    intake: Arc<Intake>,
    templates: Arc<Templates>,
    certificates: Vec<Arc<Certificate>>,
    watchdog: Option<Db>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Binds the listeners, opens the database and starts serving. Must be called
/// inside a tokio runtime.
pub async fn start(config: Config) -> Result<Daemon> {
    crate::files::private_umask();
    let robot_rules_off = smtp::robot::rules_off(&config.smtp.robot_rules_off)
        .map_err(crate::error::Error::Config)?;
    let retention = config.retention.clone();
    let config = Arc::new(config);
    let db = Db::open(&config.database.path)?;
    let key = Arc::new(ServerKey::open(
        &db,
        &config.key_file(),
        config.database.new_server_key,
    )?);
    let templates = Arc::new(Templates::new(config.site.templates_dir.as_deref())?);
    let smtp_listener = tokio::net::TcpListener::bind(config.smtp.listen).await?;
    let http_listener = tokio::net::TcpListener::bind(config.http.listen).await?;
    let metrics_listener = match config.http.metrics_listen.parse::<SocketAddr>() {
        Ok(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        Err(_) => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let (smtp_addr, http_addr) = (smtp_listener.local_addr()?, http_listener.local_addr()?);
    let public_url = config.public_url(http_addr);
    let (stop, stopped) = watch::channel(false);

    let sender = Sender::from_config(&config)?;
    let certificate =
        |cert: &Option<std::path::PathBuf>, key: &Option<std::path::PathBuf>| match (cert, key) {
            (Some(cert), Some(key)) => Certificate::load(cert.clone(), key.clone()).map(Some),
            _ => Ok(None),
        };
    let smtp_tls = certificate(&config.smtp.tls_cert, &config.smtp.tls_key)?;
    let http_tls = certificate(&config.http.tls_cert, &config.http.tls_key)?;
    let acceptor =
        |cert: &Option<Arc<Certificate>>| cert.as_ref().map(|c| c.acceptor()).transpose();
    let (smtp_acceptor, http_acceptor) = (acceptor(&smtp_tls)?, acceptor(&http_tls)?);
    let sender_auth = crate::smtp::sender_auth::SenderAuth::from_config(&config.smtp)?;
    tracing::info!(
        smtp = %smtp_addr,
        intake = %config.smtp.intake_addresses.join(","),
        web = %public_url,
        database = %config.database.path.display(),
        mail_out = %sender.describe(),
        metrics = %metrics_addr.map_or("off".to_string(), |a| format!("http://{a}/metrics")),
        "karamail listening"
    );
    for warning in config.warnings() {
        tracing::warn!("WARNING: {warning}");
    }
    let mailer = Mailer {
        templates: templates.clone(),
        config: config.clone(),
        public_url: public_url.clone(),
        dkim: crate::dkim::load(&config.mail)?,
        key: key.clone(),
    };
    mailer.check_charset()?;
    let worker = Worker {
        db: db.clone(),
        sender,
        mailer: Arc::new(mailer),
        wake: db.mail_queued(),
        retry_initial: config.mail.retry_initial.0,
        retry_max: config.mail.retry_max.0,
        lanes: config.mail.relay_connections,
        bulk_per_minute: config.mail.bulk_per_minute,
    };
    let state = Arc::new(AppState {
        config: config.clone(),
        db: db.clone(),
        templates: templates.clone(),
        public_url: public_url.clone(),
        limits: web::WebLimits::new(&config),
        views: Default::default(),
        key,
        hashing: crate::hashing::HashPool::new(
            config.limits.hashing_threads,
            config.limits.hashing_queue,
        ),
        passkeys: web::passkeys::Passkeys::new(&public_url, &config.site.name),
    });
    let intake = Arc::new(Intake {
        config,
        db: db.clone(),
        closed: Default::default(),
        sender_auth,
        robot_rules_off,
    });

    let mut tasks = vec![
        tokio::spawn(smtp::serve(
            intake.clone(),
            smtp_listener,
            smtp_acceptor,
            stopped.clone(),
        )),
        tokio::spawn(web::serve(
            state.clone(),
            http_listener,
            Site::Portal,
            http_acceptor,
            stopped.clone(),
        )),
        tokio::spawn(housekeeping(db.clone(), retention, stopped.clone())),
        tokio::spawn(worker.run(stopped.clone())),
    ];
    if let Some(listener) = metrics_listener {
        tasks.push(tokio::spawn(web::serve(
            state,
            listener,
            Site::Metrics,
            None,
            stopped,
        )));
    }
    Ok(Daemon {
        metrics_addr,
        smtp_addr,
        http_addr,
        public_url,
        intake,
        templates,
        certificates: smtp_tls.into_iter().chain(http_tls).collect(),
        watchdog: Some(db),
        stop,
        tasks,
    })
}

/// Every few minutes: forget sessions that ran out (mail scanners open links and
/// leave one each). At start and then daily: retention (`[retention]`).
async fn housekeeping(
    db: Db,
    retention: crate::config::RetentionConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    const DAILY: std::time::Duration = std::time::Duration::from_secs(86_400);
    let mut purged_at: Option<tokio::time::Instant> = None;
    loop {
        match db
            .write(|c| sessions::delete_expired(c, crate::db::now()))
            .await
        {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "cannot remove expired sessions"),
        }
        if purged_at.is_none_or(|at| at.elapsed() >= DAILY) {
            let ages = retention.ages();
            match db
                .write(move |c| crate::db::retention::purge(c, crate::db::now(), &ages))
                .await
            {
                Ok(purged) => {
                    purged_at = Some(tokio::time::Instant::now());
                    tracing::info!(
                        signup_requests = purged.signup_requests,
                        audit = purged.audit,
                        mails = purged.mails,
                        links = purged.links,
                        "retention: rows past their [retention] age purged"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "retention: cannot purge; tried again later"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Pings systemd's watchdog at half its interval, as long as the database answers a
/// read and its writer thread runs. (Not a write: another process holding the write
/// lock for a while — a large import — makes writes wait, not the daemon dead.)
async fn watchdog(db: Db) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = interval / 2;
    loop {
        let alive = db.read(crate::db::stats::ping).await;
        if alive.is_ok() && db.writer_alive() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            tracing::error!("watchdog: the database does not answer");
        }
        tokio::time::sleep(every).await;
    }
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

impl Daemon {
    /// Stops accepting connections and the outbox worker; SMTP sessions still open get
    /// 421 for their next command.
    pub async fn shutdown(self) {
        self.intake.closed.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
        // A mail being sent or a page being rendered finishes; nothing waits longer.
        let all = futures_join(self.tasks);
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("some work did not finish in time; it stays queued for the next start");
        }
    }

    /// Re-reads the template folder and the TLS certificates (SIGHUP). Whatever fails to
    /// load keeps its running version; the first error is returned.
    pub fn reload(&self) -> Result<()> {
        let certificates = self.certificates.iter().map(|c| c.reload());
        std::iter::once(self.templates.reload())
            .chain(certificates)
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    }

    /// Runs until SIGINT or SIGTERM, then shuts down; SIGHUP reloads. Under systemd
    /// (`Type=notify`) it reports READY, STOPPING and, while the database answers,
    /// WATCHDOG.
    pub async fn run_until_signal(self) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut hup) = (
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        );
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let watchdog = self.watchdog.clone().map(|db| tokio::spawn(watchdog(db)));

        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = hup.recv() => match self.reload() {
                    Ok(()) => tracing::info!("SIGHUP: templates and certificates reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: not everything reloaded; what failed stays as it was"),
                },
            }
        }
        tracing::info!("shutting down");
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        if let Some(task) = watchdog {
            task.abort();
        }
        self.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}
