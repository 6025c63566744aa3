//! The web site: pages by flow (`login`, `signup`, …), every route in `route`, the
//! Post/Redirect/Get of every form (`answer`, `views`), and error pages (`errors`).

mod documents;
mod errors;
mod favicon;
mod home;
mod http;
mod linked;
mod login;
mod member;
pub mod passkeys;
mod profile;
mod reset;
mod signup;
mod state;
mod views;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::connections::{Caps, Connections};
use crate::error::{Error, Result};
use crate::shutdown::stopping;
pub use errors::{ErrorPage, Trouble, error_response};
use errors::{error_page, too_many};
pub use http::{Req, Resp};
pub use state::{AppState, WebLimits};
use tokio_rustls::TlsAcceptor;

/// Forms are a few fields; anything larger is not ours.
const MAX_BODY_BYTES: usize = 16 * 1024;
const BODY_TIMEOUT: Duration = Duration::from_secs(20);

/// Forms where a secret is typed: guessing them is what the secret-entry limit slows.
const SECRET_ENTRIES: [&str; 5] = [
    "/login",
    "/login/key",
    "/login/passkey/finish",
    "/signup/verify",
    "/reset/login",
];

/// What a listener serves: the portal, or the operator's `/metrics` and `/healthz`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Portal,
    Metrics,
}

/// Serves HTTP until `shutdown` turns true.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    site: Site,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let http = &state.config.http;
    let caps = Caps {
        total: http.max_connections,
        per_ip: http.max_connections_per_ip,
        per_network: http.max_connections_per_network,
    };
    let header_timeout = http.header_timeout.0;
    let connections = Arc::new(Connections::default());
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let exempt = state.config.http.trusted_proxies.contains(&remote.ip());
        let Ok(place) = connections.admit(remote.ip(), caps, exempt) else {
            continue; // Over a cap: drop the connection rather than queue it.
        };
        let (state, mut shutdown, tls) = (state.clone(), shutdown.clone(), tls.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move {
                    Ok::<_, Infallible>(match site {
                        Site::Portal => handle(state, request, remote).await,
                        Site::Metrics => operator(&state, request.uri().path()).await,
                    })
                }
            });
            match tls {
                None => {
                    let io = TokioIo::new(stream);
                    serve_connection(io, service, header_timeout, &mut shutdown).await
                }
                Some(acceptor) => {
                    // The handshake counts against the header timeout: a stalled one ends.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
                    {
                        let io = TokioIo::new(stream);
                        serve_connection(io, service, header_timeout, &mut shutdown).await;
                    }
                }
            }
            drop(place);
        });
    }
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    while connections.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if connections.open() > 0 {
        tracing::warn!("web requests still under way at shutdown; closing them");
    }
}

/// One HTTP/1 connection, plain or TLS, until it ends or shutdown closes it gracefully.
async fn serve_connection<IO, S>(
    io: TokioIo<IO>,
    service: S,
    header_timeout: Duration,
    shutdown: &mut watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Full<Bytes>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        // A request under way is answered; an idle keep-alive connection closes.
        () = stopping(shutdown) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
        // No connection holds its place for ever (a client that sends requests and never
        // reads the answers): after its time it is closed, a request under way given
        // a little more.
        () = tokio::time::sleep(MAX_CONNECTION_TIME) => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_TIME, connection).await;
        }
    }
}

/// The longest a web connection is kept (members' browsers reconnect at once).
const MAX_CONNECTION_TIME: Duration = Duration::from_secs(300);

/// How long shutdown waits for requests under way.
const DRAIN_TIME: Duration = Duration::from_secs(8);

/// The operator's listener: metrics for Prometheus, and a health check.
async fn operator(state: &AppState, path: &str) -> Resp {
    let text = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        let kind =
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, kind);
        response
    };
    match path {
        "/metrics" => match state.db.read(crate::metrics::render).await {
            Ok(body) => text(
                StatusCode::OK,
                body + &crate::metrics::hashing(&state.hashing),
            ),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}\n")),
        },
        "/healthz" => healthz(state).await,
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// 200 when the database answers, 503 when it does not.
async fn healthz(state: &AppState) -> Resp {
    let alive = state.db.read(crate::db::stats::ping).await;
    let (status, body) = match alive {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn handle(state: Arc<AppState>, request: Request<Incoming>, remote: SocketAddr) -> Resp {
    let (parts, body) = request.into_parts();
    let body =
        tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await;
    let mut response = match body {
        Ok(Ok(collected)) => {
            let req = Req::new(
                parts.method,
                parts.uri.path().to_string(),
                parts.uri.query().unwrap_or("").to_string(),
                parts.headers,
                remote.ip(),
                &http::SiteKeys {
                    trusted_proxies: &state.config.http.trusted_proxies,
                    key: &state.key,
                    https: state.https(),
                },
                collected.to_bytes(),
            );
            let csrf_cookie = req.csrf_is_new.then(|| {
                let name = http::csrf_cookie(state.https());
                http::set_cookie(name, &req.csrf_cookie, "/", 12 * 3600, state.https())
            });
            let response = match over_limit(&state, &req) {
                // A flood is answered at once, not kept for a later GET.
                true => too_many(&state, &req.path),
                false => answer(&state, req).await,
            };
            match csrf_cookie {
                Some(cookie) => http::with_cookie(response, &cookie),
                None => response,
            }
        }
        _ => error_page(
            &state,
            Error::BadRequest("body too large or too slow"),
            parts.uri.path(),
        ),
    };
    http::secure_headers(&mut response, state.https());
    response
}

/// Whether this client address has used up its requests, or its secret entries.
fn over_limit(state: &AppState, req: &Req) -> bool {
    let Some(ip) = req.client_ip() else {
        return false;
    };
    let secret = req.method == Method::POST && SECRET_ENTRIES.contains(&req.path.as_str());
    !state.limits.requests.allow(&ip) || (secret && !state.limits.secret_entries.allow(&ip))
}

/// The page or redirect for a request. A page answering a POST is kept and shown by a
/// GET after a 303 (see `views`), so that reload and Back never post again. A kept page
/// is shown only while its page would still be shown (see `show_unless_moved_on`).
async fn answer(state: &AppState, req: Req) -> Resp {
    let (path, owner) = (req.path.clone(), views::Owner::of(&req));
    let shown = req.query_param(views::VIEW_PARAM);
    if req.method == Method::GET
        && let Some(id) = shown.filter(|_| views::is_page(&path))
    {
        let fresh = route(state, req)
            .await
            .unwrap_or_else(|e| error_page(state, e, &path));
        return state.views.show_unless_moved_on(&path, &id, &owner, fresh);
    }
    // Refused forms (no cookie yet, a wrong token, a bad body) are answered at once:
    // keeping them would only let a stranger fill the store.
    let keep = req.method == Method::POST && !req.csrf_is_new;
    let result = route(state, req).await;
    // Refused forms, and "busy, try again" (its Retry-After must reach the browser):
    // answered at once, never kept.
    let refused = matches!(
        result,
        Err(Error::Csrf | Error::NotFound | Error::BadRequest(_) | Error::Busy)
    );
    let response = result.unwrap_or_else(|e| error_page(state, e, &path));
    match keep && !refused {
        true => state.views.keep(&path, &owner, response).await,
        false => response,
    }
}

/// Every route karamail serves.
async fn route(state: &AppState, req: Req) -> Result<Resp> {
    use crate::db::records::Kind::{Checkup, MedicalExpense};
    let path = req.path.clone();
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    match path.as_str() {
        "/" if get => login::page(state, &req),
        "/assets/style.css" if get => Ok(stylesheet(state)),
        "/assets/passkey.js" if get => Ok(script()),
        "/favicon.ico" if get => Ok(favicon::response()),
        "/healthz" if get => Ok(healthz(state).await),
        // Procedures A and B, from the mailed link on.
        "/signup" if get => signup::request_form(state, &req),
        "/signup" if post => signup::request_submit(state, &req).await,
        "/signup/verify" if get => signup::verify_form(state, &req).await,
        "/signup/verify" if post => signup::verify_submit(state, &req).await,
        "/signup/profile" if get => signup::profile_form(state, &req).await,
        "/signup/profile" if post => signup::profile_submit(state, &req).await,
        "/signup/done" if get => signup::done(state),
        p if get && p.starts_with("/signup/link/") => {
            signup::open_link(state, &p["/signup/link/".len()..]).await
        }
        // Login with the mailed one-time key.
        "/login" if post => login::submit(state, &req).await,
        "/login/key" if get => login::key_form(state, &req).await,
        "/login/key" if post => login::key_submit(state, &req).await,
        "/login/key/resend" if post => login::resend(state, &req).await,
        "/logout" if post => login::logout(state, &req).await,
        "/login/passkey" => Ok(passkeys::without_script(state, false)),
        "/login/passkey/options" if post => passkeys::login_options(state, &req).await,
        "/login/passkey/finish" if post => passkeys::login_finish(state, &req).await,
        "/passkeys/register" => Ok(passkeys::without_script(state, true)),
        "/passkeys/register/options" if post => passkeys::register_options(state, &req).await,
        "/passkeys/register/finish" if post => passkeys::register_finish(state, &req).await,
        "/passkeys/remove" if post => passkeys::remove(state, &req).await,
        // The member's pages.
        "/home" if get => home::page(state, &req).await,
        p if get && p.starts_with("/records/checkup/") => {
            home::record(state, &req, Checkup, &p["/records/checkup/".len()..]).await
        }
        p if get && p.starts_with("/records/medical-expense/") => {
            home::record(
                state,
                &req,
                MedicalExpense,
                &p["/records/medical-expense/".len()..],
            )
            .await
        }
        p if get && p.starts_with("/documents/") => {
            documents::download(state, &req, &p["/documents/".len()..]).await
        }
        "/profile" if get => profile::page(state, &req).await,
        "/profile/login-id" if post => profile::change_login_id(state, &req).await,
        "/profile/nickname" if post => profile::change_nickname(state, &req).await,
        "/profile/password" if post => profile::change_password(state, &req).await,
        "/profile/notify" if post => profile::change_notify(state, &req).await,
        "/profile/sessions/end-others" if post => profile::end_others(state, &req).await,
        "/profile/email/add" if post => profile::add_email(state, &req).await,
        "/profile/email/remove" if get => profile::remove_email_form(state, &req).await,
        "/profile/email/remove" if post => profile::remove_email(state, &req).await,
        "/profile/email/confirm" if get => profile::confirm_email_form(state, &req).await,
        "/profile/email/confirm" if post => profile::confirm_email(state, &req).await,
        "/profile/email/added" if get => profile::email_added(state, &req),
        p if get && p.starts_with("/profile/email/") => {
            profile::open_email_link(state, &p["/profile/email/".len()..]).await
        }
        // パスワード再発行.
        "/reset" if get => reset::request_form(state, &req),
        "/reset" if post => reset::request_submit(state, &req).await,
        "/reset/login" if get => reset::temp_login_form(state, &req).await,
        "/reset/login" if post => reset::temp_login(state, &req).await,
        "/reset/password" if get => reset::password_form(state, &req).await,
        "/reset/password" if post => reset::password_submit(state, &req).await,
        "/reset/done" if get => reset::done(state),
        p if get && p.starts_with("/reset/link/") => {
            reset::open_link(state, &p["/reset/link/".len()..]).await
        }
        _ => Err(Error::NotFound),
    }
}

/// The one script of the site: the passkey ceremony (the WebAuthn API has no form).
fn script() -> Resp {
    let body = Bytes::from_static(PASSKEY_JS.as_bytes());
    http::typed(StatusCode::OK, "text/javascript; charset=utf-8", body)
}

const PASSKEY_JS: &str = include_str!("../../templates/passkey.js");

fn stylesheet(state: &AppState) -> Resp {
    let body = state.templates.get().stylesheet.clone();
    http::typed(StatusCode::OK, "text/css; charset=utf-8", body)
}
