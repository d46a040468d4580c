//! Generates Rust from the .proto files with a pure-Rust protobuf compiler
//! (protox), so building needs no `protoc` on the machine.

const PROTOS: [&str; 3] = [
    "proto/athena/audio/v1/audio.proto",
    "proto/athena/stt/v1/stt.proto",
    "proto/athena/tts/v1/tts.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    // Audio travels as `bytes::Bytes`: handed on without copying.
    tonic_prost_build::configure()
        .bytes(".")
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
