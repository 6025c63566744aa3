//! Configuration: one TOML file, every key optional, then `KARAMAIL_<SECTION>_<KEY>`
//! environment overrides, validated once at start and passed around in `AppState`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::address::{self, Address};

mod defaults;
mod duration;
pub use duration::HumanDuration;

/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "KARAMAIL_CONFIG";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub smtp: SmtpConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub mail: MailConfig,
    pub site: SiteConfig,
    pub policy: PolicyConfig,
    pub limits: LimitsConfig,
    pub postcards: PostcardsConfig,
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub listen: SocketAddr,
    /// The addresses members send the empty mail to.
    pub intake_addresses: Vec<String>,
    /// Name in the greeting and in EHLO replies.
    pub hostname: String,
    /// MTAs in front of karamail: their own address is not the member's, so per-IP
    /// limits use the client address they recorded in `Received:` instead.
    pub trusted_relays: Vec<IpAddr>,
    pub max_message_bytes: usize,
    /// Connections served at once, in all and from one client address (trusted relays
    /// have no per-address cap).
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// From one client network (an IPv4 /24, an IPv6 /64); trusted relays: no cap.
    pub max_connections_per_network: usize,
    /// Longest wait for a client's next line, and for a whole session.
    pub idle_timeout: HumanDuration,
    pub session_timeout: HumanDuration,
    /// Error replies in one session before it is closed.
    pub max_errors: u32,
    /// How long to wait before the greeting; a client that talks first is refused.
    pub greeting_delay: HumanDuration,
    /// Whether a sender is authentic before we reply: "spf", "upstream" or "off".
    pub sender_auth: SenderAuthMode,
    /// DNS servers for "spf" (`ip:port`); empty: the system's resolv.conf.
    pub dns_servers: Vec<SocketAddr>,
    /// For "upstream": the MTAs whose `Authentication-Results` (with this authserv-id)
    /// are believed.
    pub upstream_hosts: Vec<IpAddr>,
    pub upstream_authserv_id: String,
    /// Robot rules not to read (`karamail_robot_mails_total`'s rule names), for one
    /// seen to misfire; checked at start (`smtp::robot::rules_off`).
    pub robot_rules_off: Vec<String>,
    /// PEM certificate chain and key: with them, STARTTLS is offered.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderAuthMode {
    Off,
    Spf,
    Upstream,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The address members see, used in mailed links. Empty: `http://<listen>`.
    pub public_url: String,
    /// `/metrics` and `/healthz` for the operator, on their own (loopback) listener.
    /// Empty: no metrics listener.
    pub metrics_listen: String,
    /// PEM certificate chain and key: with them, the web listener speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Reverse proxies in front: for requests from them the client address comes from
    /// `X-Forwarded-For`; from anyone else that header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Web connections served at once, and from one client address (a trusted proxy
    /// speaks for many: no cap); over them a connection is closed at once.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// From one client network (an IPv4 /24, an IPv6 /64).
    pub max_connections_per_network: usize,
    /// Longest wait for a request's header, on a new connection or between requests:
    /// an idle socket is closed after it.
    pub header_timeout: HumanDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    /// The server key the database's secrets are hashed under; `None`: `karamail.key`
    /// beside the database.
    pub key_file: Option<PathBuf>,
    /// Not in the file: whether this run may create a missing database (`serve`, or a
    /// command given `--create-database`); others refuse, so that a wrong folder or a
    /// typo cannot split the data.
    #[serde(skip)]
    pub create_if_missing: bool,
    /// Not in the file: `--new-server-key`, the sysadmin's word that the server key is
    /// lost for good and the one in `key_file` (made if missing) is to be used.
    #[serde(skip)]
    pub new_server_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    File,
    Smtp,
}

/// How mail text is written: UTF-8, or ISO-2022-JP (7-bit JIS) for members whose
/// feature phones show nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Charset {
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "iso-2022-jp")]
    Iso2022Jp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub from: String,
    pub transport: Transport,
    pub outbox_dir: PathBuf,
    /// `smtp://host:port`, `smtp://host?tls=required` (STARTTLS) or `smtps://host`.
    pub relay: String,
    pub retry_initial: HumanDuration,
    pub retry_max: HumanDuration,
    /// PEM CA certificate to trust for the relay besides the system's roots (a relay
    /// with a certificate from a private CA).
    pub relay_ca: Option<PathBuf>,
    /// How many mails go to the relay at once, each on its own connection, so that one
    /// slow recipient does not hold up the queue.
    pub relay_connections: usize,
    /// Bulk mail (「新しいお知らせがあります」 after an import) goes out at most this
    /// many a minute, after every due mail a member is waiting for.
    pub bulk_per_minute: u32,
    /// A relay connection is closed and a new one opened before its recipients at one
    /// domain pass this (docomo asks for no more than 100 per SMTP session).
    pub per_session_per_domain: u32,
    /// How long the relay may take to answer one step (connect, TLS, a command); the
    /// final dot may take twice as long. A relay that stops answering is then a
    /// transport failure, not a lane stuck for good.
    pub relay_timeout: HumanDuration,
    /// "utf-8" (the default) or "iso-2022-jp".
    pub charset: Charset,
    /// DKIM: an RSA private key (PKCS#1 PEM, from `karamail dkim keygen`); unset: unsigned.
    pub dkim_key: Option<PathBuf>,
    pub dkim_selector: String,
    /// The signing domain; empty: the domain of `from`.
    pub dkim_domain: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    pub name: String,
    /// The society itself, which signs every mail and page.
    pub society: String,
    pub contact_phone: String,
    pub contact_email: String,
    /// A folder whose files replace the built-in templates of the same name (pages,
    /// `mail/*.txt`, `style.css`); re-read on SIGHUP.
    pub templates_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub signup_link_ttl: HumanDuration,
    pub login_key_ttl: HumanDuration,
    pub reset_ttl: HumanDuration,
    /// How long the pages after the postcard check stay open.
    pub signup_session_ttl: HumanDuration,
    /// Wrong postcard entries before a sign-up link is void.
    pub signup_max_attempts: u32,
    pub password_min_length: usize,
    pub password_require_lowercase: bool,
    pub password_require_uppercase: bool,
    pub password_require_digit: bool,
    /// How long a logged-in member may be idle, and the longest a login lasts.
    pub session_idle: HumanDuration,
    pub session_absolute: HumanDuration,
    /// Wrong passwords for one login ID before it is locked; each further one doubles
    /// the lock, from `login_lockout_initial` up to `login_lockout_max`.
    pub login_lockout_after: u32,
    pub login_lockout_initial: HumanDuration,
    pub login_lockout_max: HumanDuration,
    /// Wrong one-time keys before the login attempt is void.
    pub login_key_max_attempts: u32,
    /// Shortest time between two 暗証キーの再請求.
    pub login_key_resend_cooldown: HumanDuration,
}

/// How long personal data is kept (health data is 要配慮個人情報): rows older than these
/// are purged daily by the daemon (and by `karamail retention`), counted first.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Sign-up requests (addresses, client addresses, outcomes).
    pub signup_requests: HumanDuration,
    /// The audit trail (logins, imports, downloads…).
    pub audit: HumanDuration,
    /// Records of mail whose life is over (sent, failed, expired, cancelled).
    pub sent_mail: HumanDuration,
    /// Links, counted from when they expired.
    pub expired_links: HumanDuration,
}

impl RetentionConfig {
    pub fn ages(&self) -> crate::db::retention::Ages {
        crate::db::retention::Ages {
            signup_requests: self.signup_requests.as_secs(),
            audit: self.audit.as_secs(),
            sent_mail: self.sent_mail.as_secs(),
            expired_links: self.expired_links.as_secs(),
        }
    }
}

/// `karamail postcards print`: the typefaces. Unset, the first Debian font found
/// (IPAex Gothic, IPA Gothic or Noto Sans CJK; DejaVu Sans Mono for IDs and passwords).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostcardsConfig {
    /// A Japanese TrueType or OpenType font (`.ttf`, `.otf`, or a `.ttc`'s first face).
    pub font: Option<PathBuf>,
    /// A monospaced font whose 0/O and 1/l differ, for the temporary ID and password.
    pub mono_font: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub signup_per_address_hour: u32,
    pub signup_per_address_day: u32,
    pub signup_per_ip_hour: u32,
    pub signup_per_ip_day: u32,
    pub reset_per_address_hour: u32,
    pub reset_per_ip_hour: u32,
    /// Web requests from one client address in a minute (then 429).
    pub web_requests_per_ip_minute: u32,
    /// Secret entries (login, 暗証キー, postcard, temporary password) from one client
    /// address in an hour, whichever account they are for.
    pub secret_entries_per_ip_hour: u32,
    /// Password hashes (argon2id, 19 MiB each) run at once: 0 for one per core.
    pub hashing_threads: usize,
    /// Password checks that may wait for a hashing thread; past them a member is told
    /// at once that the site is busy (503).
    pub hashing_queue: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// The absolute folder a config file lies in.
fn config_folder(file: &Path) -> PathBuf {
    let folder = file.parent().unwrap_or(Path::new(""));
    std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf())
}

impl MailConfig {
    /// The domain of `from`: the one members allow in docomo/au/SoftBank spam settings.
    pub fn from_domain(&self) -> String {
        let address = self.from.trim().trim_end_matches('>');
        address
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default()
    }
}

impl Config {
    /// Loads the file (if any), applies environment overrides and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                (text, path.display().to_string())
            }
            None => (String::new(), "(defaults)".to_string()),
        };
        let vars = std::env::vars().filter(|(name, _)| name.starts_with("KARAMAIL_"));
        let mut config = Config::from_parts(&text, &origin, vars)?;
        if let Some(path) = path {
            config.resolve_paths(&config_folder(path));
        }
        Ok(config)
    }

    /// Relative paths in a config file mean paths beside it, whatever folder the
    /// command runs in: the daemon and a sysadmin's command see one database.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.database.path);
        resolve(&mut self.mail.outbox_dir);
        let optional = [
            &mut self.database.key_file,
            &mut self.mail.relay_ca,
            &mut self.mail.dkim_key,
            &mut self.site.templates_dir,
            &mut self.postcards.font,
            &mut self.postcards.mono_font,
            &mut self.smtp.tls_cert,
            &mut self.smtp.tls_key,
            &mut self.http.tls_cert,
            &mut self.http.tls_key,
        ];
        for path in optional.into_iter().flatten() {
            resolve(path);
        }
    }

    /// Where the server key is kept (see `secrets::ServerKey`).
    pub fn key_file(&self) -> PathBuf {
        self.database
            .key_file
            .clone()
            .unwrap_or_else(|| self.database.path.with_file_name("karamail.key"))
    }

    /// Every file and folder the configuration names, for `check-config`.
    pub fn paths(&self) -> Vec<(&'static str, &Path)> {
        let mut paths = vec![
            ("[database] path", self.database.path.as_path()),
            ("[mail] outbox_dir", self.mail.outbox_dir.as_path()),
        ];
        let optional = [
            ("[database] key_file", &self.database.key_file),
            ("[mail] relay_ca", &self.mail.relay_ca),
            ("[mail] dkim_key", &self.mail.dkim_key),
            ("[site] templates_dir", &self.site.templates_dir),
            ("[postcards] font", &self.postcards.font),
            ("[postcards] mono_font", &self.postcards.mono_font),
            ("[smtp] tls_cert", &self.smtp.tls_cert),
            ("[smtp] tls_key", &self.smtp.tls_key),
            ("[http] tls_cert", &self.http.tls_cert),
            ("[http] tls_key", &self.http.tls_key),
        ];
        for (name, path) in optional {
            if let Some(path) = path {
                paths.push((name, path.as_path()));
            }
        }
        paths
    }

    /// Parses TOML text with the given environment overrides, then validates.
    /// Paths stay as written (see `resolve_paths`).
    pub fn from_parts(
        text: &str,
        origin: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        };
        let mut table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        for (name, value) in env {
            apply_env_override(&mut table, &name, &value)?;
        }
        let config: Config = toml::Value::Table(table).try_into().map_err(parse_error)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.smtp.intake_addresses.is_empty() {
            problems.push("[smtp] intake_addresses: at least one address is needed".into());
        }
        for intake in &self.smtp.intake_addresses {
            if Address::parse(intake).is_err() {
                problems.push(format!(
                    "[smtp] intake_addresses: {intake:?} is not a mail address"
                ));
            }
        }
        if self.smtp.max_message_bytes < 1024 {
            problems.push("[smtp] max_message_bytes: must be at least 1024".into());
        }
        // The rate limits count a day of sign-up requests and of sent mail back.
        let retention = &self.retention;
        for (key, age, least) in [
            ("signup_requests", retention.signup_requests, 86_400),
            ("audit", retention.audit, 86_400),
            ("sent_mail", retention.sent_mail, 86_400),
            ("expired_links", retention.expired_links, 3_600),
        ] {
            if age.as_secs() < least {
                problems.push(format!(
                    "[retention] {key}: at least {} (the rate limits and open links need them)",
                    HumanDuration::secs(least as u64).japanese()
                ));
            }
        }
        if self.http.max_connections == 0
            || self.http.max_connections_per_ip == 0
            || self.http.max_connections_per_network == 0
        {
            problems.push(
                "[http] max_connections, max_connections_per_ip and max_connections_per_network: must be at least 1".into(),
            );
        }
        if self.smtp.max_connections_per_network == 0 {
            problems.push("[smtp] max_connections_per_network: must be at least 1".into());
        }
        if self.smtp.max_connections == 0 || self.smtp.max_connections_per_ip == 0 {
            problems.push(
                "[smtp] max_connections and max_connections_per_ip: must be at least 1".into(),
            );
        }
        if self.smtp.sender_auth == SenderAuthMode::Upstream
            && self.smtp.upstream_authserv_id.trim().is_empty()
        {
            problems.push("[smtp] upstream_authserv_id: needed with sender_auth = \"upstream\" (the name your MTA writes first in Authentication-Results)".into());
        }
        if self.smtp.max_errors == 0 {
            problems.push("[smtp] max_errors: must be at least 1".into());
        }
        if !self.http.public_url.is_empty() && !is_http_url(&self.http.public_url) {
            problems.push(format!(
                "[http] public_url: {:?} must start with http:// or https:// and name a host",
                self.http.public_url
            ));
        }
        // It goes into every mailed link and every page: nothing that could end a line,
        // a header, an attribute or a URL may be in it.
        if self
            .http
            .public_url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "\"<>\\^`{|}".contains(c))
        {
            problems.push(format!(
                "[http] public_url: {:?} has a control character, a space or one of \"<>\\^`{{|}}; write the URL as a browser's address bar shows it",
                self.http.public_url
            ));
        }
        if !self.http.metrics_listen.is_empty()
            && self.http.metrics_listen.parse::<SocketAddr>().is_err()
        {
            problems.push(format!(
                "[http] metrics_listen: {:?} is not ip:port (or \"\" for none)",
                self.http.metrics_listen
            ));
        }
        if let Some(dir) = self.site.templates_dir.as_ref().filter(|d| !d.is_dir()) {
            problems.push(format!(
                "[site] templates_dir: {} is not a folder",
                dir.display()
            ));
        }
        for (section, cert, key) in [
            ("smtp", &self.smtp.tls_cert, &self.smtp.tls_key),
            ("http", &self.http.tls_cert, &self.http.tls_key),
        ] {
            if cert.is_some() != key.is_some() {
                problems.push(format!(
                    "[{section}] tls_cert and tls_key: give both or neither"
                ));
            }
        }
        if Address::parse(&self.mail.from).is_err() {
            problems.push(format!(
                "[mail] from: {:?} is not a mail address",
                self.mail.from
            ));
        }
        match self.mail.transport {
            Transport::Smtp if self.mail.relay.is_empty() => problems
                .push("[mail] relay: needed when transport = \"smtp\" (e.g. smtp://127.0.0.1:25)".into()),
            Transport::Smtp if !is_relay_url(&self.mail.relay) => problems.push(format!(
                "[mail] relay: {:?} must be smtp://host[:port][?tls=required] or smtps://host[:port]",
                self.mail.relay
            )),
            _ => {}
        }
        if !(1..=32).contains(&self.mail.relay_connections) {
            problems.push("[mail] relay_connections: from 1 to 32".into());
        }
        if self.mail.bulk_per_minute == 0 {
            problems.push("[mail] bulk_per_minute: at least 1".into());
        }
        if self.mail.per_session_per_domain == 0 {
            problems.push("[mail] per_session_per_domain: at least 1".into());
        }
        if self.mail.retry_initial.0 > self.mail.retry_max.0 {
            problems.push("[mail] retry_initial: must not be longer than retry_max".into());
        }
        if self.policy.password_min_length < 8 || self.policy.password_min_length > 64 {
            problems.push("[policy] password_min_length: must be between 8 and 64".into());
        }
        if self.policy.signup_max_attempts == 0 {
            problems.push("[policy] signup_max_attempts: must be at least 1".into());
        }
        for (name, value) in [
            ("site] name", &self.site.name),
            ("site] society", &self.site.society),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("[{name}: must not be empty"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The public base URL without a trailing slash, given where the web listener is.
    /// What is allowed but most likely a mistake, for the log at start and
    /// `check-config`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Ok(addr) = self.http.metrics_listen.parse::<SocketAddr>()
            && !addr.ip().is_loopback()
        {
            warnings.push(format!(
                "[http] metrics_listen = \"{addr}\" is not a loopback address: /metrics (sign-up and login counts, outbox state) is open to whoever reaches it, without a password; keep it on 127.0.0.1 and let Prometheus come through a tunnel or a proxy that checks who asks"
            ));
        }
        warnings
    }

    pub fn public_url(&self, http_addr: SocketAddr) -> String {
        if self.http.public_url.is_empty() {
            let scheme = if self.http.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{http_addr}")
        } else {
            self.http.public_url.trim_end_matches('/').to_string()
        }
    }

    pub fn is_intake_address(&self, candidate: &str) -> bool {
        self.smtp
            .intake_addresses
            .iter()
            .any(|intake| address::same_mailbox(intake, candidate))
    }
}

/// `KARAMAIL_HTTP_LISTEN=0.0.0.0:80` sets `[http] listen`. The value is read as TOML
/// when it parses as such (numbers, booleans, arrays) and as a plain string otherwise.
fn apply_env_override(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    const SECTIONS: [&str; 9] = [
        "smtp",
        "http",
        "database",
        "mail",
        "site",
        "policy",
        "limits",
        "postcards",
        "retention",
    ];
    let Some(rest) = name.strip_prefix("KARAMAIL_") else {
        return Ok(());
    };
    let rest = rest.to_ascii_lowercase();
    let Some((section, key)) = SECTIONS.iter().find_map(|s| {
        rest.strip_prefix(&format!("{s}_"))
            .map(|key| (*s, key.to_string()))
    }) else {
        if name == CONFIG_ENV {
            return Ok(());
        }
        return Err(ConfigError::Env {
            name: name.into(),
            message: format!(
                "unknown section; expected KARAMAIL_<{}>_<KEY>",
                SECTIONS.join("|").to_uppercase()
            ),
        });
    };
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let entry = table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(section_table) => {
            section_table.insert(key, parsed);
            Ok(())
        }
        _ => Err(ConfigError::Env {
            name: name.into(),
            message: format!("[{section}] is not a table"),
        }),
    }
}

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

fn is_relay_url(url: &str) -> bool {
    ["smtp://", "smtps://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_parts(text, "test.toml", env.collect::<Vec<_>>().into_iter())
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let config = load("", &[]).unwrap();
        assert_eq!(config.smtp.listen.to_string(), "127.0.0.1:2525");
        assert_eq!(config.smtp.intake_addresses, ["kc@localhost"]);
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database.path,
            PathBuf::from("karamail-data/karamail.db")
        );
        assert_eq!(
            config.mail.outbox_dir,
            PathBuf::from("karamail-data/outbox")
        );
        assert_eq!(config.mail.transport, Transport::File);
        assert_eq!(
            config.policy.signup_link_ttl.0,
            Duration::from_secs(3 * 3600)
        );
        assert_eq!(config.policy.login_key_ttl.0, Duration::from_secs(600));
    }

    #[test]
    fn the_shipped_example_config_states_the_defaults() {
        let mut example = load(include_str!("../../systemd/karamail.toml"), &[]).unwrap();
        // Installed, its state is the service's, wherever a command runs.
        assert_eq!(
            example.database.path,
            Path::new("/var/lib/karamail/karamail.db")
        );
        assert_eq!(
            example.mail.outbox_dir,
            Path::new("/var/lib/karamail/outbox")
        );
        let defaults = Config::default();
        example.database.path = defaults.database.path.clone();
        example.mail.outbox_dir = defaults.mail.outbox_dir.clone();
        assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn file_and_environment_are_merged() {
        let config = load(
            "[smtp]\nintake_addresses = [\"kc@example.jp\"]\n[policy]\nsignup_link_ttl = \"2h\"\n",
            &[
                ("KARAMAIL_HTTP_LISTEN", "0.0.0.0:80"),
                ("KARAMAIL_SITE_NAME", "AB健康マイポータル"),
            ],
        )
        .unwrap();
        assert_eq!(config.smtp.intake_addresses, ["kc@example.jp"]);
        assert_eq!(config.policy.signup_link_ttl.as_secs(), 7200);
        assert_eq!(config.http.listen.port(), 80);
        assert_eq!(config.site.name, "AB健康マイポータル");
    }

    #[test]
    fn mistakes_are_named_precisely() {
        let typo = load("[smtp]\nlisen = \"1.2.3.4:25\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(typo.contains("lisen"), "{typo}");
        let duration = load("[policy]\nsignup_link_ttl = \"3 hours\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(duration.contains("not a duration"), "{duration}");
        let all = load("[mail]\ntransport = \"smtp\"\nfrom = \"nobody\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            all.contains("[mail] relay") && all.contains("[mail] from"),
            "{all}"
        );
        let env = load("", &[("KARAMAIL_NOPE_X", "1")])
            .unwrap_err()
            .to_string();
        assert!(env.contains("KARAMAIL_NOPE_X"), "{env}");
    }
}
