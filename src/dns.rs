//! DNS, for what karamail asks of it: SPF and DMARC of a sender, and whether our own DKIM
//! record is published. `[smtp] dns_servers` names the servers (tests run their own);
//! empty means the system's resolv.conf.

use std::net::SocketAddr;

use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};

use crate::error::{Error, Result};

pub fn resolver(dns_servers: &[SocketAddr]) -> Result<MessageAuthenticator> {
    let built = if dns_servers.is_empty() {
        MessageAuthenticator::new_system_conf()
    } else {
        let mut config = ResolverConfig::default();
        for server in dns_servers {
            let mut name_server = NameServerConfig::udp_and_tcp(server.ip());
            for connection in &mut name_server.connections {
                connection.port = server.port();
            }
            config.add_name_server(name_server);
        }
        MessageAuthenticator::new(config, ResolverOpts::default())
    };
    built.map_err(|e| Error::Config(format!("cannot set up DNS: {e}")))
}
