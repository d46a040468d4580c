//! The loaded model as the API uses it: prompts from chat messages or text,
//! and generation through the scheduler.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Config;
use crate::engine::chat::{ChatError, ChatTemplate, Message};
use crate::engine::model::{Model, device, quantization};
use crate::engine::scheduler::{EngineError, Event, Job, Scheduler, SchedulerConfig};
use crate::engine::tokenizer::Tokenizer;
use crate::structured::Tools;

/// A model ready to answer.
#[derive(Debug)]
pub struct Llm {
    id: String,
    scheduler: Scheduler,
    tokenizer: Arc<Tokenizer>,
    template: Option<ChatTemplate>,
    description: String,
    created: u64,
}

impl Llm {
    /// Loads the model `config` names (fetching it from the catalog first
    /// if needed), its tokenizer and chat template, and starts the
    /// scheduler.
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let path = match config.model_ref() {
            athena_models::ModelRef::Catalog(name) => {
                let store = athena_models::Store::from_env()?;
                let dir = store.ensure(&name)?;
                gguf_in(&dir).with_context(|| format!("model {name}"))?
            }
            athena_models::ModelRef::Path(path) if path.is_dir() => gguf_in(&path)?,
            athena_models::ModelRef::Path(path) => path,
        };
        let (device, device_name) = device(config.gpu);
        let (model, content) = Model::load(&path, config.context, &device)?;
        let tokenizer = Tokenizer::from_gguf(&content)
            .with_context(|| format!("the tokenizer of {}", path.display()))?;
        let template_source = match &config.chat_template {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("chat_template {}", file.display()))?,
            ),
            None => content
                .metadata
                .get("tokenizer.chat_template")
                .and_then(|v| v.to_string().ok())
                .cloned(),
        };
        let piece = |id: Option<u32>| {
            id.map(|i| tokenizer.piece(i).to_owned())
                .unwrap_or_default()
        };
        let template = template_source
            .map(|s| ChatTemplate::new(&s, &piece(tokenizer.bos()), &piece(Some(tokenizer.eos()))))
            .transpose()?;
        let hyper = model.hyper();
        let description = format!(
            "{} ({}, {} layers, {}, context {}) on {device_name}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            hyper.architecture.name(),
            hyper.layers,
            quantization(&content),
            model.context(),
        );
        let tokenizer = Arc::new(tokenizer);
        let scheduler = Scheduler::start(
            Arc::new(model),
            tokenizer.clone(),
            SchedulerConfig {
                parallel: config.parallel,
                queue: config.queue,
                prefill_chunk: config.prefill_chunk,
                prefix_cache: config.prefix_cache,
            },
        );
        let created = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or_default();
        Ok(Self {
            id: config.id(),
            scheduler,
            tokenizer,
            template,
            description,
            created,
        })
    }

    /// The id clients name it by.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What it is and where it runs, for logs and `/readyz`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// When the model file was made (Unix seconds).
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Its context length.
    pub fn context(&self) -> usize {
        self.scheduler.context()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt tokens for a conversation, with the tools it offers.
    /// Templates that render tools get them; for the others the tools are
    /// described in the system message and earlier calls are written as
    /// the JSON the model is asked to answer with.
    pub fn chat_prompt(
        &self,
        messages: &[Message],
        tools: Option<&Tools>,
    ) -> Result<Vec<u32>, ChatError> {
        let template = self.template.as_ref().ok_or(ChatError::NoTemplate)?;
        let text = if template.renders_tools() {
            template.render(messages, tools.map(|t| &t.definitions))?
        } else {
            let instruction = tools.map(|t| t.instruction.as_str());
            template.render(&without_tools(messages, instruction), None)?
        };
        // Templates write the BOS token themselves when the model wants it.
        let starts_with_bos = self
            .tokenizer
            .bos()
            .is_some_and(|b| text.starts_with(self.tokenizer.piece(b)));
        let mut tokens = self.tokenizer.encode(&text, false, true);
        if !starts_with_bos
            && self.tokenizer.adds_bos()
            && let Some(bos) = self.tokenizer.bos()
        {
            tokens.insert(0, bos);
        }
        Ok(tokens)
    }

    /// The prompt tokens for plain text. Special-token texts in it (a
    /// hand-made ChatML prompt) become those tokens, as llama.cpp's server
    /// does.
    pub fn text_prompt(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, true, true)
    }

    /// Starts generating.
    pub fn generate(&self, job: Job) -> Result<UnboundedReceiver<Event>, EngineError> {
        self.scheduler.submit(job)
    }
}

/// `messages` for a template that knows no tools: calls become their JSON
/// text, and `instruction` joins the system message (one is added if
/// there is none).
fn without_tools(messages: &[Message], instruction: Option<&str>) -> Vec<Message> {
    let mut out: Vec<Message> = messages
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if let Some(calls) = m.tool_calls.take() {
                let written: Vec<String> = calls
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let f = c.get("function").unwrap_or(c);
                        serde_json::json!({ "name": f["name"], "arguments": f["arguments"] })
                            .to_string()
                    })
                    .collect();
                if !written.is_empty() {
                    m.content = match written.as_slice() {
                        [one] => one.clone(),
                        many => format!("[{}]", many.join(", ")),
                    };
                }
            }
            m
        })
        .collect();
    if let Some(instruction) = instruction {
        match out.first_mut() {
            Some(first) if first.role == "system" => {
                first.content = format!("{}\n\n{instruction}", first.content);
            }
            _ => out.insert(0, Message::new("system", instruction)),
        }
    }
    out
}

fn gguf_in(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "gguf"))
        .with_context(|| format!("no .gguf file in {}", dir.display()))
}
