//! karamail: sign-up for a health-insurance society's member portal, started by an
//! empty mail. Read in pipeline order: `smtp` (mail in) → `signup` → `token` →
//! `outbox` and `mail` (mail out) → `web` (pages by flow) → `db`.

pub mod address;
pub mod charset;
pub mod cli;
pub mod config;
pub mod connections;
pub mod daemon;
pub mod db;
pub mod device;
pub mod dkim;
pub mod dns;
pub mod documents;
pub mod error;
pub mod files;
pub mod flows;
pub mod hashing;
pub mod household;
pub mod jst;
pub mod log;
pub mod mail;
pub mod members;
pub mod metrics;
pub mod outbox;
pub mod password;
pub mod postcards;
pub mod progress;
mod properties;
pub mod qr;
pub mod ratelimit;
pub mod records;
pub mod report;
pub mod secrets;
pub mod shutdown;
pub mod smtp;
pub mod templates;
pub mod tls;
pub mod web;

pub use config::Config;
pub use error::{Error, Result};
