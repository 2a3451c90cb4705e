//! The `soute webhook` command: open the existing data folder, add, list,
//! delete or test webhooks; the secret comes from one line of stdin.
//!
//! It must never print or log a secret (`list` says only whether one is
//! set).

use crate::ops_cli;
use soute::cli::WebhookAction;
use soute::webhook::admin::{self, WebhookInfo};
use std::io::BufRead;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub fn webhook(action: WebhookAction, data_dir: &Path, json: bool) -> Res<()> {
    match action {
        WebhookAction::Add {
            name,
            url,
            events,
            repo_pattern,
            secret_stdin,
        } => {
            let secret = if secret_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                let secret = line.trim_end_matches(['\n', '\r']).to_string();
                if secret.is_empty() {
                    return Err("--secret-stdin read an empty secret".into());
                }
                Some(secret)
            } else {
                None
            };
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            let added = admin::add(
                &registry,
                &name,
                &url,
                &events,
                &repo_pattern,
                secret.as_deref(),
            )?;
            if !added {
                return Err(format!(
                    "webhook {name} exists; `soute webhook del {name}` first to change it"
                )
                .into());
            }
            let signed = if secret.is_some() { ", signed" } else { "" };
            println!("webhook {name} added: {events} events of {repo_pattern} to {url}{signed}");
        }
        WebhookAction::Del(name) => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            if !admin::delete(&registry, &name)? {
                return Err(format!("no webhook {name}").into());
            }
            println!("webhook {name} deleted (with the events it had not delivered)");
        }
        WebhookAction::List => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            list(&admin::list(&registry)?, json)?;
        }
        WebhookAction::Test(name) => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            let Some(outcome) = admin::test(&registry, &name)? else {
                return Err(format!("no webhook {name}").into());
            };
            let ms = outcome.took.as_millis();
            match outcome.answer {
                Ok(status) => println!(
                    "webhook {name}: {} answered HTTP {status} in {ms} ms (test event {})",
                    outcome.url, outcome.event_id
                ),
                Err(why) => {
                    return Err(
                        format!("webhook {name}: {} {why} after {ms} ms", outcome.url).into(),
                    )
                }
            }
        }
    }
    Ok(())
}

fn list(rows: &[WebhookInfo], json: bool) -> Res<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no webhooks (add one with `soute webhook add NAME URL`)");
        return Ok(());
    }
    for w in rows {
        let secret = if w.secret_set { "signed" } else { "unsigned" };
        println!(
            "{}  {}  events={}  repo={}  {secret}  pending={} delivered={} dropped={}",
            w.name, w.url, w.events, w.repo_pattern, w.pending, w.delivered, w.dropped
        );
        if let (Some(e), Some(at)) = (&w.last_error, w.last_error_at) {
            println!("    last error {}: {e}", soute::clock::rfc3339(at));
        }
    }
    Ok(())
}
