//! TLS for both listeners (STARTTLS on SMTP, HTTPS on the web) from PEM files in the
//! config. The certificate is re-read on SIGHUP, so a renewed certificate (certbot…)
//! takes effect without a restart; a broken renewal keeps the running one.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::error::{Error, Result};

/// A certificate chain and key, as files, and the pair now in use.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    pub fn load(cert: PathBuf, key: PathBuf) -> Result<Arc<Certificate>> {
        let current = RwLock::new(read(&cert, &key)?);
        Ok(Arc::new(Certificate { cert, key, current }))
    }

    /// Re-reads the files; on error the certificate in use stays.
    pub fn reload(&self) -> Result<()> {
        let fresh = read(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// An acceptor that always presents the current pair.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor> {
        let config = ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn read(cert_path: &PathBuf, key_path: &PathBuf) -> Result<Arc<CertifiedKey>> {
    let bad = |path: &PathBuf, what: &str| Error::Config(format!("{}: {what}", path.display()));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| bad(cert_path, &e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert_path, &e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(cert_path, "no certificate in this PEM file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| bad(key_path, &e.to_string()))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad(key_path, &e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| bad(key_path, &format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}
