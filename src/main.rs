use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ketnoi::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let ansi = std::io::stderr().is_terminal();
    ketnoi::telemetry::init(
        &cli.logging.filter,
        cli.logging.log_format,
        std::io::stderr,
        ansi,
    );
    match ketnoi::app::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
