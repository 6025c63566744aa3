//! The SMTP load generator of `bench/smtp-throughput.sh`: empty mails, one connection
//! each, from many parallel clients, to any SMTP server (karamail, smtp-sink, aiosmtpd),
//! so every server is measured by the same client in the same run.
//!
//! Unlike Postfix's `smtp-source`, every mail has its own envelope sender and the
//! connections come from many loopback addresses (127.1.x.y), as a wave of sign-ups
//! from many members through many MTAs would: karamail's per-address and per-client
//! counts then see what they would see in real life, not one sender with 20,000 mails.
//!
//! ```text
//! smtp_load --server 127.0.0.1:2525 --clients 20 --messages 5000
//!           [--rate 1000] [--to kc@localhost] [--tag run1] [--source-ips 1000]
//!           [--eml-dir DIR]
//! ```
//! `--rate` paces the mails (mails per second in all) instead of sending as fast as
//! the clients can; `--eml-dir` waits for every reply's `.eml` there and reports the
//! time from each `250` to its reply (when inotify saw the rename that makes it whole;
//! negative when it was there before the client read the `250`). Prints one line of
//! `key=value` pairs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpSocket;

struct Options {
    server: SocketAddr,
    clients: usize,
    messages: usize,
    rate: Option<f64>,
    to: String,
    tag: String,
    source_ips: usize,
    eml_dir: Option<PathBuf>,
}

fn options() -> Options {
    let mut options = Options {
        server: "127.0.0.1:25".parse().unwrap(),
        clients: 20,
        messages: 1000,
        rate: None,
        to: "kc@localhost".into(),
        tag: "load".into(),
        source_ips: 1000,
        eml_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        let bad = |e: &dyn std::fmt::Display| -> ! { panic!("{flag} {value}: {e}") };
        match flag.as_str() {
            "--server" => options.server = value.parse().unwrap_or_else(|e| bad(&e)),
            "--clients" => options.clients = value.parse().unwrap_or_else(|e| bad(&e)),
            "--messages" => options.messages = value.parse().unwrap_or_else(|e| bad(&e)),
            "--rate" => options.rate = Some(value.parse().unwrap_or_else(|e| bad(&e))),
            "--to" => options.to = value,
            "--tag" => options.tag = value,
            "--source-ips" => options.source_ips = value.parse().unwrap_or_else(|e| bad(&e)),
            "--eml-dir" => options.eml_dir = Some(value.into()),
            _ => panic!("unknown option {flag}"),
        }
    }
    options
}

/// The n-th client address: 127.1.0.1, 127.1.0.2, … (all loopback on Linux).
fn source_ip(n: usize) -> IpAddr {
    let n = n as u32 + 1;
    IpAddr::V4(Ipv4Addr::new(127, 1, (n >> 8) as u8, n as u8))
}

/// Reads one reply (all its lines) and checks its first digit.
async fn expect<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
    line: &mut String,
    first_digit: u8,
) -> std::io::Result<()> {
    loop {
        line.clear();
        if reader.read_line(line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let bytes = line.as_bytes();
        if bytes.len() > 3 && bytes[3] == b'-' {
            continue;
        }
        if bytes.first() != Some(&first_digit) {
            return Err(std::io::Error::other(format!(
                "refused: {}",
                line.trim_end()
            )));
        }
        return Ok(());
    }
}

/// One mail on its own connection; answers when the `250` after the final dot came
/// and how long the whole session took until then.
async fn one_mail(
    server: SocketAddr,
    source: Option<IpAddr>,
    sender: &str,
    to: &str,
) -> std::io::Result<(SystemTime, Duration)> {
    let started = Instant::now();
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    expect(&mut reader, &mut line, b'2').await?;
    for (command, answer) in [
        ("EHLO load.example.net\r\n".to_string(), b'2'),
        (format!("MAIL FROM:<{sender}>\r\n"), b'2'),
        (format!("RCPT TO:<{to}>\r\n"), b'2'),
        ("DATA\r\n".to_string(), b'3'),
    ] {
        writer.write_all(command.as_bytes()).await?;
        expect(&mut reader, &mut line, answer).await?;
    }
    let message = format!(
        "From: <{sender}>\r\nTo: <{to}>\r\nSubject: \r\nMessage-ID: <{sender}>\r\n\r\n.\r\n"
    );
    writer.write_all(message.as_bytes()).await?;
    expect(&mut reader, &mut line, b'2').await?;
    let accepted = (SystemTime::now(), started.elapsed());
    writer.write_all(b"QUIT\r\n").await?;
    let _ = expect(&mut reader, &mut line, b'2').await;
    Ok(accepted)
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The reply's recipient: the `To:` line of an `.eml`.
fn recipient_of(eml: &Path) -> Option<String> {
    let text = std::fs::read_to_string(eml).ok()?;
    let header = text.split("\r\n\r\n").next()?;
    let to = header
        .lines()
        .find_map(|l| l.strip_prefix("To:").or_else(|| l.strip_prefix("to:")))?
        .trim();
    let to = to.rsplit_once('<').map_or(to, |(_, rest)| rest);
    Some(to.trim_end_matches('>').to_ascii_lowercase())
}

/// When each `.eml` appeared in a folder, as inotify tells it (file times are kept in
/// the kernel's coarse clock, up to a few ms early: too coarse for this).
struct Watcher {
    appeared: Arc<std::sync::Mutex<HashMap<String, SystemTime>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    fn start(dir: &Path) -> Watcher {
        use std::os::unix::ffi::OsStrExt;
        std::fs::create_dir_all(dir).expect("the .eml folder");
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).expect("a folder path");
        // SAFETY: plain system calls on a descriptor this thread owns.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify: {}", std::io::Error::last_os_error());
        let watch = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), libc::IN_MOVED_TO) };
        assert!(watch >= 0, "inotify: {}", std::io::Error::last_os_error());
        let appeared = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, stopping) = (appeared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buffer = vec![0u8; 256 * 1024];
            while !stopping.load(Ordering::Relaxed) {
                let mut ready = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                if unsafe { libc::poll(&mut ready, 1, 50) } <= 0 {
                    continue;
                }
                let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
                let now = SystemTime::now();
                let mut events = &buffer[..read.max(0) as usize];
                let mut seen = seen.lock().unwrap();
                // Each event: wd, mask, cookie, len (4 bytes each), then len bytes of name.
                while events.len() >= 16 {
                    let len = u32::from_ne_bytes(events[12..16].try_into().unwrap()) as usize;
                    let name = &events[16..16 + len];
                    let name = String::from_utf8_lossy(name)
                        .trim_end_matches('\0')
                        .to_string();
                    seen.entry(name).or_insert(now);
                    events = &events[16 + len..];
                }
            }
            unsafe { libc::close(fd) };
        });
        Watcher {
            appeared,
            stop,
            thread,
        }
    }

    /// Waits (up to two minutes) until every accepted mail's reply is in `dir`, and
    /// gives each reply's time after its `250`, and how many never came.
    fn latencies(self, dir: &Path, accepted: &HashMap<String, SystemTime>) -> (Vec<f64>, usize) {
        let mut found: HashMap<String, SystemTime> = HashMap::new();
        let mut read: std::collections::HashSet<String> = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while found.len() < accepted.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let appeared: Vec<(String, SystemTime)> = self
                .appeared
                .lock()
                .unwrap()
                .iter()
                .filter(|(name, _)| name.ends_with(".eml") && !read.contains(*name))
                .map(|(name, at)| (name.clone(), *at))
                .collect();
            for (name, at) in appeared {
                read.insert(name.clone());
                if let Some(to) = recipient_of(&dir.join(&name))
                    && accepted.contains_key(&to)
                {
                    found.insert(to, at);
                }
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let mut latencies: Vec<f64> = found
            .iter()
            // Negative when the reply was on disk before the client read its 250.
            .map(|(to, written)| match written.duration_since(accepted[to]) {
                Ok(after) => ms(after),
                Err(before) => -ms(before.duration()),
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        (latencies, accepted.len() - found.len())
    }
}

/// CPU time (user and system) of this thread: the client's, since every connection runs
/// on this one thread's runtime (the `.eml` watcher has a thread of its own).
fn client_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() {
    let options = Arc::new(options());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let next = Arc::new(AtomicUsize::new(0));
    let watcher = options.eml_dir.as_deref().map(Watcher::start);
    let started = Instant::now();
    let cpu_before = client_cpu();
    let results = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..options.clients {
            let (options, next) = (options.clone(), next.clone());
            clients.push(tokio::spawn(async move {
                let mut results = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= options.messages {
                        return results;
                    }
                    if let Some(rate) = options.rate {
                        let due = started + Duration::from_secs_f64(n as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let sender = format!("{}-{n}@example.net", options.tag);
                    let source =
                        (options.source_ips > 0).then(|| source_ip(n % options.source_ips));
                    let outcome = one_mail(options.server, source, &sender, &options.to).await;
                    results.push((sender, outcome));
                }
            }));
        }
        let mut all = Vec::new();
        for client in clients {
            all.extend(client.await.expect("a client"));
        }
        all
    });
    let elapsed = started.elapsed();
    let client_cpu_us = (client_cpu() - cpu_before).as_micros() / options.messages.max(1) as u128;
    let mut accepted = HashMap::new();
    let mut sessions = Vec::new();
    let mut errors: HashMap<String, usize> = HashMap::new();
    for (sender, outcome) in results {
        match outcome {
            Ok((at, took)) => {
                accepted.insert(sender, at);
                sessions.push(ms(took));
            }
            Err(e) => *errors.entry(e.to_string()).or_default() += 1,
        }
    }
    sessions.sort_by(f64::total_cmp);
    let mut line = format!(
        "clients={} messages={} accepted={} seconds={:.3} rate={:.0} session_p50_ms={:.2} session_p99_ms={:.2}",
        options.clients,
        options.messages,
        accepted.len(),
        elapsed.as_secs_f64(),
        accepted.len() as f64 / elapsed.as_secs_f64(),
        percentile(&sessions, 50),
        percentile(&sessions, 99),
    );
    line += &format!(" client_cpu_us={client_cpu_us}");
    if let (Some(dir), Some(watcher)) = (&options.eml_dir, watcher) {
        let (replies, missing) = watcher.latencies(dir, &accepted);
        line += &format!(
            " replies={} replies_missing={missing} reply_p50_ms={:.2} reply_p99_ms={:.2}",
            replies.len(),
            percentile(&replies, 50),
            percentile(&replies, 99),
        );
    }
    println!("{line}");
    for (error, count) in errors {
        eprintln!("{count} mails failed: {error}");
    }
}
