//! The worker that empties the outbox: a few lanes (`[mail] relay_connections`) take
//! due mails oldest first, each on its own relay connection, so one slow recipient holds
//! up only its own lane. A mail its recipient refuses for now waits for its own retry;
//! while the transport itself fails, every lane waits it out.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::{Notify, watch};

use super::pace::Pace;
use super::transport::{Lane, SendError, Sender};
use crate::db::{self, Db, outbox as queue};
use crate::error::{Error, Result};
use crate::mail::{Composed, Mailer};

/// How long an idle lane sleeps before it looks at the queue again.
const IDLE_LOOK: Duration = Duration::from_secs(1);

pub struct Worker {
    pub db: Db,
    pub sender: Sender,
    pub mailer: Arc<Mailer>,
    pub wake: Arc<Notify>,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Mails under way at once (relay connections).
    pub lanes: usize,
    /// `[mail] bulk_per_minute`.
    pub bulk_per_minute: u32,
}

/// What the lanes share.
struct Shared {
    worker: Worker,
    /// Mails a lane has taken and not yet recorded.
    in_flight: tokio::sync::Mutex<InFlight>,
    /// Transport failures in a row, and until when every lane waits.
    failing: AtomicU32,
    paused_until: Mutex<Option<Instant>>,
    /// Recent policy refusals at RCPT, to tell a relay refusing everyone (several
    /// domains alike) from one domain refusing us.
    refusals: Mutex<Vec<Refusal>>,
    /// How many bulk mails may go now.
    bulk: Mutex<Pace>,
}

/// The mails the lanes have taken and not yet recorded, and which of them are bulk.
#[derive(Default)]
struct InFlight {
    all: HashSet<i64>,
    bulk: HashSet<i64>,
}

impl InFlight {
    fn remove(&mut self, id: i64) {
        self.all.remove(&id);
        self.bulk.remove(&id);
    }
}

/// What a lane took from the queue.
struct Claim {
    mails: Vec<queue::QueuedMail>,
    /// Bulk mail is due but its pace holds it back for now: the lane keeps its
    /// connection for it.
    paced: bool,
}

/// A mail refused at RCPT on policy grounds (see `SendError::policy`).
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    id: i64,
    domain: String,
    code: String,
    at: Instant,
}

/// How long a policy refusal is remembered for comparison.
const REFUSALS_KEPT: Duration = Duration::from_secs(600);

/// What became of one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Yes,
    /// Refused for good, expired, or nothing to send any more.
    Never,
    /// Not now, and not any mail: the transport failed; the queue waits.
    Later,
    /// Not now for this mail alone (its recipient's 450); the others go on.
    MailLater,
    /// Refused for good on policy grounds (kept as failed, for now).
    Refused(Refusal),
}

impl Worker {
    /// Runs the lanes until shutdown; each finishes the mail it has under way.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        // `[mail] relay_connections`: relay connections, or `.eml` batches under way.
        let lanes = self.lanes.max(1);
        let pace = Pace::per_minute(self.bulk_per_minute);
        let shared = Arc::new(Shared {
            worker: self,
            in_flight: Default::default(),
            failing: AtomicU32::new(0),
            paused_until: Mutex::new(None),
            bulk: Mutex::new(pace),
            refusals: Mutex::new(Vec::new()),
        });
        let handles: Vec<_> = (0..lanes)
            .map(|_| tokio::spawn(shared.clone().lane(shutdown.clone())))
            .collect();
        for handle in handles {
            let _ = handle.await;
        }
    }
}

impl Shared {
    /// One lane: takes the oldest due mail no other lane has, sends it, and so on;
    /// sleeps while nothing is due (until a mail is queued, `wake`) or while the
    /// transport fails.
    async fn lane(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut lane = Lane::default();
        while !*shutdown.borrow() {
            let wait = match self.paused_for() {
                Some(wait) => {
                    // Connections go stale over a pause: the next mail opens a new one.
                    self.worker.sender.close(std::mem::take(&mut lane)).await;
                    wait
                }
                None => match self.claim(self.worker.sender.batch()).await {
                    Ok(Claim { mails, .. }) if !mails.is_empty() => {
                        let ids: Vec<i64> = mails.iter().map(|m| m.id).collect();
                        let outcomes = self.worker.send_batch(&mut lane, mails).await;
                        let mut in_flight = self.in_flight.lock().await;
                        let (mut recorded, mut held) = (Vec::new(), 0);
                        for (id, outcome) in ids.into_iter().zip(outcomes) {
                            match outcome {
                                Ok(sent) => {
                                    in_flight.remove(id);
                                    recorded.push(sent);
                                }
                                // Sent or not, its outcome could not be written down: it
                                // stays held, so no lane sends it again before a restart.
                                Err(e) => {
                                    tracing::error!(outbox_id = id, error = %e, "outbox: cannot record a mail; holding it");
                                    held += 1;
                                }
                            }
                        }
                        drop(in_flight);
                        for sent in recorded {
                            self.after(sent).await;
                        }
                        if held == 0 {
                            continue;
                        }
                        // The database refuses writes for now: no more mails are taken
                        // (and sent, unrecorded) until it may be back.
                        Duration::from_secs(1)
                    }
                    // Bulk mail waits for its pace: the connection waits with it.
                    Ok(Claim { paced: true, .. }) => self.lock_bulk().until_next(),
                    Ok(_) => {
                        // Nothing due: an idle connection is not kept.
                        self.worker.sender.close(std::mem::take(&mut lane)).await;
                        self.until_next_due().await
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "outbox: cannot read the queue");
                        Duration::from_secs(1)
                    }
                },
            };
            let paused = self.paused_for().is_some();
            tokio::select! {
                _ = self.worker.wake.notified(), if !paused => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(200))) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.worker.sender.close(lane).await;
    }

    /// Up to `most` of the longest due mails no lane has taken: every mail a member is
    /// waiting for first, then bulk mail as its pace allows and only while a lane is left
    /// for the others (a slow relay must not tie up every lane with bulk). Wakes another
    /// lane if more are due.
    async fn claim(&self, most: usize) -> Result<Claim> {
        let mut in_flight = self.in_flight.lock().await;
        let limit = in_flight.all.len() + most + 1;
        let lanes = self.worker.lanes.max(1);
        let bulk_room = ((lanes - 1).max(1) * most).saturating_sub(in_flight.bulk.len());
        let bulk_allowed = self.lock_bulk().take(most.min(bulk_room), Instant::now());
        let (urgent, bulk) = self
            .worker
            .db
            .read(move |c| {
                let now = db::now();
                // With every bulk place taken, no lane looks at bulk mail (nor waits for it).
                let bulk = match bulk_room {
                    0 => Vec::new(),
                    _ => queue::due(c, now, limit, true)?,
                };
                Ok((queue::due(c, now, limit, false)?, bulk))
            })
            .await
            .inspect_err(|_| self.lock_bulk().give_back(bulk_allowed))?;
        let free = |mails: Vec<queue::QueuedMail>| {
            mails
                .into_iter()
                .filter(|m| !in_flight.all.contains(&m.id))
                .collect::<Vec<_>>()
        };
        let (mut taken, bulk) = (free(urgent), free(bulk));
        let more_due = taken.len() > most;
        taken.truncate(most);
        let room = (most - taken.len()).min(bulk_allowed);
        let bulk_taken = bulk.len().min(room);
        let paced = taken.is_empty() && bulk_taken == 0 && !bulk.is_empty() && bulk_room > 0;
        let bulk: Vec<_> = bulk.into_iter().take(bulk_taken).collect();
        in_flight.bulk.extend(bulk.iter().map(|m| m.id));
        taken.extend(bulk);
        self.lock_bulk().give_back(bulk_allowed - bulk_taken);
        if more_due {
            self.worker.wake.notify_one();
        }
        in_flight.all.extend(taken.iter().map(|m| m.id));
        Ok(Claim {
            mails: taken,
            paced,
        })
    }

    fn lock_bulk(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.bulk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mails to requeue if this refusal, with one of the same code for another
    /// domain lately, shows the relay refusing everyone; None while it may be one
    /// domain's policy (the refusal is remembered).
    fn relay_wide(&self, refusal: Refusal) -> Option<Vec<i64>> {
        let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        relay_wide(&mut refusals, refusal)
    }

    /// How long every lane still waits for a failing transport, if it does.
    fn paused_for(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock().unwrap_or_else(|e| e.into_inner()))?;
        until.checked_duration_since(Instant::now())
    }

    /// Until the next mail no lane holds falls due (at most `IDLE_LOOK`).
    async fn until_next_due(&self) -> Duration {
        let busy: Vec<i64> = self.in_flight.lock().await.all.iter().copied().collect();
        let next = self
            .worker
            .db
            .read(move |c| queue::next_due_at(c, &busy))
            .await
            .ok()
            .flatten();
        // Mail queued by a command beside the daemon (an import's 「新しいお知らせがあります」,
        // `outbox retry`) wakes no lane: it is found within a second.
        next.map_or(IDLE_LOOK, |at| {
            Duration::from_secs((at - db::now()).clamp(0, 60) as u64).min(IDLE_LOOK)
        })
    }

    /// A transport failure pauses every lane, longer with each pause (the lanes that
    /// fail together count once); the first success after it sends every mail that
    /// waited for the transport at once, in order.
    async fn after(&self, sent: Sent) {
        let worker = &self.worker;
        match sent {
            Sent::Refused(refusal) => {
                let Some(ids) = self.relay_wide(refusal) else {
                    return;
                };
                tracing::warn!(
                    mails = ids.len(),
                    "the relay refuses mail to several domains alike: its fault, not the mails'; they wait for it"
                );
                let requeued = worker
                    .db
                    .write(move |c| queue::requeue_for_transport(c, &ids, db::now()))
                    .await;
                if let Err(e) = requeued {
                    tracing::error!(error = %e, "outbox: cannot requeue refused mails");
                }
                Box::pin(self.after(Sent::Later)).await;
            }
            Sent::Later => {
                let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
                if paused.is_some_and(|until| until > Instant::now()) {
                    return;
                }
                let failures = self.failing.fetch_add(1, Ordering::SeqCst) + 1;
                let wait = backoff(failures - 1, worker.retry_initial, worker.retry_max);
                *paused = Some(Instant::now() + wait);
            }
            Sent::Yes if self.failing.swap(0, Ordering::SeqCst) > 0 => {
                *self.paused_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
                match worker
                    .db
                    .write(|c| queue::retry_all_now(c, db::now()))
                    .await
                {
                    Ok(backlog) => {
                        tracing::info!(backlog, "mail transport is back; sending the backlog")
                    }
                    Err(e) => tracing::error!(error = %e, "outbox: cannot requeue the backlog"),
                }
                worker.wake.notify_waiters();
            }
            _ => {}
        }
    }
}

/// A claimed mail made ready to send, or what became of it without sending.
enum Ready {
    Send(lettre::Message),
    /// It could not be built: recorded like a refusal.
    Unsent(SendError),
    /// Nothing more to do (it expired unsent), and whether that was written down.
    Settled(Result<Sent>),
}

/// What to write down about a mail after the transport had its turn.
enum Attempt {
    Tried(std::result::Result<(), SendError>),
    Settled(Result<Sent>),
}

impl Worker {
    /// Sends claimed mails: all are composed at once (their writes — links, keys —
    /// share a commit), handed to the transport together (`Sender::send_all`), and
    /// recorded at once. One outcome per mail, in order.
    async fn send_batch(
        &self,
        lane: &mut Lane,
        mails: Vec<queue::QueuedMail>,
    ) -> Vec<Result<Sent>> {
        let ready = join_all(mails.iter().map(|mail| self.ready(mail))).await;
        let to_send: Vec<(String, &lettre::Message)> = mails
            .iter()
            .zip(&ready)
            .filter_map(|(mail, ready)| match ready {
                Ready::Send(message) => Some((format!("{:08}", mail.id), message)),
                _ => None,
            })
            .collect();
        let mut sent = self.sender.send_all(lane, &to_send).await.into_iter();
        let attempts: Vec<Attempt> = ready
            .into_iter()
            .map(|ready| match ready {
                Ready::Send(_) => Attempt::Tried(sent.next().unwrap_or_else(|| {
                    Err(SendError {
                        message: "the transport gave no outcome".into(),
                        ..Default::default()
                    })
                })),
                Ready::Unsent(error) => Attempt::Tried(Err(error)),
                Ready::Settled(outcome) => Attempt::Settled(outcome),
            })
            .collect();
        join_all(
            mails
                .iter()
                .zip(attempts)
                .map(|(mail, attempt)| async move {
                    match attempt {
                        Attempt::Tried(result) => self.record(mail, result).await,
                        Attempt::Settled(outcome) => outcome,
                    }
                }),
        )
        .await
    }

    /// A mail past its useful life is settled here (never sent late); the others are
    /// composed.
    async fn ready(&self, queued: &queue::QueuedMail) -> Ready {
        let id = queued.id;
        if let Some(life) = self.mailer.useful_life(&queued.kind)
            && db::now() >= queued.created_at + life
        {
            let reason = format!("expired: not sent within {life} s of being queued");
            tracing::warn!(outbox_id = id, kind = %queued.kind, "mail expired unsent; never sent late");
            let marked = self
                .db
                .write(move |c| queue::mark_expired(c, id, &reason))
                .await;
            return Ready::Settled(marked.map(|_| Sent::Never));
        }
        let unsent = |permanent: bool, message: String| {
            Ready::Unsent(SendError {
                permanent,
                transport: false,
                message,
                ..Default::default()
            })
        };
        match self.mailer.compose(&self.db, queued).await {
            Ok(Composed::Mail(message)) => Ready::Send(message),
            Ok(Composed::Obsolete(reason)) => unsent(true, format!("not sent: {reason}")),
            // A mail that cannot be built (an address no sender takes) never will be;
            // it fails alone and the queue goes on.
            Err(e @ Error::Mail(_)) => unsent(true, format!("composing: {e}")),
            Err(e) => unsent(false, format!("composing: {e}")),
        }
    }

    /// Writes down what became of a mail.
    async fn record(
        &self,
        queued: &queue::QueuedMail,
        result: std::result::Result<(), SendError>,
    ) -> Result<Sent> {
        let (id, now) = (queued.id, db::now());
        match result {
            Ok(()) => {
                tracing::info!(outbox_id = id, kind = %queued.kind, "mail sent");
                self.db.write(move |c| queue::mark_sent(c, id, now)).await?;
                Ok(Sent::Yes)
            }
            Err(error) if error.permanent => {
                tracing::warn!(outbox_id = id, error = %error.message, "mail refused for good; kept as failed");
                let policy = error.policy.clone();
                self.db
                    .write(move |c| queue::mark_failed(c, id, &error.message))
                    .await?;
                Ok(match policy {
                    Some(code) => Sent::Refused(Refusal {
                        id,
                        domain: queued
                            .recipient
                            .rsplit_once('@')
                            .map_or("", |(_, d)| d)
                            .to_ascii_lowercase(),
                        code,
                        at: Instant::now(),
                    }),
                    None => Sent::Never,
                })
            }
            Err(error) => {
                let delay = backoff(queued.attempts, self.retry_initial, self.retry_max);
                tracing::warn!(outbox_id = id, error = %error.message, retry_in_s = delay.as_secs(), transport = error.transport, "mail not sent; will retry");
                let next = now + delay.as_secs() as i64;
                let transport = error.transport;
                self.db
                    .write(move |c| queue::mark_retry(c, id, next, &error.message, transport))
                    .await?;
                Ok(if transport {
                    Sent::Later
                } else {
                    Sent::MailLater
                })
            }
        }
    }
}

/// See `Shared::relay_wide`.
fn relay_wide(refusals: &mut Vec<Refusal>, refusal: Refusal) -> Option<Vec<i64>> {
    refusals.retain(|r| r.at.elapsed() < REFUSALS_KEPT);
    let alike = |r: &Refusal| r.code == refusal.code && r.domain != refusal.domain;
    if !refusals.iter().any(alike) {
        refusals.push(refusal);
        return None;
    }
    let mut ids: Vec<i64> = refusals
        .iter()
        .filter(|r| r.code == refusal.code)
        .map(|r| r.id)
        .collect();
    refusals.retain(|r| r.code != refusal.code);
    ids.push(refusal.id);
    Some(ids)
}

/// initial, 2×, 4×, … up to `max`.
fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    initial
        .saturating_mul(2u32.saturating_pow(attempts.min(20)))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(id: i64, domain: &str) -> Refusal {
        Refusal {
            id,
            domain: domain.into(),
            code: "5.7.1".into(),
            at: Instant::now(),
        }
    }

    #[test]
    fn one_domains_policy_is_its_own_and_several_domains_alike_are_the_relays() {
        let mut seen = Vec::new();
        assert_eq!(relay_wide(&mut seen, refusal(1, "strict.example")), None);
        assert_eq!(relay_wide(&mut seen, refusal(2, "strict.example")), None);
        assert_eq!(
            relay_wide(&mut seen, refusal(3, "other.example")),
            Some(vec![1, 2, 3])
        );
        assert!(seen.is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (initial, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(backoff(0, initial, max).as_secs(), 30);
        assert_eq!(backoff(1, initial, max).as_secs(), 60);
        assert_eq!(backoff(3, initial, max).as_secs(), 240);
        assert_eq!(backoff(50, initial, max).as_secs(), 3600);
    }
}
