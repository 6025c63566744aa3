//! Progress of a long command (an import, printing postcards, a backup) on stderr: on a
//! terminal a bar with the rate and the time left; otherwise (cron, journald, a pipe)
//! a plain line every 10 % and at least every 10 seconds, so a log shows the job alive.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    done: u64,
    output: Output,
    started: Instant,
}

enum Output {
    Bar(ProgressBar),
    Lines { last: Instant, last_tenth: u64 },
    Quiet,
}

const LINE_EVERY: Duration = Duration::from_secs(10);
const SMALL: u64 = 500;

impl Progress {
    /// `what` names the step ("hashing", "postcards"), `unit` what is counted. Work
    /// under `SMALL` items finishes too soon to report.
    pub fn new(what: &str, unit: &'static str, total: u64) -> Progress {
        let output = match std::io::stderr().is_terminal() {
            _ if total < SMALL => Output::Quiet,
            true => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{msg} [{bar:30}] {pos}/{len} {per_sec}, {eta} left",
                )
                .expect("a valid template")
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_message(what.to_string());
                Output::Bar(bar)
            }
            false => Output::Lines {
                last: Instant::now(),
                last_tenth: 0,
            },
        };
        Progress {
            what: what.into(),
            unit,
            total,
            done: 0,
            output,
            started: Instant::now(),
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        let (done, total) = (self.done, self.total);
        let line = match &mut self.output {
            Output::Bar(bar) => {
                bar.inc(n);
                None
            }
            Output::Lines { last, last_tenth } => {
                let tenth = (done * 10).checked_div(total).unwrap_or(10);
                if tenth > *last_tenth || last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    *last_tenth = tenth;
                    Some(())
                } else {
                    None
                }
            }
            Output::Quiet => None,
        };
        if line.is_some() && done < total {
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs;
        let left = match rate > 0.0 {
            true => format!(
                ", about {} s left",
                ((self.total - self.done.min(self.total)) as f64 / rate).ceil()
            ),
            false => String::new(),
        };
        format!(
            "{}: {}/{} {} ({}%), {rate:.0}/s{left}",
            self.what,
            self.done,
            self.total,
            self.unit,
            (self.done * 100).checked_div(self.total).unwrap_or(100),
        )
    }

    /// Ends the bar; in plain output one last line with the time taken.
    pub fn finish(self) {
        match &self.output {
            Output::Bar(bar) => bar.finish_and_clear(),
            Output::Lines { .. } => eprintln!(
                "{}: {} {} in {:.1} s",
                self.what,
                self.done,
                self.unit,
                self.started.elapsed().as_secs_f64()
            ),
            Output::Quiet => {}
        }
    }
}
