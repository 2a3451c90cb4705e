//! Queries over access rules (`access_rule`) and the generation counter that
//! changes with every user, group, member or rule change (triggers of
//! migration 0004), so a server notices changes made by another process.
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never decide access (`auth::access` does) nor parse patterns.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection};

/// A stored rule: who (kind, name), pattern, actions (`pull,push`, `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    pub who_kind: String,
    pub who_name: String,
    pub pattern: String,
    pub actions: String,
}

/// Inserts or replaces the rule of (who, pattern). Returns true when it is new.
pub fn grant(conn: &Connection, rule: &RuleRow) -> Result<bool> {
    let existed: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM access_rule WHERE who_kind = ?1 AND who_name = ?2 AND pattern = ?3)",
        )?
        .query_row(params![rule.who_kind, rule.who_name, rule.pattern], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO access_rule (who_kind, who_name, pattern, actions, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (who_kind, who_name, pattern) DO UPDATE SET actions = excluded.actions",
    )?
    .execute(params![
        rule.who_kind,
        rule.who_name,
        rule.pattern,
        rule.actions,
        now()
    ])?;
    Ok(!existed)
}

/// Removes the rule of (who, pattern). False when there was none.
pub fn revoke(conn: &Connection, who_kind: &str, who_name: &str, pattern: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM access_rule WHERE who_kind = ?1 AND who_name = ?2 AND pattern = ?3",
        )?
        .execute(params![who_kind, who_name, pattern])?
        > 0)
}

/// Every rule, in a stable order.
pub fn rules(conn: &Connection) -> Result<Vec<RuleRow>> {
    super::collect(
        conn,
        "SELECT who_kind, who_name, pattern, actions FROM access_rule
         ORDER BY pattern, who_kind, who_name",
        |r| {
            Ok(RuleRow {
                who_kind: r.get(0)?,
                who_name: r.get(1)?,
                pattern: r.get(2)?,
                actions: r.get(3)?,
            })
        },
    )
}

/// Whether the registry is closed and the access generation, in one read
/// (what every request asks).
pub fn closed_and_generation(conn: &Connection) -> Result<(bool, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT (EXISTS (SELECT 1 FROM user) OR EXISTS (SELECT 1 FROM setting WHERE key = ?1)),
                    (SELECT n FROM access_generation WHERE id = 1)",
        )?
        .query_row([super::users::CLOSED_KEY], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn every_access_change_moves_the_generation_and_token_uses_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("soute.db"), 2).expect("open");
        let generation = || db.read(closed_and_generation).expect("state").1;
        let mut last = generation();
        let mut moved = |what: &str, f: &dyn Fn(&Connection) -> Result<()>| {
            db.write(|tx| f(tx)).expect(what);
            let now = generation();
            assert_ne!(now, last, "{what} did not move the generation");
            last = now;
        };
        moved("user add", &|c| {
            super::super::users::set_user(c, "a", "h", false).map(drop)
        });
        moved("admin", &|c| {
            super::super::users::set_admin(c, "a", true).map(drop)
        });
        moved("group add", &|c| {
            super::super::groups::add_group(c, "g").map(drop)
        });
        moved("member", &|c| {
            super::super::groups::add_member(c, "g", "a").map(drop)
        });
        let rule = RuleRow {
            who_kind: "group".into(),
            who_name: "g".into(),
            pattern: "**".into(),
            actions: "pull".into(),
        };
        moved("grant", &|c| grant(c, &rule).map(drop));
        moved("regrant", &|c| {
            grant(
                c,
                &RuleRow {
                    actions: "push".into(),
                    ..rule.clone()
                },
            )
            .map(drop)
        });
        moved("revoke", &|c| revoke(c, "group", "g", "**").map(drop));
        moved("member del", &|c| {
            super::super::groups::delete_member(c, "g", "a").map(drop)
        });
        moved("group del", &|c| {
            super::super::groups::delete_group(c, "g").map(drop)
        });
        let before = generation();
        db.write(|tx| {
            super::super::tokens::create(tx, "t", "a", "hash", "**:all", None)?;
            super::super::tokens::touch(tx, "t", 5)
        })
        .expect("token");
        assert_eq!(generation(), before, "token changes need no policy reload");
        moved("user del", &|c| {
            super::super::users::delete_user(c, "a").map(drop)
        });
        assert!(
            db.read(super::super::tokens::list)
                .expect("list")
                .is_empty(),
            "tokens cascade"
        );
    }
}
