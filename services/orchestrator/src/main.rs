//! `athena-orchestrator`: the orchestrator alone, as deployed in its own container.

use std::process::ExitCode;

use athena_orchestrator::{Config, NAME, Orchestrator};

fn main() -> ExitCode {
    athena_runtime::run_single(NAME, Config::default(), Orchestrator::new)
}
