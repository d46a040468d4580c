//! `athena-ha-bridge`: the ha-bridge service alone, as deployed in its own container.

use std::process::ExitCode;

fn main() -> ExitCode {
    athena_runtime::run_single(
        athena_ha_bridge::SECTION,
        athena_ha_bridge::default_config(),
        athena_ha_bridge::service,
    )
}
