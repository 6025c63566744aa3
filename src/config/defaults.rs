//! The built-in defaults: what karamail does with no config file at all (loopback
//! ports, files under `karamail-data/`, `.eml` instead of a relay). `systemd/karamail.toml`
//! states the same values; a test keeps the two in step.

use std::net::IpAddr;

use super::*;

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: "127.0.0.1:2525".parse().expect("valid literal"),
            intake_addresses: vec!["kc@localhost".into()],
            hostname: "localhost".into(),
            trusted_relays: vec![IpAddr::from([127, 0, 0, 1]), "::1".parse().expect("valid")],
            max_message_bytes: 1024 * 1024,
            max_connections: 1000,
            max_connections_per_ip: 20,
            max_connections_per_network: 50,
            idle_timeout: HumanDuration::secs(120),
            session_timeout: HumanDuration::secs(600),
            max_errors: 10,
            greeting_delay: HumanDuration(std::time::Duration::from_millis(300)),
            sender_auth: SenderAuthMode::Off,
            dns_servers: Vec::new(),
            upstream_hosts: vec![IpAddr::from([127, 0, 0, 1]), "::1".parse().expect("valid")],
            upstream_authserv_id: String::new(),
            robot_rules_off: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
            public_url: String::new(),
            trusted_proxies: vec![IpAddr::from([127, 0, 0, 1]), "::1".parse().expect("valid")],
            metrics_listen: "127.0.0.1:9101".into(),
            tls_cert: None,
            tls_key: None,
            max_connections: 512,
            max_connections_per_ip: 64,
            max_connections_per_network: 128,
            header_timeout: HumanDuration::secs(5),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: "karamail-data/karamail.db".into(),
            key_file: None,
            create_if_missing: false,
            new_server_key: false,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: "noreply@localhost".into(),
            transport: Transport::File,
            outbox_dir: "karamail-data/outbox".into(),
            relay: String::new(),
            retry_initial: HumanDuration::secs(30),
            retry_max: HumanDuration::secs(3600),
            relay_ca: None,
            relay_connections: 4,
            bulk_per_minute: 600,
            per_session_per_domain: 100,
            relay_timeout: HumanDuration::secs(300),
            charset: super::Charset::Utf8,
            dkim_key: None,
            dkim_selector: "karamail".into(),
            dkim_domain: String::new(),
        }
    }
}

/// Long enough for the rate limits (a day), an abuse inquiry (weeks) and a year's
/// audit; no longer.
impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            signup_requests: HumanDuration::secs(90 * 86_400),
            audit: HumanDuration::secs(365 * 86_400),
            sent_mail: HumanDuration::secs(30 * 86_400),
            expired_links: HumanDuration::secs(7 * 86_400),
        }
    }
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            name: "健幸マイポータル".into(),
            society: "けんこう健康保険組合".into(),
            contact_phone: "03-0000-0000".into(),
            contact_email: "portal@localhost".into(),
            templates_dir: None,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            signup_link_ttl: HumanDuration::secs(3 * 3600),
            login_key_ttl: HumanDuration::secs(10 * 60),
            reset_ttl: HumanDuration::secs(3 * 3600),
            signup_session_ttl: HumanDuration::secs(30 * 60),
            signup_max_attempts: 5,
            password_min_length: 8,
            password_require_lowercase: true,
            password_require_uppercase: false,
            password_require_digit: true,
            session_idle: HumanDuration::secs(30 * 60),
            session_absolute: HumanDuration::secs(12 * 3600),
            login_lockout_after: 5,
            login_lockout_initial: HumanDuration::secs(60),
            login_lockout_max: HumanDuration::secs(3600),
            login_key_max_attempts: 5,
            login_key_resend_cooldown: HumanDuration::secs(60),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            signup_per_address_hour: 3,
            signup_per_address_day: 10,
            signup_per_ip_hour: 30,
            signup_per_ip_day: 200,
            reset_per_address_hour: 3,
            reset_per_ip_hour: 30,
            web_requests_per_ip_minute: 300,
            secret_entries_per_ip_hour: 100,
            hashing_threads: 0,
            hashing_queue: 256,
        }
    }
}
