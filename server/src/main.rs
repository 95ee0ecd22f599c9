//! The `parley` binary. Every flag of `serve` has an environment variable
//! (the same names `.env` and the README use); a flag wins over it.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use parley_server::{Settings, telemetry};

/// Parley: users, tasks, an AI assistant with task tools, and séance rooms, in one server.
#[derive(Debug, Parser)]
#[command(name = "parley", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default). Configuration comes from the environment and `.env`.
    Serve(ServeArgs),
    /// Apply the pending database migrations of DATABASE_URL, list them, and exit.
    Migrate,
    /// Print the OpenAPI document (JSON, or YAML with --yaml).
    Openapi {
        /// YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
    /// Print the AsyncAPI 3.0 document of the séance WebSocket (YAML).
    Asyncapi,
    /// Print the effective configuration, secrets redacted.
    Config {
        /// Only check it: list every problem and exit 1 if there is one.
        #[arg(long)]
        check: bool,
    },
    /// Print a fresh random key for TOKEN_SECRET (64 hex digits).
    TokenSecret,
}

#[derive(Debug, Default, clap::Args)]
struct ServeArgs {
    /// Listen address.
    #[arg(long, env = "HOST")]
    host: Option<String>,
    /// Listen port; 0 picks a free one.
    #[arg(long, env = "PORT")]
    port: Option<String>,
    /// `sqlite://PATH` (embedded) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// A level or tracing filter, e.g. `info` or `warn,parley_server=debug`.
    #[arg(long, env = "LOG_LEVEL")]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are "errors" to clap; print them as it would.
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Openapi { yaml } => {
            print_quietly(&if yaml { parley_server::openapi_yaml() } else { parley_server::openapi_json() })
        }
        Command::Asyncapi => match parley_server::asyncapi::yaml() {
            Ok(text) => print_quietly(&text),
            Err(error) => fail(&error.into()),
        },
        Command::TokenSecret => {
            let mut key = [0_u8; 32];
            key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            print_quietly(&format!("{}\n", hex::encode(key)))
        }
        Command::Config { check } => config(check),
        Command::Migrate => with_settings(ServeArgs::default(), |settings| async move {
            let applied = parley_server::migrate(&settings).await?;
            if applied.is_empty() {
                println!("no migrations pending");
            } else {
                for version in applied {
                    println!("applied {version}");
                }
            }
            Ok(())
        }),
        Command::Serve(args) => with_settings(args, serve),
    }
}

/// Reads the settings (flags over the environment), sets up logging and runs `task`.
fn with_settings<F, Fut>(args: ServeArgs, task: F) -> ExitCode
where
    F: FnOnce(Settings) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    if let Err(error) = parley_server::config::load_dotenv() {
        eprintln!("{error}");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_lookup(|name| args.flag(name).or_else(|| std::env::var(name).ok())) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&error.into()),
    };
    match runtime.block_on(task(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

impl ServeArgs {
    /// The flag standing for environment variable `name`, when given.
    fn flag(&self, name: &str) -> Option<String> {
        match name {
            "HOST" => self.host.clone(),
            "PORT" => self.port.clone(),
            "DATABASE_URL" => self.database_url.clone(),
            "LOG_LEVEL" => self.log_level.clone(),
            _ => None,
        }
    }
}

fn config(check: bool) -> ExitCode {
    if let Err(error) = parley_server::config::load_dotenv() {
        eprintln!("{error}");
        return ExitCode::FAILURE;
    }
    let problems = Settings::problems(|name| std::env::var(name).ok());
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{problem}");
        }
        return ExitCode::FAILURE;
    }
    if check {
        return print_quietly("configuration ok\n");
    }
    match Settings::from_env() {
        Ok(settings) => {
            let text: String = settings.effective().iter().map(|(name, value)| format!("{name}={value}\n")).collect();
            print_quietly(&text)
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let (host, store, provider) =
        (settings.host.clone(), settings.store_description(), settings.provider_description());
    let app = parley_server::build(settings).await?;
    let url = format!("http://{host}:{}", app.port());
    println!("parley listening on {url}");
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        store = %store,
        provider = %provider,
        url = %url,
        docs = %format!("{url}/docs"),
        "parley {} serving {url} (docs {url}/docs) on {store}, model: {provider}",
        env!("CARGO_PKG_VERSION"),
    );
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Writes to stdout; a reader that went away (`parley openapi | head`) is not an error.
fn print_quietly(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => fail(&error.into()),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}
