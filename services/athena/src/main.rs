//! `athena`: the whole assistant, or any part of it, in one process.

use std::path::PathBuf;
use std::process::ExitCode;

use athena::ServiceKind;
use clap::{Parser, Subcommand};

/// Athena, a self-hosted, privacy-first voice assistant.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// A TOML config file; `ATHENA__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "ATHENA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs services in this process (all of them when none are named).
    Serve {
        /// The services to run.
        #[arg(value_enum)]
        services: Vec<ServiceKind>,
    },
    /// Lists, downloads and verifies models.
    Models {
        #[command(subcommand)]
        command: athena::models::ModelsCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { services } => {
            athena_runtime::launch(cli.config, |source| athena::build(source, &services))
        }
        Command::Models { command } => athena::models::run(command),
    }
}
