//! A small browser on hyper's client: keeps cookies, follows redirects when asked,
//! and posts the hidden CSRF field of the last page, as a real browser would.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::TestDaemon;

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser that keeps cookies and posts the hidden CSRF field of the last page.
pub struct Browser<'a> {
    pub(super) daemon: &'a TestDaemon,
    pub cookies: HashMap<String, String>,
    pub(super) last_body: String,
    /// Sent with every request (`User-Agent`, or `X-Forwarded-For` as the proxy in front
    /// of karamail would add it).
    pub headers: Vec<(&'static str, String)>,
}

impl<'a> Browser<'a> {
    /// The last page shown (200 or 422).
    pub fn last_page(&self) -> &str {
        &self.last_body
    }

    /// Another tab of the same browser: the cookies and the last page as they are now.
    pub fn tab(&self) -> Browser<'a> {
        Browser {
            daemon: self.daemon,
            cookies: self.cookies.clone(),
            last_body: self.last_body.clone(),
            headers: self.headers.clone(),
        }
    }

    pub fn get(&mut self, path_or_url: &str) -> Page {
        self.request("GET", path_or_url, None)
    }

    /// Follows redirects (GET) until a page.
    pub fn open(&mut self, path_or_url: &str) -> Page {
        let mut page = self.get(path_or_url);
        for _ in 0..5 {
            if page.status != 303 && page.status != 302 {
                break;
            }
            let next = page.location().to_string();
            page = self.get(&next);
        }
        page
    }

    /// Posts a form as the browser would: with the CSRF field of the last page. A page
    /// that answers the form comes after a 303 (Post/Redirect/Get): that GET is followed,
    /// and its status is the page's own (422 for a field error, …).
    pub fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = hidden_field(&self.last_body, "csrf").unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.post_raw(path, &body)
    }

    /// Posts a form with the last page's CSRF field and returns the 303 itself, not the
    /// page it leads to (for tests of the kept answer pages).
    pub fn submit_unfollowed(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = hidden_field(&self.last_body, "csrf").unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.request("POST", path, Some(body))
    }

    /// Posts exactly these fields (for CSRF tests), following a redirect to the page
    /// that answers them.
    pub fn post_raw(&mut self, path: &str, body: &str) -> Page {
        let page = self.request("POST", path, Some(body.to_string()));
        if page.status == 303 && page.location().contains("?view=") {
            let shown = page.location().to_string();
            return self.get(&shown);
        }
        page
    }

    fn request(&mut self, method: &str, path_or_url: &str, body: Option<String>) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.daemon.base_url(), path_or_url)
        };
        let mut builder = hyper::Request::builder().method(method).uri(&url);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            builder = builder.header("cookie", cookie);
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
        }
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let (status, headers, bytes) = self.daemon.rt.block_on(async move {
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, headers, bytes)
        });
        for value in headers.get_all("set-cookie") {
            let cookie = cookie::Cookie::parse(value.to_str().unwrap().to_string()).unwrap();
            let expired = cookie.max_age().is_some_and(|age| age.is_zero());
            if expired {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_string(), cookie.value().to_string());
            }
        }
        let body = String::from_utf8_lossy(&bytes).to_string();
        if status == 200 || status == 422 {
            self.last_body = body.clone();
        }
        Page {
            status,
            headers,
            body,
        }
    }
}

/// The value of `<input type="hidden" name="NAME" value="…">` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].to_string())
}

/// The `value` attribute of the input with this `name` (any type).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let tag_start = html.find(&format!("name=\"{name}\""))?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let start = tag.find("value=\"")? + "value=\"".len();
    Some(tag[start..start + tag[start..].find('"')?].to_string())
}
