//! `athena-llm --role small|large`: one LLM router alone, as deployed in its
//! own container.

use std::path::PathBuf;
use std::process::ExitCode;

use athena_llm::Role;
use athena_runtime::service::Service;
use clap::Parser;

/// An OpenAI-compatible LLM server.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Which deployment this is.
    #[arg(long, value_enum, env = "ATHENA_LLM_ROLE")]
    role: Role,
    /// A TOML config file; `ATHENA__ROUTER_<ROLE>_LLM__*` variables override it.
    #[arg(long, env = "ATHENA_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    athena_runtime::launch(args.config, |source| {
        let config =
            source.section_with_defaults(args.role.section(), args.role.default_config())?;
        Ok(vec![
            Box::new(athena_llm::service(args.role, config)) as Box<dyn Service>
        ])
    })
}
