//! Mail out. Every mail is a row in `outbox` first (queued by `mail::queue`); the
//! worker (`worker`) sends due rows through the configured transport (`transport`: our
//! SMTP client for the relay in `relay`, or `.eml` files when there is none), several at
//! once, retrying with backoff. A mail's secrets (link tokens) are made at send time, so
//! they are never at rest in the queue.

mod pace;
mod relay;
mod transport;
mod worker;

pub use transport::{Lane, SendError, Sender};
pub use worker::Worker;
