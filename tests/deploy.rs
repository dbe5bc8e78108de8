//! The checked-in deployment files are what the binary generates: `deploy/crds.yaml` is
//! `meshplane crds`, `deploy/install.yaml` is `meshplane install --print` with the defaults.
//! A change to the CRD types or the install manifests without regenerating them fails here.
//! Regenerate with `MESHPLANE_BLESS=1 cargo test --test deploy`.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_meshplane");

fn generated(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("meshplane runs");
    assert!(
        out.status.success(),
        "meshplane {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn check_fresh(file: &str, args: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let want = generated(args);
    if std::env::var_os("MESHPLANE_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{file} is stale: regenerate it with `meshplane {}` (or MESHPLANE_BLESS=1 cargo test \
         --test deploy)",
        args.join(" ")
    );
}

#[test]
fn crds_yaml_is_fresh() {
    check_fresh("deploy/crds.yaml", &["crds"]);
}

#[test]
fn install_yaml_is_fresh() {
    check_fresh("deploy/install.yaml", &["install", "--print"]);
}

#[test]
fn install_takes_namespace_and_image() {
    let text = generated(&[
        "install",
        "--print",
        "--namespace",
        "mesh",
        "--image",
        "example/meshplane:dev",
    ]);
    assert!(text.contains("namespace: mesh\n"), "{text}");
    assert!(text.contains("image: example/meshplane:dev\n"), "{text}");
    assert!(!text.contains("meshplane-system"), "{text}");
}

#[test]
fn install_requires_print() {
    let out = Command::new(BIN).arg("install").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--print"));
}
