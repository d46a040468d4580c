//! Inference on GGUF models: the file, its tokenizer and chat template, the
//! transformer, sampling, and the scheduler that shares one model between
//! requests.

pub mod chat;
pub mod grammar;
pub mod json_schema;
pub mod model;
pub mod sampler;
pub mod scheduler;
pub mod tokenizer;
