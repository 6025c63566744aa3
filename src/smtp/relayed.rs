//! SPF behind a trusted relay: MAIL FROM arrives from the relay's own address, so the
//! check waits for the message, whose top `Received:` line (captured here as the data
//! goes by) names the client the relay saw.

/// A sender whose SPF check waits for the message: from a trusted relay, MAIL FROM
/// comes with the relay's address, and SPF must be checked for the client the relay
/// recorded in its `Received:` line.
#[derive(Default)]
pub struct Relayed {
    pub sender: Option<String>,
    /// The message's header as it arrives (up to `MAX_HEADER`), for that line.
    pub header: Vec<u8>,
    header_done: bool,
}

/// Enough for the few `Received:` lines at the top of a header.
const MAX_HEADER: usize = 32 * 1024;

impl Relayed {
    pub fn start_data(&mut self) {
        self.header.clear();
        self.header_done = false;
    }

    pub fn data_line(&mut self, line: &[u8]) {
        if self.header_done || self.sender.is_none() {
            return;
        }
        if line == b"\r\n" || line == b"\n" || self.header.len() + line.len() > MAX_HEADER {
            self.header_done = true;
        }
        self.header.extend_from_slice(line);
    }
}
