//! karamail end to end: the real daemon in-process, driven over real SMTP and HTTP.

mod bad_input;
mod browser;
mod bulk_mail;
mod cli;
mod cli_backup;
mod cli_documents;
mod cli_postcards;
mod cli_report;
mod crash;
mod dkim;
mod documents;
mod login_flow;
mod login_notices;
mod mail_audit;
mod outbox;
mod passkeys_http;
mod profile_flow;
mod reset_flow;
mod robots;
mod sender_auth;
mod signup_flow;
mod smtp_abuse;
mod smtp_intake;
mod tls;
mod util;
mod web_abuse;
