//! `athena-tts`: the tts service alone, as deployed in its own container.

use std::process::ExitCode;

fn main() -> ExitCode {
    athena_runtime::run_single(
        athena_tts::SECTION,
        athena_tts::default_config(),
        athena_tts::service,
    )
}
