//! Post/Redirect/Get for every form. A POST that answers with a page (an error next to
//! a field, 「ご案内メールを送信しました」) has that page kept here for a while, and the
//! browser is sent with 303 to `{page}?view={id}`, which shows it. Reload and Back then
//! repeat a GET, never the POST: no second mail, no second counted attempt.
//!
//! A kept page belongs to the browser that posted (its CSRF cookie) and lives
//! `KEEP_FOR`; the store holds at most `CAPACITY` pages (oldest go first). A page that
//! is gone (time, restart, eviction) falls back to the form itself: nothing is lost but
//! the message.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::http::{Resp, redirect};
use crate::token;

pub const VIEW_PARAM: &str = "view";
const KEEP_FOR: Duration = Duration::from_secs(30 * 60);
/// Pages are a few KB: this bounds the store to a few MB whatever arrives.
const CAPACITY: usize = 1024;

struct Kept {
    owner: Vec<u8>,
    status: StatusCode,
    body: Bytes,
    until: Instant,
}

/// The pages that answered POSTs, by view id.
#[derive(Default)]
pub struct Views {
    inner: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    pages: HashMap<String, Kept>,
    order: VecDeque<String>,
}

impl Views {
    /// Turns the page that answered a POST to `path` into a 303 to where it is shown.
    /// Redirects pass through; cookies the POST set travel with the 303.
    pub async fn keep(&self, path: &str, csrf: &str, response: Resp) -> Resp {
        if response.status().is_redirection() {
            return response;
        }
        let (parts, body) = response.into_parts();
        let id = token::new_token();
        let location = format!("{}?{VIEW_PARAM}={id}", page_for(path));
        let kept = Kept {
            owner: token::hash(csrf),
            status: parts.status,
            body: body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default(),
            until: Instant::now() + KEEP_FOR,
        };
        self.insert(id, kept);
        let mut answer = redirect(&location);
        for cookie in parts.headers.get_all(header::SET_COOKIE) {
            answer
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        answer
    }

    /// The page kept under `id` for this browser, or a redirect to the bare page.
    pub fn show(&self, path: &str, id: &str, csrf: &str) -> Resp {
        let store = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let kept = store
            .pages
            .get(id)
            .filter(|k| k.until > Instant::now())
            .filter(|k| token::constant_time_eq(&k.owner, &token::hash(csrf)));
        match kept {
            Some(kept) => {
                let mut response = Response::new(Full::new(kept.body.clone()));
                *response.status_mut() = kept.status;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            None => redirect(path),
        }
    }

    fn insert(&self, id: String, kept: Kept) {
        let mut store = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while let Some(oldest) = store.order.front().cloned() {
            let expired = store.pages.get(&oldest).is_none_or(|k| k.until <= now);
            if !expired && store.order.len() < CAPACITY {
                break;
            }
            store.order.pop_front();
            store.pages.remove(&oldest);
        }
        store.order.push_back(id.clone());
        store.pages.insert(id, kept);
    }
}

/// Where the answer to a POST is shown: the page the form lives on.
fn page_for(post_path: &str) -> &str {
    match post_path {
        "/login" | "/logout" => "/",
        "/login/key/resend" => "/login/key",
        "/profile/login-id" | "/profile/nickname" | "/profile/password" => "/profile",
        "/profile/email/add" | "/profile/email/remove" => "/profile",
        // The other forms live on the page they post to (`/profile/email/{token}` too).
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::http::html;

    fn keep(views: &Views, path: &str, csrf: &str, response: Resp) -> Resp {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(views.keep(path, csrf, response))
    }

    #[test]
    fn a_posted_page_is_shown_by_get_to_its_own_browser_only() {
        let views = Views::default();
        let page = html(StatusCode::UNPROCESSABLE_ENTITY, "エラー".into());
        let answer = keep(&views, "/signup", "cookie-a", page);
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let location = answer.headers()["location"].to_str().unwrap().to_string();
        let id = location.strip_prefix("/signup?view=").expect(&location);
        let shown = views.show("/signup", id, "cookie-a");
        assert_eq!(shown.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // Reload shows it again; another browser is sent to the bare form.
        assert_eq!(views.show("/signup", id, "cookie-a").status(), 422);
        let other = views.show("/signup", id, "cookie-b");
        assert_eq!(other.status(), StatusCode::SEE_OTHER);
        assert_eq!(other.headers()["location"], "/signup");
    }

    #[test]
    fn redirects_pass_and_the_store_stays_bounded() {
        let views = Views::default();
        let passed = keep(&views, "/login", "c", redirect("/login/key"));
        assert_eq!(passed.headers()["location"], "/login/key");
        for _ in 0..CAPACITY + 10 {
            keep(&views, "/login", "c", html(StatusCode::OK, "x".into()));
        }
        let store = views.inner.lock().unwrap();
        assert_eq!(store.pages.len(), CAPACITY);
        assert_eq!(store.order.len(), CAPACITY);
    }

    #[test]
    fn answers_are_shown_where_their_form_lives() {
        assert_eq!(page_for("/login"), "/");
        assert_eq!(page_for("/login/key/resend"), "/login/key");
        assert_eq!(page_for("/profile/nickname"), "/profile");
        assert_eq!(page_for("/profile/email/remove"), "/profile");
        assert_eq!(
            page_for("/profile/email/abc123def456abc123"),
            "/profile/email/abc123def456abc123"
        );
        assert_eq!(page_for("/signup/verify"), "/signup/verify");
    }
}
