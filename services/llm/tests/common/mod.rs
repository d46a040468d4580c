//! What the model tests share: the catalog's GGUF files.

use std::path::PathBuf;

/// The GGUF file of catalog model `name`, fetched if needed.
pub fn gguf(name: &str) -> PathBuf {
    let dir = athena_models::Store::from_env()
        .unwrap()
        .ensure(name)
        .unwrap_or_else(|e| panic!("cannot get {name}: {e}"));
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "gguf"))
        .unwrap()
}
