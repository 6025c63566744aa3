//! トップ画面 after login: お知らせ, the member's 健診結果 and 医療費のお知らせ, each
//! with a detail page that only the record's owner can open.

use serde::Serialize;

use super::{AppState, Req, Resp, member};
use crate::db::notices::{self, Notice};
use crate::db::records::{self, Kind, Record};
use crate::db::{self};
use crate::error::{Error, Result};
use crate::jst;

#[derive(Serialize)]
struct NoticeView {
    title: String,
    body: String,
    published: String,
}

#[derive(Serialize)]
struct HomePage<'a> {
    csrf: &'a str,
    nickname: String,
    notices: Vec<NoticeView>,
    checkups: Vec<Record>,
    medical_expenses: Vec<Record>,
}

pub async fn page(state: &AppState, req: &Req) -> Result<Resp> {
    let found = member::current_with(state, req, |c, account| {
        let today = jst::date(db::now());
        Ok((
            notices::current(c, &today)?,
            records::for_member(c, account.id, Kind::Checkup)?,
            records::for_member(c, account.id, Kind::MedicalExpense)?,
        ))
    })
    .await?;
    let Some((member, (notices, checkups, medical_expenses))) = found else {
        return Ok(member::login_first(state));
    };
    let page = HomePage {
        csrf: &req.csrf,
        nickname: member.account.nickname.unwrap_or_default(),
        notices: notices.into_iter().map(view).collect(),
        checkups,
        medical_expenses,
    };
    state.page("home.html", &page)
}

fn view(notice: Notice) -> NoticeView {
    NoticeView {
        title: notice.title,
        body: notice.body,
        published: jst::date(notice.published_at),
    }
}

#[derive(Serialize)]
struct RecordPage<'a> {
    csrf: &'a str,
    heading: &'static str,
    record: Record,
}

/// `/records/checkup/{id}` or `/records/medical-expense/{id}`. Another member's id, or
/// one that does not exist, is the same 404.
pub async fn record(state: &AppState, req: &Req, kind: Kind, id: &str) -> Result<Resp> {
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let id: i64 = id.parse().map_err(|_| Error::NotFound)?;
    let member_id = member.account.id;
    let record = state
        .db
        .read(move |c| records::find_for_member(c, member_id, kind, id))
        .await?
        .ok_or(Error::NotFound)?;
    let heading = match kind {
        Kind::Checkup => "健診結果",
        Kind::MedicalExpense => "医療費のお知らせ",
    };
    state.page(
        "record.html",
        &RecordPage {
            csrf: &req.csrf,
            heading,
            record,
        },
    )
}
