//! The server key's fingerprint (`server_key`): which key this database's secrets are
//! hashed under.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;

pub fn fingerprint(conn: &Connection) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT fingerprint FROM server_key WHERE id = 1")?
        .query_row([], |row| row.get(0))
        .optional()?)
}

pub fn set_fingerprint(conn: &Connection, fingerprint: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO server_key (id, fingerprint) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET fingerprint = ?1",
    )?
    .execute([fingerprint])?;
    Ok(())
}
