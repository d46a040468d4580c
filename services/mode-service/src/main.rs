//! `athena-mode-service`: the mode-service service alone, as deployed in its own container.

use std::process::ExitCode;

fn main() -> ExitCode {
    athena_runtime::run_single(
        athena_mode_service::SECTION,
        athena_mode_service::default_config(),
        athena_mode_service::service,
    )
}
