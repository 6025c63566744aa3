//! Post/Redirect/Get for every form. A POST that answers with a page (an error next to
//! a field, 「ご案内メールを送信しました」) has that page kept here for a while, and the
//! browser is sent with 303 to `{page}?view={id}`, which shows it. Reload and Back then
//! repeat a GET, never the POST: no second mail, no second counted attempt.
//!
//! A kept page is shown only on its own page, to the browser that posted it (its CSRF
//! cookie) while it is in the same login (its session cookie), for `KEEP_FOR`. The store
//! is bounded: `MAX_PAGE` bytes a page, `MAX_BYTES` in all (oldest go first) and
//! `PER_CLIENT` pages per client address; a page over a bound is answered directly
//! instead. A page that is gone (time, restart, eviction) falls back to the page itself:
//! nothing is lost but the message.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::http::{Req, Resp, redirect};
use crate::secrets;

pub const VIEW_PARAM: &str = "view";
const KEEP_FOR: Duration = Duration::from_secs(30 * 60);
/// Our pages are 3–10 KB; one swollen by escaped input is answered directly.
const MAX_PAGE: usize = 32 * 1024;
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// So that one client's flood cannot push out everyone else's pages.
const PER_CLIENT: usize = 16;

/// Who may see a kept page: this browser, in this login.
pub struct Owner {
    key: Vec<u8>,
    client: String,
}

impl Owner {
    pub fn of(req: &Req) -> Owner {
        // The form token is the server key's hash of the browser's CSRF cookie and its
        // login session: it names both, and nobody without the key can make it.
        Owner {
            key: req.csrf.as_bytes().to_vec(),
            client: req.client_ip().unwrap_or_default(),
        }
    }
}

struct Kept {
    page: String,
    owner: Vec<u8>,
    client: String,
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
    bytes: usize,
}

impl Views {
    /// Turns the page that answered a POST to `post_path` into a 303 to where it is
    /// shown. Redirects, and pages over a bound, pass through; cookies the POST set
    /// travel with the 303.
    pub async fn keep(&self, post_path: &str, owner: &Owner, response: Resp) -> Resp {
        let Some(page) = page_for(post_path) else {
            return response;
        };
        if response.status().is_redirection() {
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let id = secrets::new_token();
        let kept = Kept {
            page: page.to_string(),
            owner: owner.key.clone(),
            client: owner.client.clone(),
            status: parts.status,
            body,
            until: Instant::now() + KEEP_FOR,
        };
        let body = kept.body.clone();
        if !self.insert(id.clone(), kept) {
            return Response::from_parts(parts, Full::new(body));
        }
        let mut answer = redirect(&format!("{page}?{VIEW_PARAM}={id}"));
        for cookie in parts.headers.get_all(header::SET_COOKIE) {
            answer
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        answer
    }

    /// The kept page, unless the member has moved on since: `fresh` is what the page
    /// answers now. A redirect (registered, logged in or out) wins; so does an error when
    /// the kept page was a form (a spent link, an ended session), lest a live-looking
    /// form be shown. A kept error stays, being the more precise of two.
    pub fn show_unless_moved_on(&self, page: &str, id: &str, owner: &Owner, fresh: Resp) -> Resp {
        if fresh.status().is_redirection() {
            return fresh;
        }
        let kept = self.show(page, id, owner);
        match (fresh.status().is_success(), holds_a_form(kept.status())) {
            (false, true) => fresh,
            _ => kept,
        }
    }

    /// The page kept under `id` for this page and owner, or a redirect to the bare page.
    /// `page` must be one `is_page` accepts (it is the fallback's `Location`).
    fn show(&self, page: &str, id: &str, owner: &Owner) -> Resp {
        let store = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let kept = store
            .pages
            .get(id)
            .filter(|k| k.until > Instant::now() && k.page == page)
            .filter(|k| secrets::constant_time_eq(&k.owner, &owner.key));
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
            None => redirect(page),
        }
    }

    /// Stores a page, evicting expired and then oldest ones; false for one over a bound.
    fn insert(&self, id: String, kept: Kept) -> bool {
        if kept.body.len() > MAX_PAGE {
            return false;
        }
        let mut store = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let live_of_client = store
            .pages
            .values()
            .filter(|k| k.client == kept.client && k.until > now)
            .count();
        if live_of_client >= PER_CLIENT {
            return false;
        }
        while let Some(oldest) = store.order.front().cloned() {
            let expired = store.pages.get(&oldest).is_none_or(|k| k.until <= now);
            if !expired && store.bytes + kept.body.len() <= MAX_BYTES {
                break;
            }
            store.order.pop_front();
            if let Some(gone) = store.pages.remove(&oldest) {
                store.bytes -= gone.body.len();
            }
        }
        store.bytes += kept.body.len();
        store.order.push_back(id.clone());
        store.pages.insert(id, kept);
        true
    }
}

/// Whether a page with this status is a form to fill in (as it came, or with an error
/// by a field: 401, 422) rather than a page that says something went wrong.
fn holds_a_form(status: StatusCode) -> bool {
    status.is_success()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::UNPROCESSABLE_ENTITY
}

/// Where the answer to a POST is shown: the page its form lives on. None for paths that
/// are no form of ours (their answer is not kept).
fn page_for(post_path: &str) -> Option<&str> {
    Some(match post_path {
        "/login" | "/logout" => "/",
        "/login/key" => "/login/key",
        "/login/key/resend" => "/login/key",
        "/signup" | "/signup/verify" | "/signup/profile" => post_path,
        "/reset" | "/reset/login" | "/reset/password" => post_path,
        "/profile/login-id" | "/profile/nickname" | "/profile/password" => "/profile",
        "/profile/email/add" | "/profile/email/remove" => "/profile",
        "/profile/email/confirm" => post_path,
        _ => return None,
    })
}

/// Whether `?view=` means a kept page on this path: one of `page_for`'s pages.
pub fn is_page(path: &str) -> bool {
    matches!(
        path,
        "/" | "/login/key"
            | "/signup"
            | "/signup/verify"
            | "/signup/profile"
            | "/reset"
            | "/reset/login"
            | "/reset/password"
            | "/profile"
            | "/profile/email/confirm"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::http::html;

    fn owner(browser: &str, client: &str) -> Owner {
        Owner {
            key: browser.as_bytes().to_vec(),
            client: client.into(),
        }
    }

    fn keep(views: &Views, path: &str, owner: &Owner, response: Resp) -> Resp {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(views.keep(path, owner, response))
    }

    fn location(response: &Resp) -> String {
        response.headers()["location"].to_str().unwrap().to_string()
    }

    #[test]
    fn a_posted_page_is_shown_on_its_page_to_its_owner_only() {
        let views = Views::default();
        let (a, b) = (owner("a", "192.0.2.1"), owner("b", "192.0.2.1"));
        let page = html(StatusCode::UNPROCESSABLE_ENTITY, "エラー".into());
        let answer = keep(&views, "/signup", &a, page);
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let location = location(&answer);
        let id = location.strip_prefix("/signup?view=").expect(&location);
        // Reload shows it again.
        assert_eq!(views.show("/signup", id, &a).status(), 422);
        assert_eq!(views.show("/signup", id, &a).status(), 422);
        // Another browser, or another login in this one, gets the bare page.
        let other = views.show("/signup", id, &b);
        assert_eq!(
            (other.status(), location_of(&other)),
            (StatusCode::SEE_OTHER, "/signup".into())
        );
        // On another page the id means nothing.
        assert_eq!(views.show("/", id, &a).status(), StatusCode::SEE_OTHER);
    }

    fn location_of(response: &Resp) -> String {
        location(response)
    }

    #[test]
    fn redirects_foreign_paths_and_large_pages_pass_unkept() {
        let views = Views::default();
        let a = owner("a", "192.0.2.1");
        let passed = keep(&views, "/login", &a, redirect("/login/key"));
        assert_eq!(location(&passed), "/login/key");
        let foreign = keep(
            &views,
            "//evil.example/x",
            &a,
            html(StatusCode::NOT_FOUND, "x".into()),
        );
        assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
        let big = keep(
            &views,
            "/signup",
            &a,
            html(StatusCode::OK, "x".repeat(MAX_PAGE + 1)),
        );
        assert_eq!(big.status(), StatusCode::OK);
        assert!(views.inner.lock().unwrap().pages.is_empty());
    }

    #[test]
    fn one_client_keeps_a_few_pages_and_the_store_stays_within_its_bytes() {
        let views = Views::default();
        let flood = owner("f", "198.51.100.7");
        for _ in 0..PER_CLIENT + 5 {
            keep(&views, "/signup", &flood, html(StatusCode::OK, "x".into()));
        }
        assert_eq!(views.inner.lock().unwrap().pages.len(), PER_CLIENT);
        let page = "y".repeat(MAX_PAGE);
        for n in 0..(MAX_BYTES / MAX_PAGE) + 10 {
            let client = owner("c", &format!("203.0.113.{n}"));
            let kept = keep(
                &views,
                "/signup",
                &client,
                html(StatusCode::OK, page.clone()),
            );
            assert_eq!(kept.status(), StatusCode::SEE_OTHER);
        }
        let store = views.inner.lock().unwrap();
        assert!(store.bytes <= MAX_BYTES);
        assert_eq!(
            store.bytes,
            store.pages.values().map(|k| k.body.len()).sum::<usize>()
        );
    }

    #[test]
    fn a_member_who_moved_on_sees_where_they_stand() {
        let views = Views::default();
        let a = owner("a", "192.0.2.1");
        let id_of = |answer: Resp| location(&answer).split("view=").nth(1).unwrap().to_string();
        let form = id_of(keep(
            &views,
            "/reset/password",
            &a,
            html(StatusCode::UNPROCESSABLE_ENTITY, "form".into()),
        ));
        let void = id_of(keep(
            &views,
            "/login/key",
            &a,
            html(StatusCode::FORBIDDEN, "void".into()),
        ));
        let gone = || html(StatusCode::GONE, "gone".into());
        let shown =
            |page, id: &str, fresh| views.show_unless_moved_on(page, id, &a, fresh).status();
        // Registered or logged out: the page's redirect.
        assert_eq!(
            shown("/reset/password", &form, redirect("/")),
            StatusCode::SEE_OTHER
        );
        // A spent link: not the live-looking form.
        assert_eq!(shown("/reset/password", &form, gone()), StatusCode::GONE);
        // Still there: the kept answer.
        assert_eq!(
            shown("/reset/password", &form, html(StatusCode::OK, "".into())),
            422
        );
        // A kept error stays: it says more than the page's general one.
        assert_eq!(shown("/login/key", &void, gone()), StatusCode::FORBIDDEN);
    }

    #[test]
    fn answers_are_shown_where_their_form_lives() {
        assert_eq!(page_for("/login"), Some("/"));
        assert_eq!(page_for("/login/key/resend"), Some("/login/key"));
        assert_eq!(page_for("/profile/nickname"), Some("/profile"));
        assert_eq!(page_for("/profile/email/remove"), Some("/profile"));
        assert_eq!(
            page_for("/profile/email/confirm"),
            Some("/profile/email/confirm")
        );
        assert_eq!(page_for("/profile/email/abc123"), None);
        assert_eq!(page_for("/signup/verify"), Some("/signup/verify"));
        assert_eq!(page_for("//evil.example/x"), None);
        assert_eq!(page_for("/profile/email/../../x"), None);
        assert!(is_page("/profile") && is_page("/profile/email/confirm"));
        assert!(!is_page("//evil.example/x") && !is_page("/healthz"));
    }
}
