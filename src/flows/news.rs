//! 「新しいお知らせがあります」: when something is published for members (a document, a
//! record, a notice), each of them gets one mail per import, not one per item. The mail
//! says only that there is something new and where: no personal data. Members who turned
//! it off (プロフィール設定), who have not signed up, or who are disabled get none.

use std::collections::BTreeSet;

use rusqlite::Connection;

use crate::db::members;
use crate::error::Result;
use crate::mail::{self, OutgoingMail};

/// Queues the mail for each member of `audience` who wants it. How many mails.
pub fn announce(tx: &Connection, audience: &BTreeSet<i64>, from: &str, now: i64) -> Result<usize> {
    let mut queued = 0;
    for &member_id in audience {
        let Some(account) = members::account(tx, member_id)? else {
            continue;
        };
        let reachable = account.registered_at.is_some() && account.disabled_at.is_none();
        if !reachable || !account.notify.news {
            continue;
        }
        for address in members::emails(tx, member_id)? {
            mail::queue(tx, &OutgoingMail::News, &address, from, now)?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Everyone a notice on the top page reaches: every registered member.
pub fn everyone(tx: &Connection) -> Result<BTreeSet<i64>> {
    members::registered_ids(tx)
}
