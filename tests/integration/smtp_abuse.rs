//! The SMTP listener under abuse: floods, slow clients, protocol tricks.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{Smtp, TestDaemon, empty_mail, send_mail};

/// Connects from a chosen loopback address (Linux routes all of 127.0.0.0/8 locally).
fn connect_from(daemon: &TestDaemon, source: IpAddr, target: SocketAddr) -> tokio::net::TcpStream {
    daemon.rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        socket.connect(target).await.unwrap()
    })
}

#[test]
fn five_hundred_idle_connections_and_a_slow_client_do_not_starve_a_real_sender() {
    let daemon = TestDaemon::start();
    let target = daemon.daemon.as_ref().unwrap().smtp_addr;
    // 500 idle connections from 100 addresses in 100 networks, 5 each (under the caps).
    let idle: Vec<_> = (0..500)
        .map(|n| connect_from(&daemon, IpAddr::from([127, 1, (n / 5) as u8, 1]), target))
        .collect();
    // One client that sends a byte a second.
    let slow = connect_from(&daemon, IpAddr::from([127, 0, 2, 1]), target);
    let slow_task = daemon.rt.spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut slow = slow;
        for byte in b"EHLO slow.example\r\n".iter().cycle().take(30) {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let code = send_mail(&daemon, "real@example.net", &empty_mail("real@example.net"));
    let took = started.elapsed();
    eprintln!("a real sender's 250 took {took:?} beside 500 idle connections and a slow client");
    assert_eq!(code, 250);
    assert!(
        took < Duration::from_secs(5),
        "the real sender waited {took:?}"
    );
    daemon.wait_for_mail("real@example.net");
    slow_task.abort();
    drop(idle);
}

#[test]
fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let daemon = TestDaemon::start_with(|c| c.smtp.max_connections_per_ip = 3);
    let target = daemon.daemon.as_ref().unwrap().smtp_addr;
    let source = IpAddr::from([127, 0, 3, 1]);
    let _held: Vec<_> = (0..3)
        .map(|_| connect_from(&daemon, source, target))
        .collect();
    let extra = connect_from(&daemon, source, target).into_std().unwrap();
    extra.set_nonblocking(false).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reply = String::new();
    let _ = (&extra).read_to_string(&mut reply);
    assert!(reply.starts_with("421 4.7.0"), "{reply:?}");
    // Another address, and the trusted relay (loopback), still get in.
    assert_eq!(
        send_mail(
            &daemon,
            "other@example.net",
            &empty_mail("other@example.net")
        ),
        250
    );
}

#[test]
fn a_client_that_talks_before_the_greeting_is_refused() {
    let daemon = TestDaemon::start_with(|c| c.smtp.greeting_delay = "500ms".parse().unwrap());
    let target = daemon.daemon.as_ref().unwrap().smtp_addr;
    let mut stream = TcpStream::connect(target).unwrap();
    stream.write_all(b"EHLO hasty.example\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(reply.starts_with("554 5.5.0"), "{reply:?}");
    assert_eq!(daemon.smtp().greeting, 220, "a patient client is greeted");
}

#[test]
fn bare_newlines_in_a_message_are_refused_smuggling_included() {
    let daemon = TestDaemon::start();
    let mut smtp = daemon.smtp();
    smtp.command("EHLO client.example");
    smtp.command("MAIL FROM:<smuggler@example.net>");
    smtp.command("RCPT TO:<kc@example.jp>");
    assert_eq!(smtp.command("DATA"), 354);
    // A second message hidden behind "\n.\n", as SMTP smuggling does.
    let code = smtp.raw_data(b"Subject: x\r\n\r\nhi\n.\nMAIL FROM:<victim@example.org>\r\n.\r\n");
    assert_eq!(code, 554);
    assert!(daemon.outcomes_for("smuggler@example.net").is_empty());
    assert!(daemon.outcomes_for("victim@example.org").is_empty());
}

#[test]
fn overlong_lines_errors_and_silence_end_a_session() {
    let daemon = TestDaemon::start_with(|c| {
        c.smtp.max_errors = 3;
        c.smtp.idle_timeout = "1s".parse().unwrap();
    });
    let mut smtp = daemon.smtp();
    let (code, _) = smtp.command_text(&format!("EHLO {}", "a".repeat(5000)));
    assert_eq!(code, 500, "a line too long");
    assert_eq!(smtp.command("NOOP"), 0, "and the connection is closed");

    let mut smtp = daemon.smtp();
    for _ in 0..2 {
        assert_eq!(smtp.command("BOGUS"), 500);
    }
    assert_eq!(smtp.command("BOGUS"), 500);
    let (code, text) = smtp.read_reply();
    assert_eq!(code, 421, "closed after the third error: {text:?}");
    assert_eq!(smtp.command("NOOP"), 0);

    let mut smtp = daemon.smtp();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        smtp.read_reply().0,
        421,
        "an idle client is told and dropped"
    );
}

#[test]
fn a_normal_session_still_works_after_all_that() {
    let daemon = TestDaemon::start();
    let mut smtp = Smtp::connect(daemon.daemon.as_ref().unwrap().smtp_addr);
    assert_eq!(
        smtp.send(
            "fine@example.net",
            &["kc@example.jp"],
            &empty_mail("fine@example.net")
        ),
        250
    );
    daemon.wait_for_mail("fine@example.net");
}

/// Reads what the server says on `stream` within `wait` (to the end, or what came
/// before).
fn said(stream: tokio::net::TcpStream, wait: Duration) -> String {
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut text = Vec::new();
    let _ = (&stream).read_to_end(&mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// Every place taken by idle connections from many networks: a new sender still gets
/// in, because the connection idle longest is asked to close (421); and one network
/// (/24) cannot hold more than its share, whatever its number of addresses.
#[test]
fn a_full_listener_makes_room_for_a_new_sender() {
    let daemon = TestDaemon::start_with(|c| {
        c.smtp.max_connections = 40;
        c.smtp.max_connections_per_ip = 5;
        c.smtp.max_connections_per_network = 10;
    });
    let target = daemon.daemon.as_ref().unwrap().smtp_addr;
    let greeted = |stream: &mut tokio::net::TcpStream| {
        daemon.rt.block_on(async {
            use tokio::io::AsyncReadExt;
            let mut greeting = [0u8; 4];
            stream.read_exact(&mut greeting).await.unwrap();
            assert_eq!(&greeting, b"220 ");
        })
    };
    // One network, three addresses: ten places, then 421.
    let mut network: Vec<_> = (0..10)
        .map(|n| connect_from(&daemon, IpAddr::from([127, 2, 0, n / 5 + 1]), target))
        .collect();
    network.iter_mut().for_each(&greeted);
    let refused = connect_from(&daemon, IpAddr::from([127, 2, 0, 3]), target);
    assert!(said(refused, Duration::from_secs(3)).starts_with("421 4.7.0 Too many connections"));
    // Six more networks fill the listener: 40 idle connections.
    let mut idle: Vec<_> = (0..30)
        .map(|n| connect_from(&daemon, IpAddr::from([127, 3, n / 5, 1]), target))
        .collect();
    idle.iter_mut().for_each(&greeted);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let code = send_mail(&daemon, "new@example.net", &empty_mail("new@example.net"));
    assert_eq!(code, 250, "the new sender got in");
    assert!(started.elapsed() < Duration::from_secs(5));
    // One idle connection (one of those idle longest: the first ones came within the
    // same millisecond) was asked to leave.
    let asked = network
        .into_iter()
        .chain(idle)
        // Said by now: the 421 went before the new sender's greeting.
        .map(|stream| said(stream, Duration::from_millis(100)))
        .filter(|text| text.contains("421 4.7.0 Too many connections: closing idle ones"))
        .count();
    assert_eq!(asked, 1);
    daemon.wait_for_mail("new@example.net");
}
