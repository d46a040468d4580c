//! Athena in one process: builds any subset of the services from one config.
//!
//! Each service keeps its own ports and its own `/healthz`, `/readyz` and
//! `/metrics`, exactly as when deployed alone, so a client cannot tell the
//! difference. Where one service calls another, this is where the in-process
//! client is handed to it instead of a network one.

pub mod models;

use athena_api::location::IN_PROCESS;
use athena_llm::Role;
use athena_runtime::ConfigSource;
use athena_runtime::service::Service;

/// A service this process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ServiceKind {
    /// The voice pipeline (Wyoming 10700, HTTP 8700).
    Orchestrator,
    /// Speech to text (HTTP 8300).
    Stt,
    /// Text to speech (HTTP 8200).
    Tts,
    /// The small LLM (HTTP 8400).
    RouterSmallLlm,
    /// The large LLM (HTTP 8401).
    RouterLargeLlm,
    /// Retrieval (HTTP 8500).
    RagApi,
    /// Home Assistant bridge (HTTP 8600).
    HaBridge,
    /// Owner/guest mode and policy (HTTP 8800).
    ModeService,
}

impl ServiceKind {
    /// Every service, in start order.
    pub const ALL: [Self; 8] = [
        Self::ModeService,
        Self::HaBridge,
        Self::RagApi,
        Self::RouterSmallLlm,
        Self::RouterLargeLlm,
        Self::Stt,
        Self::Tts,
        Self::Orchestrator,
    ];
}

/// Builds the `kinds` services from `source`; the empty set means all of them.
pub fn build(
    source: &ConfigSource,
    kinds: &[ServiceKind],
) -> anyhow::Result<Vec<Box<dyn Service>>> {
    let mut kinds = if kinds.is_empty() {
        ServiceKind::ALL.to_vec()
    } else {
        kinds.to_vec()
    };
    kinds.sort_by_key(|k| ServiceKind::ALL.iter().position(|a| a == k));
    kinds.dedup();

    // The orchestrator calls stt and tts directly when they run here too
    // (unless its config names them elsewhere).
    let mut here = athena_orchestrator::InProcess::default();
    let mut services: Vec<Box<dyn Service>> = Vec::new();
    for kind in kinds {
        services.push(match kind {
            ServiceKind::Orchestrator => {
                let mut defaults = athena_orchestrator::Config::default();
                if here.stt.is_some() {
                    defaults.stt.url = IN_PROCESS.into();
                }
                if here.tts.is_some() {
                    defaults.tts.url = IN_PROCESS.into();
                }
                let config = source.section_with_defaults(athena_orchestrator::NAME, defaults)?;
                Box::new(
                    athena_orchestrator::Orchestrator::new(config).with_in_process(here.clone()),
                )
            }
            ServiceKind::Stt => {
                let stt = athena_stt::service(source.section(athena_stt::SECTION)?);
                here.stt = Some(stt.client());
                Box::new(stt)
            }
            ServiceKind::Tts => {
                let tts = athena_tts::service(
                    source
                        .section_with_defaults(athena_tts::SECTION, athena_tts::default_config())?,
                );
                here.tts = Some(tts.client());
                Box::new(tts)
            }
            ServiceKind::RouterSmallLlm => Box::new(llm(source, Role::Small)?),
            ServiceKind::RouterLargeLlm => Box::new(llm(source, Role::Large)?),
            ServiceKind::RagApi => {
                Box::new(athena_rag_api::service(source.section_with_defaults(
                    athena_rag_api::SECTION,
                    athena_rag_api::default_config(),
                )?))
            }
            ServiceKind::HaBridge => {
                Box::new(athena_ha_bridge::service(source.section_with_defaults(
                    athena_ha_bridge::SECTION,
                    athena_ha_bridge::default_config(),
                )?))
            }
            ServiceKind::ModeService => {
                Box::new(athena_mode_service::service(source.section_with_defaults(
                    athena_mode_service::SECTION,
                    athena_mode_service::default_config(),
                )?))
            }
        });
    }
    Ok(services)
}

fn llm(source: &ConfigSource, role: Role) -> anyhow::Result<impl Service + 'static> {
    let config = source.section_with_defaults(role.section(), role.default_config())?;
    Ok(athena_llm::service(role, config))
}
