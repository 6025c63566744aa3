//! Queries on `outbox`: mails waiting to go out, and what happened to those that did.

use rusqlite::{Connection, params};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub params: String,
    pub message_id: String,
    pub attempts: u32,
    pub created_at: i64,
}

pub fn insert(
    conn: &Connection,
    kind: &str,
    recipient: &str,
    params_json: &str,
    message_id: &str,
    bulk: bool,
    now: i64,
) -> Result<i64> {
    super::mail_was_queued();
    conn.prepare_cached(
        "INSERT INTO outbox (kind, recipient, params, message_id, created_at, next_attempt_at, bulk)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
    )?
    .execute(params![kind, recipient, params_json, message_id, now, bulk])?;
    Ok(conn.last_insert_rowid())
}

/// Mails of `kind` with these `params` queued since `since`, whatever became of them.
pub fn count_queued_since(
    conn: &Connection,
    kind: &str,
    params_json: &str,
    since: i64,
) -> Result<u32> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM outbox WHERE kind = ?1 AND params = ?2 AND created_at > ?3",
        )?
        .query_row(params![kind, params_json, since], |r| r.get(0))?)
}

/// Mails of one class (bulk or not) due now, the longest due first (in the order they
/// were queued when due together). The index `outbox_due_class` gives this order as it
/// is: a backlog of any size costs nothing to take from (ordered by `id` alone, each
/// claim sorted the backlog).
pub fn due(conn: &Connection, now: i64, limit: usize, bulk: bool) -> Result<Vec<QueuedMail>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, recipient, params, message_id, attempts, created_at FROM outbox
         WHERE status = 'queued' AND bulk = ?3 AND next_attempt_at <= ?1
         ORDER BY next_attempt_at, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit as i64, bulk], |row| {
        Ok(QueuedMail {
            id: row.get(0)?,
            kind: row.get(1)?,
            recipient: row.get(2)?,
            params: row.get(3)?,
            message_id: row.get(4)?,
            attempts: row.get(5)?,
            created_at: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// When the next queued mail that is not `busy` (being sent) falls due, if any.
pub fn next_due_at(conn: &Connection, busy: &[i64]) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, next_attempt_at FROM outbox WHERE status = 'queued' ORDER BY next_attempt_at LIMIT ?1",
    )?;
    let rows = stmt.query_map([busy.len() as i64 + 1], |r| {
        Ok((r.get::<_, i64>(0)?, r.get(1)?))
    })?;
    for row in rows {
        let (id, at) = row?;
        if !busy.contains(&id) {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// Makes the mails that waited for the transport due (it is back), as due since they
/// were queued: they go out in the order they were queued, before newer mails; a mail
/// waiting for its own recipient keeps its own time.
pub fn retry_all_now(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET next_attempt_at = min(created_at, ?1)
         WHERE status = 'queued' AND transport_fault = 1",
        )?
        .execute([now])?)
}

pub fn mark_sent(conn: &Connection, id: i64, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE outbox SET status = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1")?.execute(
        params![id, now],
    )?;
    Ok(())
}

/// A try that failed for now; `transport`: for the transport's sake, not the mail's —
/// then the mail keeps its time and so its place in the queue (every lane's pause
/// decides when it is tried again), and the backlog goes out in order.
pub fn mark_retry(
    conn: &Connection,
    id: i64,
    next_attempt_at: i64,
    error: &str,
    transport: bool,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, transport_fault = ?4,
                next_attempt_at = CASE WHEN ?4 THEN next_attempt_at ELSE ?2 END
         WHERE id = ?1",
    )?
    .execute(params![id, next_attempt_at, error, transport])?;
    Ok(())
}

/// Mails marked failed that were the relay's refusal after all: queued again, to go
/// when the transport is back.
pub fn requeue_for_transport(conn: &Connection, ids: &[i64], now: i64) -> Result<()> {
    for id in ids {
        conn.prepare_cached("UPDATE outbox SET status = 'queued', transport_fault = 1, next_attempt_at = ?2,
                    last_error = 'the relay refused mail to several domains alike: ' || coalesce(last_error, '')
             WHERE id = ?1 AND status = 'failed'")?.execute(
            params![id, now],
        )?;
    }
    Ok(())
}

/// A permanent refusal: kept, with the reason, for the sysadmin; never retried.
pub fn mark_failed(conn: &Connection, id: i64, error: &str) -> Result<()> {
    conn.prepare_cached("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1")?.execute(
        params![id, error],
    )?;
    Ok(())
}

/// A mail that will never be sent: its useful life passed (`expired`).
pub fn mark_expired(conn: &Connection, id: i64, reason: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbox SET status = 'expired', last_error = ?2 WHERE id = ?1 AND status = 'queued'",
    )?
    .execute(params![id, reason])?;
    Ok(())
}

/// The sysadmin's `outbox cancel ID`: a queued or failed mail is never sent.
pub fn cancel(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn.prepare_cached("UPDATE outbox SET status = 'cancelled', last_error = coalesce(last_error || '; ', '') || 'cancelled by the sysadmin'
         WHERE id = ?1 AND status IN ('queued', 'failed')")?.execute(
        [id],
    )? == 1)
}

/// A row as `karamail outbox list` shows it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

/// The newest rows first, of one status or all.
pub fn list(conn: &Connection, status: Option<&str>, limit: usize) -> Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, kind, recipient, status, attempts, next_attempt_at, sent_at, last_error FROM outbox
         WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![status, limit as i64], |r| {
        Ok(Row {
            id: r.get(0)?,
            kind: r.get(1)?,
            recipient: r.get(2)?,
            status: r.get(3)?,
            attempts: r.get(4)?,
            next_attempt_at: r.get(5)?,
            sent_at: r.get(6)?,
            last_error: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many mails are in each state.
pub fn count_by_status(conn: &mut Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Queues mail `id` (failed or waiting) to go now; without an id, every failed mail.
pub fn requeue(conn: &Connection, id: Option<i64>, now: i64) -> Result<usize> {
    super::mail_was_queued();
    Ok(match id {
        Some(id) => conn.prepare_cached("UPDATE outbox SET status = 'queued', next_attempt_at = ?2 WHERE id = ?1 AND status != 'sent'")?.execute(
            params![id, now],
        )?,
        None => conn.prepare_cached("UPDATE outbox SET status = 'queued', next_attempt_at = ?1 WHERE status = 'failed'")?.execute( [now])?,
    })
}

/// Removes sent mail older than `before`; queued and failed mail is never removed.
/// Counted first, as retention counts (the `/metrics` counters do not go down).
pub fn purge_sent(conn: &Connection, before: i64) -> Result<usize> {
    super::retention::purge_mail(conn, "status = 'sent' AND sent_at < ?1", before)
}
