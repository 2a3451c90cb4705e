//! The admin page's forms (administrators only): users (add with a password,
//! delete, set the password, make admin or not), groups (add, delete, add or
//! remove a member), access rules (grant, revoke), API tokens (create,
//! with scopes and a lifetime; revoke) and upstreams (add, delete). Each form's words are parsed by the CLI's own parser
//! (`cli::parse` of `soute user|group|access|upstream ...`), so the grammar
//! and validation are `soute`'s, then run through the same registry
//! functions as the CLI and recorded in the audit log as an `admin` event
//! with those words.
//!
//! It must never run before `actions::post` checked the Origin and CSRF
//! token and [`Viewer::require_admin`] passed, put a password or secret in
//! the audit log or a page, nor let a form value become a flag of the parsed
//! command line (values starting with `-` are refused).

use super::session::{self, field, Viewer};
use super::Gate;
use crate::cli::{AccessAction, Command, GroupAction, TokenAction, UpstreamAction, UserAction};
use crate::db::upstreams::UpstreamRow;
use crate::error::{Error, Result};
use crate::http::{Request, Response};
use crate::registry::{AuditAction, AuditEvent};

fn invalid(why: impl Into<String>) -> Error {
    Error::InvalidParameter(why.into())
}

/// `words` parsed as `soute` would parse them (every value from the form
/// went through [`word`] or an equal check first).
fn parse_words(words: &[&str]) -> Result<Command> {
    let argv = words.iter().map(std::ffi::OsString::from).collect();
    crate::cli::parse(argv, &|_| None).map_err(|e| invalid(e.to_string()))
}

/// The value of form field `name`, trimmed, refused when it could be read as
/// a flag or is empty.
fn word<'f>(form: &'f [(String, String)], name: &str) -> Result<&'f str> {
    let v = field(form, name).trim();
    if v.is_empty() {
        return Err(invalid(format!("{name} is required")));
    }
    if v.starts_with('-') {
        return Err(invalid(format!("{name} must not start with '-'")));
    }
    Ok(v)
}

/// Run the admin form `what` (the path after `/ui/admin/`); `None` when
/// there is no such form.
pub fn post(
    gate: &dyn Gate,
    req: &Request<'_>,
    viewer: &Viewer,
    what: &str,
    form: &[(String, String)],
) -> Result<Option<Response>> {
    viewer.require_admin()?;
    let registry = gate.registry();
    if what == "token" {
        return create_token(gate, req, viewer, form).map(Some);
    }
    let done = match what {
        "user/add" => {
            let name = word(form, "name")?;
            let password = field(form, "password");
            let admin = field(form, "admin") == "yes";
            let words = ["user", "add", name];
            let mut words = words.to_vec();
            if admin {
                words.push("--admin");
            }
            let Command::User {
                action: UserAction::Add(name),
                admin,
                ..
            } = parse_words(&words)?
            else {
                return Err(invalid("not a user add"));
            };
            if registry.user_exists(&name)? {
                return Err(invalid(format!("user {name} exists")));
            }
            let is_admin = registry.add_user(&name, password, admin)?;
            let flag = if admin { " --admin" } else { "" };
            let role = if is_admin {
                "an administrator"
            } else {
                "a user"
            };
            (
                format!("user add {name}{flag}"),
                format!("{name} added, {role}."),
            )
        }
        "user/passwd" => {
            let name = user_word(viewer, form, "passwd", false)?;
            if !registry.user_exists(&name)? {
                return Err(invalid(format!("no user {name}")));
            }
            registry.set_user(&name, field(form, "password"))?;
            (
                format!("user passwd {name}"),
                format!("{name}'s password changed; their sessions ended."),
            )
        }
        "user/del" => {
            let name = user_word(viewer, form, "del", true)?;
            if !registry.delete_user(&name)? {
                return Err(invalid(format!("no user {name}")));
            }
            (format!("user del {name}"), format!("{name} deleted."))
        }
        "user/admin" => {
            let on = field(form, "admin") == "yes";
            let name = user_word(viewer, form, "admin", !on)?;
            let yes = if on { "yes" } else { "no" };
            let Command::User {
                action: UserAction::Admin(name, on),
                ..
            } = parse_words(&["user", "admin", &name, yes])?
            else {
                return Err(invalid("not a user admin"));
            };
            registry.set_admin(&name, on)?;
            let now = if on {
                "an administrator"
            } else {
                "no longer an administrator"
            };
            (
                format!("user admin {name} {yes}"),
                format!("{name} is {now}."),
            )
        }
        "group/add" | "group/del" | "group/member" => group(gate, form, what)?,
        "rule/add" | "rule/del" => rule(gate, form, what)?,
        "upstream/add" | "upstream/del" => upstream(gate, form, what)?,
        "token/del" => {
            let name = word(form, "name")?;
            let Command::Token {
                action: TokenAction::Revoke(name),
                ..
            } = parse_words(&["token", "revoke", name])?
            else {
                return Err(invalid("not a token revoke"));
            };
            if !registry.revoke_token(&name)? {
                return Err(invalid(format!("no token {name}")));
            }
            (
                format!("token revoke {name}"),
                format!("token {name} revoked: it no longer signs in, and its sessions ended."),
            )
        }
        _ => return Ok(None),
    };
    let (words, message) = done;
    registry.audit(
        &AuditEvent::new(AuditAction::Admin, viewer.name(), req.remote.ip())
            .detail(format!("{words} (web UI)")),
    );
    // Post, redirect, get: a reload shows the page again, it does not
    // repeat the change; the message rides along once in a cookie.
    Ok(Some(super::redirect("/ui/admin").header(
        "Set-Cookie",
        session::set_flash(req, viewer, &message),
    )))
}

/// The user a `user` form names, checked by `soute user ACTION NAME`'s
/// parser; `not_self`: an administrator may not do it to themselves here
/// (deleting or demoting oneself would lock the UI's only admin out).
fn user_word(
    viewer: &Viewer,
    form: &[(String, String)],
    action: &str,
    not_self: bool,
) -> Result<String> {
    let name = word(form, "name")?;
    let what = match action {
        "del" => "delete",
        "admin" => "remove administrator rights from",
        other => other,
    };
    if not_self && viewer.who.user() == Some(name) {
        return Err(invalid(format!(
            "you may not {what} your own account here (the command `soute user {action} {name}` does it)"
        )));
    }
    let words = match action {
        "admin" => vec!["user", "admin", name, "no"],
        _ => vec!["user", action, name],
    };
    match parse_words(&words)? {
        Command::User { .. } => Ok(name.to_string()),
        _ => Err(invalid("not a user command")),
    }
}

type Done = (String, String);

fn group(gate: &dyn Gate, form: &[(String, String)], what: &str) -> Result<Done> {
    let registry = gate.registry();
    let g = word(form, "group")?;
    let words = match what {
        "group/add" => vec!["group", "add", g],
        "group/del" => vec!["group", "del", g],
        _ => {
            let op = if field(form, "op") == "del" {
                "del"
            } else {
                "add"
            };
            vec!["group", "member", op, g, word(form, "user")?]
        }
    };
    let Command::Group { action, .. } = parse_words(&words)? else {
        return Err(invalid("not a group command"));
    };
    let message = match action {
        GroupAction::Add(g) => {
            if !registry.add_group(&g)? {
                return Err(invalid(format!("group {g} exists")));
            }
            format!("group {g} added.")
        }
        GroupAction::Del(g) => {
            if !registry.delete_group(&g)? {
                return Err(invalid(format!("no group {g}")));
            }
            format!("group {g} deleted, with its members and rules.")
        }
        GroupAction::MemberAdd { group, user } => {
            if registry.add_member(&group, &user)? {
                format!("{user} is now in group {group}.")
            } else {
                format!("{user} already was in group {group}.")
            }
        }
        GroupAction::MemberDel { group, user } => {
            if !registry.delete_member(&group, &user)? {
                return Err(invalid(format!("{user} is not in group {group}")));
            }
            format!("{user} left group {group}.")
        }
        GroupAction::List => return Err(invalid("not a change")),
    };
    Ok((words.join(" "), message))
}

fn rule(gate: &dyn Gate, form: &[(String, String)], what: &str) -> Result<Done> {
    let registry = gate.registry();
    let (who, pattern) = (word(form, "who")?, word(form, "pattern")?);
    let words = if what == "rule/add" {
        vec!["access", "grant", who, pattern, word(form, "actions")?]
    } else {
        vec!["access", "revoke", who, pattern]
    };
    let Command::Access { action, .. } = parse_words(&words)? else {
        return Err(invalid("not an access command"));
    };
    match action {
        AccessAction::Grant {
            who,
            pattern,
            actions,
        } => {
            let new = registry.grant(&who, &pattern, actions)?;
            let verb = if new { "granted" } else { "changed" };
            Ok((
                format!("access grant {who} {pattern} {actions}"),
                format!("{verb}: {who} {pattern} {actions}"),
            ))
        }
        AccessAction::Revoke { who, pattern } => {
            if !registry.revoke(&who, &pattern)? {
                return Err(invalid(format!("no rule for {who} on {pattern}")));
            }
            Ok((
                format!("access revoke {who} {pattern}"),
                format!("revoked: {who} {pattern}"),
            ))
        }
        _ => Err(invalid("not a change")),
    }
}

fn upstream(gate: &dyn Gate, form: &[(String, String)], what: &str) -> Result<Done> {
    let registry = gate.registry();
    let name = word(form, "name")?;
    if what == "upstream/del" {
        let Command::Upstream {
            action: UpstreamAction::Del(name),
            ..
        } = parse_words(&["upstream", "del", name])?
        else {
            return Err(invalid("not an upstream del"));
        };
        if !registry.delete_upstream(&name)? {
            return Err(invalid(format!("no upstream {name}")));
        }
        return Ok((
            format!("upstream del {name}"),
            format!(
                "upstream {name} deleted: what it cached stays, read-only, until gc evicts it."
            ),
        ));
    }
    let url = word(form, "url")?;
    let mut words = vec!["upstream", "add", name, url];
    let ttl = field(form, "tag_ttl").trim();
    if !ttl.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the tag TTL is a number of seconds"));
    }
    if !ttl.is_empty() {
        words.extend(["--tag-ttl", ttl]);
    }
    let username = field(form, "username").trim();
    let password = field(form, "password");
    if !username.is_empty() {
        if username.starts_with('-') {
            return Err(invalid("username must not start with '-'"));
        }
        words.extend(["--username", username, "--password-stdin"]);
        if password.is_empty() {
            return Err(invalid("a username needs its password"));
        }
    }
    if field(form, "mirror") == "yes" {
        words.push("--mirror");
    }
    let Command::Upstream {
        action:
            UpstreamAction::Add {
                name,
                url,
                username,
                tag_ttl_secs,
                mirror,
                ..
            },
        ..
    } = parse_words(&words)?
    else {
        return Err(invalid("not an upstream add"));
    };
    if mirror {
        if let Some(other) = registry.mirror_upstream()? {
            return Err(invalid(format!(
                "{} is the mirror already; one upstream at most serves names this registry lacks",
                other.name
            )));
        }
    }
    let row = UpstreamRow {
        password: username.as_ref().map(|_| password.to_string()),
        username,
        tag_ttl_secs,
        mirror,
        ..UpstreamRow::new(&name, &url)
    };
    if !registry.add_upstream(&row)? {
        return Err(invalid(format!(
            "upstream {name} exists; delete it first to change it"
        )));
    }
    let mirror_flag = if mirror { " --mirror" } else { "" };
    Ok((
        format!("upstream add {name} {url} --tag-ttl {tag_ttl_secs}{mirror_flag}"),
        format!("upstream {name} added: {url}; pull through HOST/{name}/REPO:TAG."),
    ))
}

/// `soute token create NAME --user USER [--scope S]... [--expires E]` from
/// the form (scopes: every `scope` field, each split at spaces); the page
/// that answers shows the secret, once.
fn create_token(
    gate: &dyn Gate,
    req: &Request<'_>,
    viewer: &Viewer,
    form: &[(String, String)],
) -> Result<Response> {
    let (name, user) = (word(form, "name")?, word(form, "user")?);
    let mut words = vec!["token", "create", name, "--user", user];
    for scope in form
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split_whitespace())
    {
        if scope.starts_with('-') {
            return Err(invalid("a scope must not start with '-'"));
        }
        words.extend(["--scope", scope]);
    }
    let expires = field(form, "expires").trim();
    if !expires.is_empty() {
        if expires.starts_with('-') {
            return Err(invalid("expires must not start with '-'"));
        }
        words.extend(["--expires", expires]);
    }
    let Command::Token {
        action:
            TokenAction::Create {
                name,
                user,
                scopes,
                lifetime_secs,
            },
        ..
    } = parse_words(&words)?
    else {
        return Err(invalid("not a token create"));
    };
    let secret = gate
        .registry()
        .create_token(&name, &user, &scopes, lifetime_secs)?;
    gate.registry().audit(
        &AuditEvent::new(AuditAction::Admin, viewer.name(), req.remote.ip())
            .detail(format!("{} (web UI)", words.join(" "))),
    );
    super::pages_admin::admin_with(gate, viewer, Some((&name, &secret)), None, "")
}
