//! How many connections a listener holds, in all, per client address and per client
//! network (an IPv4 /24, an IPv6 /64: what one attacker usually has), so that one
//! client — or one network — cannot take every place. When every place is taken, the
//! connection that has been idle longest (waiting for a command, not in the middle of
//! a message) is asked to close, so a new client always gets in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// The caps of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub total: usize,
    pub per_ip: usize,
    pub per_network: usize,
}

/// A client's network: an IPv4 /24 or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    V4([u8; 3]),
    V6([u8; 8]),
}

impl Network {
    pub fn of(ip: IpAddr) -> Network {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Network::V4([a, b, c])
            }
            IpAddr::V6(v6) => {
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Network::V6(prefix)
            }
        }
    }
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address, or its network, holds its share already.
    ClientFull,
    /// Every place is taken and none is idle.
    Full,
}

/// The connections of one listener.
#[derive(Default)]
pub struct Connections {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    per_network: HashMap<Network, usize>,
    /// Entries not asked to close.
    staying: usize,
}

struct Entry {
    ip: IpAddr,
    /// Since when it waits for its client; `None` while it works.
    idle_since: Option<Instant>,
    close: Arc<Notify>,
    leaving: bool,
}

impl Connections {
    /// Connections open now (those asked to close included, until they have).
    pub fn open(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a connection from `ip`. `exempt` clients (a trusted relay or proxy,
    /// which speaks for many) count toward the total only. When the total is reached,
    /// the connection idle longest is asked to close and this one takes its place.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, caps: Caps, exempt: bool) -> Result<Place, Refused> {
        let mut table = self.lock();
        let network = Network::of(ip);
        if !exempt {
            let from_ip = table.per_ip.get(&ip).copied().unwrap_or(0);
            let from_network = table.per_network.get(&network).copied().unwrap_or(0);
            if from_ip >= caps.per_ip || from_network >= caps.per_network {
                return Err(Refused::ClientFull);
            }
        }
        if table.staying >= caps.total {
            let oldest = table
                .entries
                .iter()
                .filter(|(_, e)| !e.leaving)
                .filter_map(|(id, e)| e.idle_since.map(|since| (since, *id)))
                .min();
            let Some((_, id)) = oldest else {
                return Err(Refused::Full);
            };
            let entry = table.entries.get_mut(&id).expect("just found");
            entry.leaving = true;
            entry.close.notify_one();
            table.staying -= 1;
        }
        let id = table.next_id;
        table.next_id += 1;
        let close = Arc::new(Notify::new());
        let entry = Entry {
            ip,
            idle_since: None,
            close: close.clone(),
            leaving: false,
        };
        table.entries.insert(id, entry);
        *table.per_ip.entry(ip).or_default() += 1;
        *table.per_network.entry(network).or_default() += 1;
        table.staying += 1;
        Ok(Place {
            connections: self.clone(),
            id,
            close,
        })
    }
}

/// A connection's place; dropping it frees the place.
pub struct Place {
    connections: Arc<Connections>,
    id: u64,
    close: Arc<Notify>,
}

impl Place {
    /// The connection now waits for its client (it may be asked to close).
    pub fn idle(&self) {
        self.set_idle(Some(Instant::now()));
    }

    /// The connection is working (a line arrived; a message is under way).
    pub fn busy(&self) {
        self.set_idle(None);
    }

    fn set_idle(&self, since: Option<Instant>) {
        if let Some(entry) = self.connections.lock().entries.get_mut(&self.id) {
            entry.idle_since = since;
        }
    }

    /// Resolves when a new client needs this place: close politely and soon.
    pub async fn asked_to_close(&self) {
        self.close.notified().await;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut table = self.connections.lock();
        let Some(entry) = table.entries.remove(&self.id) else {
            return;
        };
        if !entry.leaving {
            table.staying -= 1;
        }
        decrement(&mut table.per_ip, entry.ip);
        decrement(&mut table.per_network, Network::of(entry.ip));
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const CAPS: Caps = Caps {
        total: 4,
        per_ip: 2,
        per_network: 3,
    };

    #[test]
    fn places_are_capped_per_address_network_and_in_all() {
        let connections = Arc::new(Connections::default());
        let admit = |a: &str| connections.admit(ip(a), CAPS, false);
        let a1 = admit("192.0.2.1").unwrap();
        let _a2 = admit("192.0.2.1").unwrap();
        assert_eq!(admit("192.0.2.1").err(), Some(Refused::ClientFull));
        let _b1 = admit("192.0.2.2").unwrap();
        assert_eq!(
            admit("192.0.2.3").err(),
            Some(Refused::ClientFull),
            "the /24 holds its share"
        );
        let _c1 = admit("198.51.100.1").unwrap();
        assert_eq!(connections.open(), 4);
        assert_eq!(admit("203.0.113.1").err(), Some(Refused::Full), "none idle");
        drop(a1);
        let _d1 = admit("203.0.113.1").unwrap();
        assert_eq!(
            Network::of(ip("2001:db8:1:2::1")),
            Network::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Network::of(ip("2001:db8:1:2::1")),
            Network::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Network::of(ip("::ffff:192.0.2.9")),
            Network::of(ip("192.0.2.1"))
        );
    }

    #[tokio::test]
    async fn when_full_the_longest_idle_is_asked_to_close() {
        let connections = Arc::new(Connections::default());
        let caps = Caps {
            total: 2,
            per_ip: 2,
            per_network: 2,
        };
        let old = connections.admit(ip("192.0.2.1"), caps, false).unwrap();
        old.idle();
        let working = connections.admit(ip("198.51.100.1"), caps, false).unwrap();
        working.busy();
        let new = connections.admit(ip("203.0.113.1"), caps, false).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), old.asked_to_close())
            .await
            .expect("the idle one is asked to close");
        assert_eq!(connections.open(), 3, "until it has closed");
        drop(old);
        assert_eq!(connections.open(), 2);
        new.idle();
        let _newest = connections.admit(ip("192.0.2.7"), caps, false).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), new.asked_to_close())
            .await
            .expect("then the next idle one");
        drop(working);
    }
}
