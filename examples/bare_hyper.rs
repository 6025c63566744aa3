//! The reference for the page benchmarks (`bench/pages.sh`): a bare hyper 1 server
//! that answers every request with the same bytes — the page karamail sent — and
//! nothing else: no routing, no templates, no database. What karamail reaches against
//! it is the cost of what karamail does.
//!
//!   cargo run --release --example bare_hyper -- 127.0.0.1:18080 page.html

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, header};
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: bare_hyper ADDR FILE");
    let body = Bytes::from(std::fs::read(
        args.next().expect("usage: bare_hyper ADDR FILE"),
    )?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request| {
                let body = body.clone();
                async move {
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
