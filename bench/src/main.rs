//! `parley-bench`: runs Parley's benchmark scenarios, each against a baseline
//! measured in the same run, and prints throughput, latency and the ratios.
//! See docs/performance.md.

mod chatkit;
mod flood;
mod growth;
mod load;
mod login;
mod pg;
mod scenarios;
mod soak;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: parley-bench [--duration <secs>] [--smoke] [--only <scenario>] [--parley-bin <path>]
                    [--store postgres|sqlite]  (growth: measure only this store)
scenarios: health, tasks-list, tasks-create, chatkit, ws-broadcast, ws-broadcast-2, redis-budget, ws-idle,
           login-overload, soak, startup, growth, body-flood";

/// Command-line options.
#[derive(Clone)]
pub struct Options {
    /// How long each measured run lasts.
    pub duration: Duration,
    /// The discarded warm-up before each measured run.
    pub warmup: Duration,
    /// A quick run on tiny data that only checks the harness works.
    pub smoke: bool,
    pub only: Option<String>,
    pub parley_bin: PathBuf,
    /// `growth` on this store only (`postgres` or `sqlite`); both if unset.
    pub store: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    let mut options = Options {
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        smoke: false,
        only: None,
        parley_bin: PathBuf::from(target).join("release").join("parley"),
        store: None,
    };
    let value = |args: &mut dyn Iterator<Item = String>, flag: &str| {
        args.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--duration" => {
                let secs: u64 = value(&mut args, &arg)?.parse().map_err(|_| anyhow::anyhow!("--duration: seconds"))?;
                options.duration = Duration::from_secs(secs.max(1));
            }
            "--smoke" => options.smoke = true,
            "--only" => {
                let name = value(&mut args, &arg)?;
                if !scenarios::NAMES.contains(&name.as_str()) {
                    anyhow::bail!("unknown scenario {name:?}\n{USAGE}");
                }
                options.only = Some(name);
            }
            "--parley-bin" => options.parley_bin = PathBuf::from(value(&mut args, &arg)?),
            "--store" => {
                let name = value(&mut args, &arg)?;
                if !["postgres", "sqlite"].contains(&name.as_str()) {
                    anyhow::bail!("--store: postgres or sqlite, not {name:?}\n{USAGE}");
                }
                options.store = Some(name);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if options.smoke {
        options.duration = Duration::from_secs(1);
        options.warmup = Duration::from_millis(200);
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = scenarios::start_server_runtime() {
        eprintln!("parley-bench: {error:#}");
        return ExitCode::FAILURE;
    }
    match scenarios::run_all(&options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parley-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
