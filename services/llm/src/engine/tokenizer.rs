//! The tokenizer of a GGUF model, built from its metadata.
