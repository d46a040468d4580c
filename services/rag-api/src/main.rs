//! `athena-rag-api`: the rag-api service alone, as deployed in its own container.

use std::process::ExitCode;

fn main() -> ExitCode {
    athena_runtime::run_single(
        athena_rag_api::SECTION,
        athena_rag_api::default_config(),
        athena_rag_api::service,
    )
}
