//! What happens, one module per member flow. A step is a function that takes the
//! transaction it runs in (`Db::write` gives one, and commits it) and returns an
//! outcome; the SMTP and web handlers only parse their input, call the step and pick
//! the reply or page. Mail a step queues (`mail::queue`) wakes the outbox once the
//! transaction commits.

pub mod address;
pub mod link;
pub mod login;
pub mod login_key;
pub mod news;
pub mod passkey;
pub mod profile;
pub mod register;
pub mod reset;
pub mod signup_request;
