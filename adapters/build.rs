//! Compiles the Envoy Access Log Service protos (a wire-compatible subset of Envoy's API, under
//! `proto/`) into the fence's gRPC server and client. Needs `protoc` (or `PROTOC`) at build
//! time; `google/protobuf/*.proto` come from protoc's own include directory.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Only lookups by key; a B-tree of a few headers is cheaper than a seeded hash map.
        .btree_map(".")
        .compile_protos(&["proto/envoy/service/accesslog/v3/als.proto"], &["proto"])?;
    Ok(())
}
