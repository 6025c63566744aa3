//! The portal's entrance (健幸マイポータルログイン): the login form, with the links to
//! 新規利用登録 and パスワード再発行. Logging in itself is built on this page next.

use serde::Serialize;

use super::{AppState, Req, Resp};
use crate::error::Result;

#[derive(Serialize)]
struct LoginPage<'a> {
    csrf: &'a str,
}

pub fn page(state: &AppState, req: &Req) -> Result<Resp> {
    state.page("login.html", &LoginPage { csrf: &req.csrf })
}
