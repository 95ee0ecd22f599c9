//! The `parley` binary: `serve` (default), `migrate`, `openapi`.

use std::process::ExitCode;

use parley_server::{Settings, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".to_owned());
    if command == "openapi" {
        return match parley_server::openapi_yaml() {
            Ok(spec) => {
                print!("{spec}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        };
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings);
    let outcome = match command.as_str() {
        "serve" => serve(settings).await,
        "migrate" => parley_server::migrate(&settings).await.map(|()| println!("migrations applied")),
        other => {
            eprintln!("unknown command {other:?}; use serve, migrate or openapi");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let host = settings.host.clone();
    let app = parley_server::build(settings).await?;
    println!("parley listening on http://{host}:{}", app.port());
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped().await?;
    Ok(())
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::FAILURE
}
