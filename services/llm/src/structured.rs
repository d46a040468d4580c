//! What a chat request asks its answer to be: free text, JSON (any object,
//! or following a JSON Schema), or calls of the tools it offers. Each
//! becomes a grammar the engine enforces token by token, so the answer is
//! valid by construction; what a grammar cannot say (numeric bounds) is
//! checked on the finished answer.

use std::sync::Arc;

use athena_runtime::ApiError;
use serde_json::{Value, json};

use crate::engine::grammar::Grammar;
use crate::engine::json_schema::{self, Tool, ToolMode};
use crate::openai::{ChatRequest, ResponseFormat, ToolDef};

/// The answer's required shape.
#[derive(Debug, Default)]
pub struct Structure {
    /// What the engine must follow.
    pub grammar: Option<Arc<Grammar>>,
    /// A schema the finished answer is checked against.
    pub schema: Option<Value>,
    /// The tools offered, when the answer may call them.
    pub tools: Option<Tools>,
}

/// Tools the model is told about.
#[derive(Debug, Clone)]
pub struct Tools {
    /// OpenAI's tool list, for chat templates that render tools.
    pub definitions: Value,
    /// The same in words, for chat templates that do not.
    pub instruction: String,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

fn unsupported(e: &json_schema::SchemaError) -> ApiError {
    ApiError::bad_request("unsupported_schema", e.to_string())
}

/// The structure `request` asks for.
pub fn structure(request: &ChatRequest) -> Result<Structure, ApiError> {
    let tools = tool_use(request)?;
    let format = match &request.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(format) => Some(format),
    };
    match (tools, format) {
        (Some(_), Some(_)) => Err(invalid(
            "response_format and tools cannot be combined: a tool's parameters already give the JSON shape",
        )),
        (Some((tools, grammar)), None) => Ok(Structure {
            grammar: Some(Arc::new(grammar)),
            schema: None,
            tools: Some(tools),
        }),
        (None, Some(ResponseFormat::JsonObject)) => Ok(Structure {
            grammar: Some(Arc::new(json_schema::json_object_grammar())),
            ..Structure::default()
        }),
        (None, Some(ResponseFormat::JsonSchema { json_schema })) => {
            let schema = json_schema.schema.clone().unwrap_or_else(|| json!({}));
            let grammar = json_schema::schema_grammar(&schema).map_err(|e| unsupported(&e))?;
            Ok(Structure {
                grammar: Some(Arc::new(grammar)),
                schema: Some(schema),
                tools: None,
            })
        }
        (None, _) => Ok(Structure::default()),
    }
}

/// The offered tools and their grammar; `None` when no tool may be called.
fn tool_use(request: &ChatRequest) -> Result<Option<(Tools, Grammar)>, ApiError> {
    let defs = request.tools.as_deref().unwrap_or_default();
    let choice = request.tool_choice.as_ref();
    if defs.is_empty() {
        return match choice {
            None | Some(Value::Null) => Ok(None),
            Some(c) if c.as_str() == Some("none") => Ok(None),
            Some(_) => Err(invalid("tool_choice needs tools")),
        };
    }
    for def in defs {
        if def.kind != "function" {
            return Err(invalid(format!(
                "tools of type {:?} are not supported (function only)",
                def.kind
            )));
        }
        let name = &def.function.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(format!(
                "tool name {name:?} must be 1 to 64 letters, digits, _ or -"
            )));
        }
    }
    let (mode, offered): (ToolMode, Vec<&ToolDef>) = match choice {
        None | Some(Value::Null) => (ToolMode::Auto, defs.iter().collect()),
        Some(Value::String(c)) => match c.as_str() {
            "none" => return Ok(None),
            "auto" => (ToolMode::Auto, defs.iter().collect()),
            "required" => (ToolMode::Required, defs.iter().collect()),
            other => return Err(invalid(format!("unknown tool_choice {other:?}"))),
        },
        Some(named) => {
            let Some(name) = named.pointer("/function/name").and_then(Value::as_str) else {
                return Err(invalid(
                    "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}",
                ));
            };
            let Some(def) = defs.iter().find(|d| d.function.name == name) else {
                return Err(invalid(format!(
                    "tool_choice names {name:?}, which is not among the tools"
                )));
            };
            (ToolMode::Required, vec![def])
        }
    };
    let tools: Vec<Tool> = offered
        .iter()
        .map(|d| Tool {
            name: d.function.name.clone(),
            parameters: d.function.parameters.clone().unwrap_or(Value::Null),
        })
        .collect();
    let parallel = request.parallel_tool_calls.unwrap_or(true);
    let grammar = json_schema::tool_grammar(&tools, mode, parallel).map_err(|e| unsupported(&e))?;
    let definitions = serde_json::to_value(&offered).map_err(|e| ApiError::internal(&e))?;
    Ok(Some((
        Tools {
            definitions,
            instruction: instruction(&offered, mode),
        },
        grammar,
    )))
}

/// Tools described for a model whose chat template does not render them.
fn instruction(tools: &[&ToolDef], mode: ToolMode) -> String {
    let mut text = String::from(
        "You can call functions. Each is listed with what it does and the JSON Schema of its arguments:\n",
    );
    for tool in tools {
        let f = &tool.function;
        let line = json!({
            "name": f.name,
            "description": f.description.clone().unwrap_or_default(),
            "parameters": f.parameters.clone().unwrap_or_else(|| json!({"type": "object"})),
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text.push_str(
        "To call a function, answer with only a JSON object: {\"name\": \"<function name>\", \"arguments\": {<its arguments>}}.",
    );
    if mode == ToolMode::Auto {
        text.push_str(" If no function is needed, answer in plain text.");
    }
    text
}

/// Checks a finished JSON answer against the schema's numeric bounds.
pub fn check(schema: &Value, answer: &str) -> Result<(), ApiError> {
    let value: Value = serde_json::from_str(answer).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "schema_violation",
            format!("the answer is not valid JSON: {e}"),
        )
    })?;
    json_schema::check_bounds(schema, &value).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "schema_violation",
            format!("the model's answer breaks the schema: {e}"),
        )
    })
}
