//! A DNS server the test controls: answers TXT questions from a table over UDP on
//! loopback, NXDOMAIN for names it does not know, nothing else. Never the network.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

pub struct Dns {
    pub addr: SocketAddr,
}

impl Dns {
    /// `records`: (name, TXT value) pairs; a name may appear more than once.
    pub fn start(records: &[(&str, &str)]) -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let mut table: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in records {
            table
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(value.to_string());
        }
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while let Ok((len, peer)) = socket.recv_from(&mut buffer) {
                if let Some(reply) = answer(&buffer[..len], &table) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        Dns { addr }
    }
}

/// The reply to one query, or None if it cannot be read.
fn answer(query: &[u8], table: &HashMap<String, Vec<String>>) -> Option<Vec<u8>> {
    let (mut labels, mut at) = (Vec::new(), 12);
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question = query.get(12..at + 4)?;
    let name = labels.join(".");
    let known = table.get(&name);
    let answers: Vec<&String> = match (known, qtype) {
        (Some(values), 16) => values.iter().collect(),
        _ => Vec::new(),
    };
    let rcode = if known.is_some() { 0 } else { 3 };
    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[..2]);
    reply.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1]);
    reply.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    for value in answers {
        let mut rdata = Vec::new();
        for chunk in value.as_bytes().chunks(255) {
            rdata.push(chunk.len() as u8);
            rdata.extend_from_slice(chunk);
        }
        reply.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
        reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        reply.extend_from_slice(&rdata);
    }
    Some(reply)
}
