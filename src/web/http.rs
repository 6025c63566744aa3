//! The small HTTP toolkit the pages share: the request as handlers see it, cookies,
//! forms with their CSRF check, and responses with the headers every page carries.

use std::net::IpAddr;

use bytes::Bytes;
use cookie::{Cookie, SameSite};
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::token;

pub type Resp = Response<Full<Bytes>>;

pub const CSRF_COOKIE: &str = "km_csrf";
pub const CSRF_FIELD: &str = "csrf";

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
    /// This browser's CSRF token (from its cookie, or new: then `respond` sets it).
    pub csrf: String,
    pub csrf_is_new: bool,
}

impl Req {
    pub fn new(
        method: Method,
        path: String,
        query: String,
        headers: HeaderMap,
        peer: IpAddr,
        trusted_proxies: &[IpAddr],
        body: Bytes,
    ) -> Req {
        let client_ip = client_ip(peer, &headers, trusted_proxies);
        let existing = cookie_in(&headers, CSRF_COOKIE).filter(|v| v.len() == 64);
        let csrf_is_new = existing.is_none();
        let csrf = existing.unwrap_or_else(token::new_token);
        Req {
            method,
            path,
            query,
            headers,
            client_ip,
            body,
            csrf,
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

    /// The form in the body, after checking that it was sent from one of our own pages
    /// (`same_origin`) and that its CSRF token matches the browser's cookie.
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
        if self.csrf_is_new || !token::constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
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
            Some(origin) => {
                let host = header(header::HOST.as_str()).unwrap_or("");
                origin == own_origin || origin.split_once("://").is_some_and(|(_, h)| h == host)
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
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
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
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
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

    proptest! {
        /// Whatever a browser (or anything else) posts, the form is read or refused.
        #[test]
        fn any_form_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..1024), with_token in any::<bool>()) {
            let mut headers = HeaderMap::new();
            let token = "a".repeat(64);
            headers.insert(header::COOKIE, HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}")).unwrap());
            let mut bytes = if with_token { format!("{CSRF_FIELD}={token}&").into_bytes() } else { Vec::new() };
            bytes.extend_from_slice(&body);
            let req = Req::new(Method::POST, "/signup".into(), String::new(), headers, "192.0.2.1".parse().unwrap(), &[], Bytes::from(bytes));
            let _ = req.form::<std::collections::HashMap<String, String>>("http://localhost");
        }
    }

    /// A form post with these headers and a matching token: read, or refused as CSRF.
    fn post_with(headers: &[(&str, &str)]) -> bool {
        let token = "a".repeat(64);
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_static("portal.example.jp"));
        map.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{CSRF_COOKIE}={token}")).unwrap(),
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
            &[],
            body,
        );
        req.form::<Vec<(String, String)>>("https://portal.example.jp")
            .is_ok()
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
