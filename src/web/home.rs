//! トップ画面 after login: お知らせ, 資格情報のお知らせ, the member's 健診結果 and
//! 医療費のお知らせ (records, each with a detail page only its owner can open, and PDF
//! documents, see `documents`).

use serde::Serialize;

use super::{AppState, Req, Resp, member};
use crate::db::documents::{self, Listed};
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
    /// 資格情報のお知らせ (the member's own, and as 本人 their dependants').
    qualifications: Vec<DocumentView>,
    checkup_documents: Vec<DocumentView>,
    medical_expense_documents: Vec<DocumentView>,
}

#[derive(Serialize)]
struct DocumentView {
    id: i64,
    date: String,
    title: String,
    /// «PDF 123KB»
    size: String,
    dependant: Option<String>,
}

impl DocumentView {
    fn of(listed: Listed) -> DocumentView {
        DocumentView {
            id: listed.id,
            date: listed.date,
            title: listed.title,
            size: format!("PDF {}KB", (listed.size + 1023) / 1024),
            dependant: listed.dependant,
        }
    }
}

pub async fn page(state: &AppState, req: &Req) -> Result<Resp> {
    let found = member::current_with(state, req, |c, account| {
        let today = jst::date(db::now());
        Ok((
            notices::current(c, &today)?,
            records::for_member(c, account.id, Kind::Checkup)?,
            records::for_member(c, account.id, Kind::MedicalExpense)?,
            documents::visible_to(c, account.id)?,
        ))
    })
    .await?;
    let Some((member, (notices, checkups, medical_expenses, visible))) = found else {
        return Ok(member::login_first(state));
    };
    let of_kind = |kind: documents::Kind| {
        visible
            .iter()
            .filter(|d| d.kind == kind)
            .cloned()
            .map(DocumentView::of)
            .collect::<Vec<_>>()
    };
    let page = HomePage {
        csrf: &req.csrf,
        nickname: member.account.nickname.unwrap_or_default(),
        notices: notices.into_iter().map(view).collect(),
        checkups,
        medical_expenses,
        qualifications: of_kind(documents::Kind::Qualification),
        checkup_documents: of_kind(documents::Kind::Checkup),
        medical_expense_documents: of_kind(documents::Kind::MedicalExpense),
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
