//! Password hashing (argon2id: ~20 ms and 19 MiB each) on a pool of known size with a
//! bounded queue. A few hundred logins at once — no valid ID needed — once ran a hash
//! each on its own blocking thread and took the machine's memory; now at most
//! `threads` hashes run (one per core), at most `queued` wait, and anyone past that is
//! told at once that the site is busy (a Japanese 503 with `Retry-After`).
//!
//! The pool's threads are its own and few: each keeps one allocator arena, so memory
//! stays at a few arenas' worth however many requests come.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// The pool. Cloning shares it.
#[derive(Clone)]
pub struct HashPool {
    jobs: mpsc::Sender<Job>,
    /// One permit a job, running or waiting: `threads + queued` in all.
    places: Arc<Semaphore>,
    stats: Arc<Stats>,
    threads: usize,
}

/// What the pool has seen, for `/metrics` and the tests.
#[derive(Default)]
pub struct Stats {
    running: AtomicUsize,
    peak: AtomicUsize,
    done: AtomicU64,
    refused: AtomicU64,
}

impl Stats {
    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Requests told the site is busy.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// A place in the pool, taken before the work it is for begins (a login attempt is
/// counted only once it is sure to be checked).
pub struct Ticket {
    pool: HashPool,
    permit: OwnedSemaphorePermit,
}

impl HashPool {
    /// `threads` hashing threads (0: one per core) and room for `queued` more waiting.
    pub fn new(threads: usize, queued: usize) -> HashPool {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("karamail-hash-{n}"))
                .spawn(move || {
                    loop {
                        let job = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            // A job catches its own panic (`Ticket::run`): the thread
                            // lives on for the next.
                            Ok(job) => job(),
                            Err(_) => return, // the pool is gone
                        }
                    }
                })
                .expect("cannot start a hashing thread");
        }
        HashPool {
            jobs,
            places: Arc::new(Semaphore::new(threads + queued)),
            stats: Arc::default(),
            threads,
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A place for one hash, or `Error::Busy` at once when every place is taken.
    pub fn reserve(&self) -> Result<Ticket> {
        match self.places.clone().try_acquire_owned() {
            Ok(permit) => Ok(Ticket {
                pool: self.clone(),
                permit,
            }),
            Err(_) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                Err(Error::Busy)
            }
        }
    }

    /// Runs `work` on the pool (`reserve` and `Ticket::run` in one).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.reserve()?.run(work).await
    }
}

impl Ticket {
    /// Runs `work` on one of the pool's threads, waiting for a free one.
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let stats = self.pool.stats.clone();
        let permit = self.permit;
        let job: Job = Box::new(move || {
            let running = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
            stats.peak.fetch_max(running, Ordering::SeqCst);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            stats.running.fetch_sub(1, Ordering::SeqCst);
            stats.done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            // A panic: no answer, and the caller hears the job failed.
            if let Ok(result) = result {
                let _ = answer.send(result);
            }
        });
        self.pool
            .jobs
            .send(job)
            .map_err(|_| Error::Task("the hashing pool has stopped".into()))?;
        answered
            .await
            .map_err(|_| Error::Task("a hashing job failed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_run_than_threads_and_no_more_wait_than_the_queue() {
        let pool = HashPool::new(2, 3);
        let gate = Arc::new(std::sync::Barrier::new(3));
        let tickets: Vec<_> = (0..5).map(|_| pool.reserve().unwrap()).collect();
        assert!(
            matches!(pool.reserve(), Err(Error::Busy)),
            "a sixth is refused"
        );
        assert_eq!(pool.stats().refused(), 1);
        let handles: Vec<_> = tickets
            .into_iter()
            .enumerate()
            .map(|(n, ticket)| {
                let gate = gate.clone();
                tokio::spawn(ticket.run(move || {
                    if n < 2 {
                        gate.wait(); // the first two hold both threads
                    }
                    n
                }))
            })
            .collect();
        tokio::task::spawn_blocking(move || gate.wait())
            .await
            .unwrap();
        let mut answers = Vec::new();
        for handle in handles {
            answers.push(handle.await.unwrap().unwrap());
        }
        assert_eq!(answers, [0, 1, 2, 3, 4]);
        assert_eq!(pool.stats().peak(), 2);
        assert_eq!(pool.stats().done(), 5);
        assert_eq!(pool.run(|| 7).await.unwrap(), 7, "places come back");
    }
}
