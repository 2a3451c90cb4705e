//! The content generation (migration 0014): a counter that triggers bump on
//! every change to a tag, a manifest or a repository row, by any process.
//! The manifest read cache (`registry::read_cache`) compares it with the
//! value an entry was filled at.
//!
//! It must never be written by anything but those triggers.

use crate::error::Result;
use rusqlite::Connection;

/// Whether requests need credentials, the access generation and the content
/// generation, in one read (what every request reads first).
pub fn read_state(conn: &Connection) -> Result<(bool, i64, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT (EXISTS (SELECT 1 FROM user) OR EXISTS (SELECT 1 FROM setting WHERE key = ?1)),
                    (SELECT n FROM access_generation WHERE id = 1),
                    (SELECT n FROM content_generation WHERE id = 1)",
        )?
        .query_row([super::users::CLOSED_KEY], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?)
}

/// The current content generation.
pub fn generation(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT n FROM content_generation WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}
