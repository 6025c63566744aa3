//! What every page handler is given (`AppState`): the configuration, the database, the
//! templates and the server key, and how a page is rendered with the society's details.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde::Serialize;

use super::{Resp, http, passkeys, views};
use crate::config::Config;
use crate::db::Db;
use crate::error::Result;
use crate::hashing::HashPool;
use crate::ratelimit::RateLimiter;
use crate::secrets::ServerKey;
use crate::templates::Templates;

/// Everything a page handler may use.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub templates: Arc<Templates>,
    /// Base URL members see, no trailing slash.
    pub public_url: String,
    pub limits: WebLimits,
    /// Pages that answered POSTs, shown by the GET after the redirect.
    pub views: views::Views,
    /// What tokens, session ids and keys are hashed under.
    pub key: Arc<ServerKey>,
    /// Where passwords are hashed and checked: bounded.
    pub hashing: HashPool,
    /// Passkeys, when `public_url` names a domain (browsers refuse them on an address).
    pub passkeys: Option<passkeys::Passkeys>,
}

/// Per-client-address limits on the web side.
pub struct WebLimits {
    pub(super) requests: RateLimiter,
    pub(super) secret_entries: RateLimiter,
}

impl WebLimits {
    pub fn new(config: &Config) -> WebLimits {
        WebLimits {
            requests: RateLimiter::new(
                config.limits.web_requests_per_ip_minute,
                Duration::from_secs(60),
            ),
            secret_entries: RateLimiter::new(
                config.limits.secret_entries_per_ip_hour,
                Duration::from_secs(3600),
            ),
        }
    }
}

impl AppState {
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// `scheme://host[:port]` of `public_url`, for the Origin check.
    pub(super) fn origin(&self) -> &str {
        let after_scheme = self.public_url.find("://").map_or(0, |i| i + 3);
        let end = self.public_url[after_scheme..]
            .find('/')
            .map_or(self.public_url.len(), |i| after_scheme + i);
        &self.public_url[..end]
    }

    /// Renders a page template with its context plus the society's details as `site`.
    pub fn render<T: Serialize>(&self, template: &str, page: &T) -> Result<String> {
        let context = self.context(page)?;
        Ok(self.templates.get().tera.render(template, &context)?)
    }

    fn context<T: Serialize>(&self, page: &T) -> Result<tera::Context> {
        let mut context = tera::Context::from_serialize(page)?;
        context.insert("site", &self.config.site);
        context.insert("portal_url", &self.public_url);
        context.insert("mail_domain", &self.config.mail.from_domain());
        Ok(context)
    }

    pub fn page<T: Serialize>(&self, template: &str, page: &T) -> Result<Resp> {
        Ok(http::html(StatusCode::OK, self.render(template, page)?))
    }

    /// A page that is the same for every visitor but for its CSRF token, `csrf` in the
    /// template (see `TokenPages`): kept by everything else it is made from, `page`
    /// whole, so none of its fields can be left out of what tells its copies apart (the
    /// society's details come from the configuration, fixed while the daemon runs).
    pub fn token_page<T: Serialize>(&self, template: &str, page: &T, csrf: &str) -> Result<Resp> {
        let key = format!(
            "{template}\0{}",
            tera::Context::from_serialize(page)?.into_json()
        );
        let loaded = self.templates.get();
        let body = loaded.token_pages.page(&key, csrf, |token| {
            let mut context = self.context(page)?;
            context.insert("csrf", token);
            Ok(loaded.tera.render(template, &context)?)
        })?;
        Ok(http::html(StatusCode::OK, body))
    }
}
