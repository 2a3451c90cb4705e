//! The `soute` binary: parse the command line, set up logging, dispatch.
//!
//! It must never hold registry rules: it parses, prints and calls into the library.

mod access_cli;
mod audit_cli;
mod blobs_cli;
mod ops_cli;
mod policy_cli;
mod sync_cli;
mod tag_history_cli;
mod upstream_cli;
mod webhook_cli;

use soute::cli::{self, Command, UserAction};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let cmd = match cli::parse(std::env::args_os().skip(1).collect(), &env) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("soute: {e}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cmd, Command::Serve(_)) {
        quit_quietly_on_a_closed_pipe();
    }
    let operator_event = audit_cli::operator_event(&cmd);
    match run(cmd) {
        Ok(()) => {
            if let Some((data_dir, words)) = operator_event {
                audit_cli::record_operator(&data_dir, &words);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("soute: {}", describe(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `soute gc | head`: when the reader of stdout goes away, end as every Unix
/// tool does (killed by SIGPIPE, no output) instead of panicking in `println!`.
/// Rust ignores SIGPIPE by default; the server keeps that (a client closing
/// its socket during `sendfile` must not kill it), so only the one-shot
/// commands restore the default. They are all safe to stop at any write
/// (each change is one SQLite transaction; GC survives kill -9).
#[allow(unsafe_code)]
fn quit_quietly_on_a_closed_pipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL before any thread is
    // started has no memory-safety conditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// An error as the operator reads it: a registry error without its OCI code
/// in front (`NAME_INVALID: ...` is for HTTP clients, not for a terminal).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let text = e.to_string();
    if let Some(err) = e.downcast_ref::<soute::error::Error>() {
        if let Some(rest) = text.strip_prefix(&format!("{}: ", err.code().as_str())) {
            return rest.to_string();
        }
    }
    text
}

fn init_logging(level: &str) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&format!("warn,soute={level}"));
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder.format_timestamp_millis().init();
}

fn run(cmd: Command) -> Result<(), Box<dyn std::error::Error>> {
    match cmd {
        Command::Help(spec) => print!("{}", Command::help_text(spec)),
        Command::Version => println!("soute {}", env!("CARGO_PKG_VERSION")),
        Command::CheckConfig(cfg) => print!("{}", cfg.sanitized()),
        Command::Serve(cfg) => {
            init_logging(&cfg.log_level);
            let hostnames = cfg.hostnames.clone();
            let data_dir = cfg.data_dir.clone();
            let running = soute::app::start(*cfg)?;
            let mut out = std::io::stdout().lock();
            for addr in running.addrs() {
                writeln!(out, "soute listening on {}://{addr}", running.scheme())?;
            }
            for addr in running.metrics_addrs() {
                writeln!(
                    out,
                    "soute metrics on http://{addr} (/metrics, /livez, /readyz)"
                )?;
            }
            out.flush()?;
            drop(out);
            startup_notes(&running, &data_dir, &hostnames)?;
            let mut signals = signal_hook::iterator::Signals::new([
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGINT,
            ])?;
            if let Some(sig) = signals.forever().next() {
                log::info!("signal {sig}: finishing requests in progress, then stopping");
            }
            running.shutdown();
            log::info!("stopped");
        }
        Command::User {
            action,
            data_dir,
            admin,
        } => user_command(action, &data_dir, admin)?,
        Command::Group { action, data_dir } => access_cli::group(action, &data_dir)?,
        Command::Access {
            action,
            data_dir,
            json,
        } => access_cli::access(action, &data_dir, json)?,
        Command::Token {
            action,
            data_dir,
            json,
        } => access_cli::token(action, &data_dir, json)?,
        Command::Audit {
            data_dir,
            query,
            json,
        } => {
            init_logging("warn");
            audit_cli::audit(&data_dir, &query, json)?
        }
        Command::Upstream {
            action,
            data_dir,
            json,
        } => upstream_cli::upstream(action, &data_dir, json)?,
        Command::Webhook {
            action,
            data_dir,
            json,
        } => webhook_cli::webhook(action, &data_dir, json)?,
        Command::Policy {
            action,
            data_dir,
            json,
        } => policy_cli::policy(action, &data_dir, json)?,
        Command::TagHistory {
            action,
            data_dir,
            json,
        } => tag_history_cli::tag(action, &data_dir, json)?,
        Command::Gc {
            data_dir,
            policy,
            json,
        } => {
            init_logging("warn");
            ops_cli::gc(&data_dir, &policy, json)?
        }
        Command::Backup {
            data_dir,
            dest,
            with_blobs,
        } => {
            init_logging("warn");
            ops_cli::backup(&data_dir, &dest, with_blobs)?
        }
        Command::Verify {
            data_dir,
            repair,
            deep,
            json,
        } => {
            init_logging("warn");
            ops_cli::verify(&data_dir, repair, deep, json)?
        }
        Command::BlobsMigrate {
            data_dir,
            target,
            credentials_file,
            json,
        } => {
            init_logging("warn");
            blobs_cli::migrate(&data_dir, &target, credentials_file.as_deref(), json)?
        }
        Command::Du {
            data_dir,
            repo,
            tag,
            policy,
            json,
        } => {
            init_logging("warn");
            ops_cli::du(&data_dir, repo.as_deref(), tag.as_deref(), &policy, json)?
        }
    }
    Ok(())
}

/// What the operator needs to know at start: how to trust the CA, and
/// whether the registry is open to anyone.
fn startup_notes(
    running: &soute::app::Running,
    data_dir: &Path,
    hostnames: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    let port = running.addrs().first().map(|a| a.port()).unwrap_or(5000);
    let ca = soute::storage::layout::Layout::new(data_dir)
        .tls_dir()
        .join(soute::storage::layout::CA_CERT);
    if running.scheme() == "https" && ca.exists() {
        let mut names: Vec<String> = hostnames.to_vec();
        if names.is_empty() {
            names = soute::tls::default_names(&[]).into_iter().take(1).collect();
        }
        let mut text = String::new();
        for name in names {
            let host = if name.contains(':') {
                format!("[{name}]")
            } else {
                name
            };
            text.push_str(&soute::tls::trust_instructions(
                &ca,
                &format!("{host}:{port}"),
            ));
            text.push('\n');
        }
        eprintln!("{text}");
    }
    let registry = running.registry();
    if !registry.is_closed()? {
        log::warn!("NO USERS: this registry is OPEN to anyone who can reach it (read and write).");
        log::warn!(
            "create one with: soute user add NAME --data {}",
            data_dir.display()
        );
    } else if !registry.has_users()? {
        log::warn!(
            "NO USERS, but the registry stays CLOSED (it had users): nobody can sign in. \
             Add one with `soute user add NAME --data {0}`, or open it to anyone with \
             `soute user open --data {0}`",
            data_dir.display()
        );
    }
    Ok(())
}

/// Read a password: a prompt without echo (twice) on a terminal, one line of stdin otherwise.
fn read_password() -> Result<String, Box<dyn std::error::Error>> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("password again: ")?;
        if first != again {
            return Err("the passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

fn user_command(
    action: UserAction,
    data_dir: &Path,
    admin: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let init = matches!(action, UserAction::Add(_));
    let registry = ops_cli::open_existing(data_dir, 2, init)?;
    let folder = ops_cli::absolute(data_dir).display().to_string();
    match action {
        UserAction::Add(name) => {
            if registry.user_exists(&name)? {
                return Err(format!("user {name} exists; use `soute user passwd {name}`").into());
            }
            let pw = read_password()?;
            let is_admin = registry.add_user(&name, &pw, admin)?;
            let role = if is_admin {
                "an administrator"
            } else {
                "no administrator: `soute access grant` gives rights"
            };
            println!("user {name} ({role}) added to the registry in {folder}");
        }
        UserAction::Passwd(name) => {
            if !registry.user_exists(&name)? {
                return Err(format!("no user {name}").into());
            }
            let pw = read_password()?;
            registry.set_user(&name, &pw)?;
            println!("password of {name} changed in {folder}");
        }
        UserAction::Del(name) => {
            if !registry.delete_user(&name)? {
                return Err(format!("no user {name}").into());
            }
            println!("user {name} deleted from {folder}");
        }
        UserAction::List => access_cli::user_list(&registry)?,
        UserAction::Admin(name, on) => {
            registry.set_admin(&name, on)?;
            let now = if on {
                "an administrator"
            } else {
                "no longer an administrator"
            };
            println!("user {name} is {now}");
        }
        UserAction::Open => {
            if !registry.open_to_anyone()? {
                return Err("users exist: the registry stays closed; delete them all \
                     (`soute user del NAME`) before opening it"
                    .into());
            }
            println!(
                "the registry in {} is OPEN: anyone who can reach it may read, push and delete",
                data_dir.display()
            );
        }
    }
    Ok(())
}
