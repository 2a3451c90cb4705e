//! The `soute` binary: parse the command line, set up logging, dispatch.

use soute::cli::{self, Command};
use std::io::Write;
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
    match run(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soute: {e}");
            ExitCode::FAILURE
        }
    }
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
        Command::Help => print!("{}", cli::HELP),
        Command::Version => println!("soute {}", env!("CARGO_PKG_VERSION")),
        Command::CheckConfig(cfg) => print!("{}", cfg.sanitized()),
        Command::Serve(cfg) => {
            init_logging(&cfg.log_level);
            let running = soute::app::start(*cfg)?;
            let mut out = std::io::stdout().lock();
            for addr in running.addrs() {
                writeln!(out, "soute listening on {}://{addr}", running.scheme())?;
            }
            out.flush()?;
            drop(out);
            loop {
                std::thread::park();
            }
        }
        Command::User { .. } => return Err("user management is not available yet".into()),
    }
    Ok(())
}
