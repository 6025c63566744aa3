//! The small HTTP toolkit the pages share: the request as handlers see it, cookies,
//! forms with their CSRF check, and responses with the headers every page carries.

use std::net::IpAddr;

use bytes::Bytes;
use cookie::{Cookie, SameSite};
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::member::SESSION_COOKIE;
use crate::device::{self, Client};
use crate::error::{Error, Result};
use crate::secrets::{self, ServerKey};

pub type Resp = Response<Full<Bytes>>;

/// The CSRF cookie; over HTTPS with the `__Host-` prefix, which browsers accept only
/// from this host itself (Secure, Path=/, no Domain): a sibling host cannot set it.
pub fn csrf_cookie(https: bool) -> &'static str {
    if https { "__Host-km_csrf" } else { "km_csrf" }
}
pub const CSRF_FIELD: &str = "csrf";

/// What reading a request needs of the site: whom to believe about the client address,
/// and what the CSRF token is made with.
pub struct SiteKeys<'a> {
    pub trusted_proxies: &'a [IpAddr],
    pub key: &'a ServerKey,
    pub https: bool,
}

/// A request, read whole (bodies are small forms), as the page handlers see it.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    /// The member's address: the peer, or what a trusted proxy forwarded (None when a
    /// trusted proxy named none).
    pub client_ip: Option<IpAddr>,
    pub body: Bytes,
    /// The token this browser's forms carry: the server key's hash of its CSRF cookie
    /// and its login session (`ServerKey::csrf_token`).
    pub csrf: String,
    /// The CSRF cookie's value (new when the browser sent none: `respond` sets it).
    pub csrf_cookie: String,
    pub csrf_is_new: bool,
}

impl Req {
    pub fn new(
        method: Method,
        path: String,
        query: String,
        headers: HeaderMap,
        peer: IpAddr,
        site: &SiteKeys,
        body: Bytes,
    ) -> Req {
        let client_ip = client_ip(peer, &headers, site.trusted_proxies);
        let existing = cookie_in(&headers, csrf_cookie(site.https)).filter(|v| v.len() == 64);
        let csrf_is_new = existing.is_none();
        let csrf_cookie = existing.unwrap_or_else(secrets::new_token);
        let session = cookie_in(&headers, SESSION_COOKIE).unwrap_or_default();
        let csrf = site.key.csrf_token(&csrf_cookie, &session);
        Req {
            method,
            path,
            query,
            headers,
            client_ip,
            body,
            csrf,
            csrf_cookie,
            csrf_is_new,
        }
    }

    /// A parameter of the query string (`?changed=password`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        cookie_in(&self.headers, name)
    }

    pub fn client_ip(&self) -> Option<String> {
        self.client_ip.map(|ip| ip.to_string())
    }

    /// The client's address and browser, as a login history shows them.
    pub fn client(&self) -> Client {
        let user_agent = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Client {
            ip: self.client_ip(),
            device: device::describe(user_agent),
        }
    }

    /// The form in the body, after checking that it was sent from one of our own pages
    /// (`same_origin`) and that its CSRF token is the one made for the browser's cookie
    /// and login session.
    pub fn form<T: DeserializeOwned>(&self, own_origin: &str) -> Result<T> {
        if !self.same_origin(own_origin) {
            return Err(Error::Csrf);
        }
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&self.body)
            .map_err(|_| Error::BadRequest("form encoding"))?;
        let sent = fields
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if self.csrf_is_new || !secrets::constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            return Err(Error::Csrf);
        }
        serde_urlencoded::from_bytes(&self.body).map_err(|_| Error::BadRequest("form fields"))
    }
}

impl Req {
    /// Whether the browser says this request comes from our own pages. Browsers name
    /// where a form was posted from in `Sec-Fetch-Site` (Chromium, Firefox, Safari 16.4+)
    /// and `Origin`; a script cannot set either. `same-origin` is believed; `cross-site`
    /// and `same-site` (a sibling host) are refused; an `Origin` other than ours is
    /// refused. `Origin: null` (an opaque origin: a sandboxed frame, a `data:` page, or a
    /// page under `Referrer-Policy: no-referrer`) passes only with `same-origin` beside
    /// it. Clients that send neither (old browsers, curl) rely on the CSRF token alone.
    fn same_origin(&self, own_origin: &str) -> bool {
        let header = |name| {
            self.headers
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap_or("\u{0}"))
        };
        let fetch_site = header("sec-fetch-site");
        if fetch_site.is_some_and(|site| site != "same-origin") {
            return false;
        }
        match header(header::ORIGIN.as_str()) {
            None => true,
            Some("null") => fetch_site == Some("same-origin"),
            // Our scheme and host: `http://` posting to an HTTPS site is another origin.
            Some(origin) => {
                let host = header(header::HOST.as_str()).unwrap_or("");
                let own_scheme = own_origin.split_once("://").map(|(scheme, _)| scheme);
                origin == own_origin
                    || origin
                        .split_once("://")
                        .is_some_and(|(scheme, h)| Some(scheme) == own_scheme && h == host)
            }
        }
    }
}

/// The client behind any trusted proxies: walking `X-Forwarded-For` from the right, the
/// first address that is not a trusted proxy (the ones left of it could be forged).
fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted_proxies.contains(ip))
}

fn cookie_in(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(|c| c.ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure over https.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: i64, secure: bool) -> String {
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build()
        .to_string()
}

/// A cookie the browser forgets when it closes (no Max-Age): for logins.
pub fn set_session_cookie(name: &str, value: &str, path: &str, secure: bool) -> String {
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
        .to_string()
}

pub fn clear_cookie(name: &str, path: &str, secure: bool) -> String {
    set_cookie(name, "", path, 0, secure)
}

pub fn html(status: StatusCode, body: String) -> Resp {
    typed(status, "text/html; charset=utf-8", body)
}

/// A response with a body of this content type.
pub fn typed(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// 303 See Other: after a form, the browser GETs the next page.
pub fn redirect(location: &str) -> Resp {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub fn with_cookie(mut response: Resp, set_cookie: &str) -> Resp {
    if let Ok(value) = HeaderValue::from_str(set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Headers on every response. Pages carry personal data and links carry tokens: no
/// caching, no referrer, no framing, no inline script.
pub fn secure_headers(response: &mut Resp, https: bool) {
    let headers = response.headers_mut();
    let fixed = [
        (header::CACHE_CONTROL, "no-store"),
        // Our own pages get the full referrer, other sites none: tokens never leave
        // (mailed links trade theirs for a cookie at once), and a same-origin form POST
        // carries its real `Origin` (under `no-referrer` it would be `null`).
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (name, value) in fixed {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static KEY: std::sync::LazyLock<ServerKey> = std::sync::LazyLock::new(ServerKey::ephemeral);

    fn site(https: bool) -> SiteKeys<'static> {
        SiteKeys {
            trusted_proxies: &[],
            key: &KEY,
            https,
        }
    }

    /// The form token a browser holding CSRF cookie `cookie` (and no login) is given.
    fn token_for(cookie: &str) -> String {
        KEY.csrf_token(cookie, "")
    }

    proptest! {
        /// Whatever a browser (or anything else) posts, the form is read or refused.
        #[test]
        fn any_form_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..1024), with_token in any::<bool>()) {
            let mut headers = HeaderMap::new();
            let cookie = "a".repeat(64);
            headers.insert(header::COOKIE, HeaderValue::from_str(&format!("km_csrf={cookie}")).unwrap());
            let mut bytes = if with_token { format!("{CSRF_FIELD}={}&", token_for(&cookie)).into_bytes() } else { Vec::new() };
            bytes.extend_from_slice(&body);
            let req = Req::new(Method::POST, "/signup".into(), String::new(), headers, "192.0.2.1".parse().unwrap(), &site(false), Bytes::from(bytes));
            let _ = req.form::<std::collections::HashMap<String, String>>("http://localhost");
        }
    }

    /// A form post with these headers and a matching token: read, or refused as CSRF.
    fn post_with(headers: &[(&str, &str)]) -> bool {
        let cookie = "a".repeat(64);
        let token = token_for(&cookie);
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_static("portal.example.jp"));
        map.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("__Host-km_csrf={cookie}")).unwrap(),
        );
        for (name, value) in headers {
            map.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let body = Bytes::from(format!("{CSRF_FIELD}={token}&a=1"));
        let req = Req::new(
            Method::POST,
            "/login".into(),
            String::new(),
            map,
            "192.0.2.1".parse().unwrap(),
            &site(true),
            body,
        );
        req.form::<Vec<(String, String)>>("https://portal.example.jp")
            .is_ok()
    }

    /// A CSRF cookie an attacker managed to plant, with the same value in the form (the
    /// double-submit pair of old), is refused: the token is made with the server key.
    /// So is a token made for another login session, and the plain cookie name over
    /// HTTPS (a sibling host can set `km_csrf`, never `__Host-km_csrf`).
    #[test]
    fn the_token_is_the_servers_and_bound_to_the_session() {
        let post = |cookie_header: &str, field: &str| {
            let mut map = HeaderMap::new();
            map.insert(
                header::COOKIE,
                HeaderValue::from_str(cookie_header).unwrap(),
            );
            let body = Bytes::from(format!("{CSRF_FIELD}={field}"));
            let req = Req::new(
                Method::POST,
                "/profile/password".into(),
                String::new(),
                map,
                "192.0.2.1".parse().unwrap(),
                &site(true),
                body,
            );
            req.form::<Vec<(String, String)>>("https://portal.example.jp")
                .is_ok()
        };
        let planted = "b".repeat(64);
        assert!(!post(&format!("__Host-km_csrf={planted}"), &planted));
        let victim = format!("__Host-km_csrf={planted}; km_session=victims");
        assert!(post(&victim, &KEY.csrf_token(&planted, "victims")));
        assert!(!post(&victim, &KEY.csrf_token(&planted, "attackers")));
        assert!(
            !post(&victim, &token_for(&planted)),
            "a token from before the login"
        );
        assert!(!post(&format!("km_csrf={planted}"), &token_for(&planted)));
    }

    #[test]
    fn own_pages_may_post_and_other_sites_may_not() {
        let own = "https://portal.example.jp";
        // What Chromium, Firefox and Safari send from our own page.
        assert!(post_with(&[
            ("origin", own),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(post_with(&[("origin", own)]));
        // Under a no-referrer policy (a member's extension) the origin is opaque.
        assert!(post_with(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ]));
        // Old clients with neither header: the token decides.
        assert!(post_with(&[]));
        // Another site, a sibling host, an opaque origin with nothing to vouch for it.
        assert!(!post_with(&[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site")
        ]));
        assert!(!post_with(&[("origin", "https://evil.example")]));
        assert!(!post_with(&[("sec-fetch-site", "cross-site")]));
        assert!(!post_with(&[
            ("origin", "https://www.example.jp"),
            ("sec-fetch-site", "same-site")
        ]));
        assert!(!post_with(&[("origin", "null")]));
        assert!(!post_with(&[
            ("origin", "null"),
            ("sec-fetch-site", "cross-site")
        ]));
        // Our host under another scheme is another origin.
        assert!(!post_with(&[("origin", "http://portal.example.jp")]));
        // A forged Origin cannot hide what the browser itself says.
        assert!(!post_with(&[
            ("origin", own),
            ("sec-fetch-site", "cross-site")
        ]));
    }

    #[test]
    fn every_response_is_protected_and_https_adds_hsts() {
        let mut plain = html(StatusCode::OK, String::new());
        secure_headers(&mut plain, false);
        assert_eq!(plain.headers()["cache-control"], "no-store");
        assert_eq!(plain.headers()["referrer-policy"], "same-origin");
        assert_eq!(plain.headers()["x-content-type-options"], "nosniff");
        assert!(
            plain.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(
            !plain.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("unsafe-inline")
        );
        assert!(plain.headers().get("strict-transport-security").is_none());
        let mut secure = html(StatusCode::OK, String::new());
        secure_headers(&mut secure, true);
        assert!(secure.headers().contains_key("strict-transport-security"));
        assert!(set_cookie("a", "b", "/", 1, true).contains("Secure"));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let trusted = [proxy];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7"),
        );
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(stranger, &headers, &trusted), Some(stranger));
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "198.51.100.7".parse().ok()
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), None);
    }
}
