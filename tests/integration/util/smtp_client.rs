//! A plain SMTP client over TCP: one command, one reply code.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A plain SMTP client: one command, one reply code.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub greeting: u16,
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(stream),
            writer,
            greeting: 0,
        };
        smtp.greeting = smtp.read_reply().0;
        smtp
    }

    /// Reads a (possibly multi-line) reply; code 0 when the server closed the connection.
    pub fn read_reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return (0, text),
                Ok(_) => {}
            }
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return (line[..3].parse().unwrap_or(0), text);
            }
        }
    }

    pub fn command(&mut self, line: &str) -> u16 {
        self.command_text(line).0
    }

    pub fn command_text(&mut self, line: &str) -> (u16, String) {
        if self
            .writer
            .write_all(format!("{line}\r\n").as_bytes())
            .is_err()
        {
            return (0, String::new());
        }
        self.read_reply()
    }

    /// A whole transaction; returns the code after the final dot (or the first refusal).
    pub fn send(&mut self, from: &str, to: &[&str], message: &str) -> u16 {
        match self.envelope(from, to) {
            354 => self.data(message),
            refused => refused,
        }
    }

    /// A whole transaction with a message given as bytes (any charset, any line ends).
    pub fn send_bytes(&mut self, from: &str, to: &[&str], message: &[u8]) -> u16 {
        match self.envelope(from, to) {
            354 => self.data_bytes(message),
            refused => refused,
        }
    }

    /// EHLO, MAIL, RCPT and DATA: 354, or the first refusal.
    fn envelope(&mut self, from: &str, to: &[&str]) -> u16 {
        self.command("EHLO client.example");
        let code = self.command(&format!("MAIL FROM:<{from}>"));
        if code != 250 {
            return code;
        }
        for rcpt in to {
            let code = self.command(&format!("RCPT TO:<{rcpt}>"));
            if code != 250 {
                return code;
            }
        }
        self.command("DATA")
    }

    /// Sends bytes exactly as given (they must end with the final dot) and reads the reply.
    pub fn raw_data(&mut self, bytes: &[u8]) -> u16 {
        if self.writer.write_all(bytes).is_err() {
            return 0;
        }
        self.read_reply().0
    }

    /// Sends a message given as bytes as an MTA would: every line end (CRLF, LF or a
    /// lone CR) as CRLF, dot-stuffed, then the final dot.
    pub fn data_bytes(&mut self, message: &[u8]) -> u16 {
        let mut wire = Vec::with_capacity(message.len() + 64);
        let mut at_line_start = true;
        let mut bytes = message.iter().peekable();
        while let Some(&b) = bytes.next() {
            if at_line_start && b == b'.' {
                wire.push(b'.');
            }
            at_line_start = matches!(b, b'\r' | b'\n');
            match b {
                b'\r' if bytes.peek() == Some(&&b'\n') => at_line_start = false,
                b'\r' | b'\n' => wire.extend_from_slice(b"\r\n"),
                _ => wire.push(b),
            }
        }
        if !at_line_start {
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b".\r\n");
        if self.writer.write_all(&wire).is_err() {
            return 0;
        }
        self.read_reply().0
    }

    /// Sends the message body (dot-stuffed, CRLF) and the final dot.
    pub fn data(&mut self, message: &str) -> u16 {
        let mut wire = String::new();
        for line in message.replace("\r\n", "\n").split('\n') {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        if self.writer.write_all(wire.as_bytes()).is_err() {
            return 0;
        }
        self.read_reply().0
    }
}
