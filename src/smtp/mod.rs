//! Mail in: karamail's own SMTP listener. `server` is the tokio accept loop and the
//! connection I/O (limits, timeouts, the null sender, bare newlines); `handler` is
//! `mailin`'s state machine, which decides the protocol and tells the loop what it
//! learned; `transaction` is what the loop keeps from `MAIL` to the final dot, where it
//! judges the mail (`autoreply`: may its sender be answered? `robot`: did a machine
//! send it?) and stores it.

pub mod autoreply;
mod handler;
mod header;
mod relayed;
pub mod robot;
pub mod sender_auth;
mod server;
mod transaction;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::Config;
use crate::db::Db;

pub use server::serve;

/// What every connection shares.
pub struct Intake {
    pub config: Arc<Config>,
    pub db: Db,
    /// Set at shutdown: from then on HELO and MAIL get 421 (a transaction under way
    /// is finished).
    pub closed: AtomicBool,
    pub sender_auth: sender_auth::SenderAuth,
    /// `[smtp] robot_rules_off`, checked.
    pub robot_rules_off: Vec<robot::Rule>,
}
