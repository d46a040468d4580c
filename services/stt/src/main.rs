//! `athena-stt`: the stt service alone, as deployed in its own container.

use std::process::ExitCode;

fn main() -> ExitCode {
    athena_runtime::run_single(
        athena_stt::SECTION,
        athena_stt::default_config(),
        athena_stt::service,
    )
}
