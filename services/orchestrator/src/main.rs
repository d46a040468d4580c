//! `athena-orchestrator`: the orchestrator alone, as deployed in its own container.

use std::path::PathBuf;
use std::process::ExitCode;

use athena_orchestrator::{Config, NAME, Orchestrator};
use athena_runtime::service::Service;
use clap::Parser;

/// The Athena voice pipeline.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A TOML config file; `ATHENA__ORCHESTRATOR__*` variables override it.
    #[arg(long, env = "ATHENA_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    athena_runtime::launch(args.config, |source| {
        let config: Config = source.section(NAME)?;
        Ok(vec![Box::new(Orchestrator::new(config)) as Box<dyn Service>])
    })
}
