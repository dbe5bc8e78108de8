//! The manifest-directory adapter: the embedded default projection target when no cluster is
//! configured. Each desired Kubernetes object is a YAML file
//! `<root>/<namespace or _cluster>/<kind>.<name>.yaml`. A file is rewritten only when its
//! content changes (atomically: write a temporary file, then rename); files of objects no
//! longer desired are removed, but only files that carry meshplane's managed-by label, so
//! anything else in the directory is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use projections::{Desired, KubeObject, ObjectRef, MANAGED_BY_LABEL, MANAGER};
use serde_json::Value;

use crate::error::Error;

/// Directory for cluster-scoped objects.
const CLUSTER_DIR: &str = "_cluster";

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub written: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// A manifest directory and what meshplane has in it.
pub struct ManifestDir {
    root: PathBuf,
    /// Every file meshplane owns here, by object, with the SHA-256 of its content: a digest
    /// rather than the text, so 40,000 objects cost a few MB, not the size of the directory.
    observed: BTreeMap<ObjectRef, [u8; 32]>,
}

fn digest(content: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(content.as_bytes()).into()
}

impl ManifestDir {
    /// Open (creating if needed) a manifest directory and read what meshplane wrote there
    /// before, so the first sync after a restart rewrites nothing that is already right.
    pub fn open(root: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let mut observed = BTreeMap::new();
        for dir in read_dir_sorted(root)? {
            if !dir.is_dir() {
                continue;
            }
            for file in read_dir_sorted(&dir)? {
                if file.extension().and_then(|e| e.to_str()) != Some("yaml") {
                    continue;
                }
                let content = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
                if let Some(r) = owned_object(&content) {
                    if path_of(root, &r) == file {
                        observed.insert(r, digest(&content));
                    }
                }
            }
        }
        Ok(ManifestDir {
            root: root.to_path_buf(),
            observed,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make the directory hold exactly the desired objects.
    pub fn sync(&mut self, desired: &Desired) -> Result<SyncReport, Error> {
        let mut report = SyncReport::default();
        for (r, object) in &desired.kube {
            if self.put(r, object)? {
                report.written += 1;
            } else {
                report.unchanged += 1;
            }
        }
        let keep: BTreeSet<&ObjectRef> = desired.kube.keys().collect();
        report.removed = self.retain(|r| keep.contains(r))?;
        Ok(report)
    }

    /// Write one desired object unless its file already holds exactly it; true when written.
    /// With [`ManifestDir::retain`], lets a projector go through the desired objects a few at a
    /// time instead of holding them all.
    pub fn put(&mut self, r: &ObjectRef, object: &KubeObject) -> Result<bool, Error> {
        let content = render(&object.to_value())?;
        let hash = digest(&content);
        if self.observed.get(r) == Some(&hash) {
            return Ok(false);
        }
        let path = path_of(&self.root, r);
        write_atomically(&path, &content)?;
        tracing::debug!(object = %r, path = %path.display(), "wrote manifest");
        self.observed.insert(r.clone(), hash);
        Ok(true)
    }

    /// Remove the files of every owned object `keep` rejects; returns how many.
    pub fn retain(&mut self, keep: impl Fn(&ObjectRef) -> bool) -> Result<usize, Error> {
        let gone: Vec<ObjectRef> = self.observed.keys().filter(|r| !keep(r)).cloned().collect();
        for r in &gone {
            let path = path_of(&self.root, r);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
            tracing::debug!(object = %r, path = %path.display(), "removed manifest");
            self.observed.remove(r);
        }
        Ok(gone.len())
    }
}

/// The file an object lives in.
pub fn path_of(root: &Path, r: &ObjectRef) -> PathBuf {
    let dir = if r.namespace.is_empty() {
        CLUSTER_DIR
    } else {
        r.namespace.as_str()
    };
    root.join(dir)
        .join(format!("{}.{}.yaml", r.kind.to_ascii_lowercase(), r.name))
}

pub(crate) fn render(object: &Value) -> Result<String, Error> {
    serde_norway::to_string(object).map_err(|e| Error::Config(format!("cannot render YAML: {e}")))
}

/// The identity of a manifest file's object, if meshplane owns it.
pub(crate) fn owned_object(content: &str) -> Option<ObjectRef> {
    let value: Value = serde_norway::from_str(content).ok()?;
    let metadata = value.get("metadata")?;
    if metadata.get("labels")?.get(MANAGED_BY_LABEL)?.as_str()? != MANAGER {
        return None;
    }
    Some(ObjectRef {
        api_version: value.get("apiVersion")?.as_str()?.to_string(),
        kind: value.get("kind")?.as_str()?.to_string(),
        namespace: metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        name: metadata.get("name")?.as_str()?.to_string(),
    })
}

fn write_atomically(path: &Path, content: &str) -> Result<(), Error> {
    let dir = path.parent().expect("manifest paths have a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, content).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut paths = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::io(dir, e))?;
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actors::{Ctx, Mesh};
    use serde_json::json;
    use std::time::SystemTime;

    fn desired_of(docs: &[Value]) -> Desired {
        let mut mesh = Mesh::default();
        mesh.apply_documents(docs, &mut Ctx::new(0, 0)).unwrap();
        projections::desired(&mesh)
    }

    fn cm(name: &str, value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop"}, "data": {"k": value}})
    }

    fn mtime(p: &Path) -> SystemTime {
        std::fs::metadata(p).unwrap().modified().unwrap()
    }

    #[test]
    fn writes_only_changes_and_removes_only_its_own_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let foreign = root.join("shop").join("configmap.hand-written.yaml");
        std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
        std::fs::write(
            &foreign,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hand-written\n",
        )
        .unwrap();

        let mut dir = ManifestDir::open(root).unwrap();
        let report = dir
            .sync(&desired_of(&[cm("a", "1"), cm("b", "1")]))
            .unwrap();
        assert_eq!(
            report,
            SyncReport {
                written: 2,
                removed: 0,
                unchanged: 0
            }
        );
        let a = root.join("shop").join("configmap.a.yaml");
        let content = std::fs::read_to_string(&a).unwrap();
        assert!(
            content.contains("app.kubernetes.io/managed-by: meshplane"),
            "{content}"
        );
        let a_written = mtime(&a);

        // Reopen (a restart): nothing is rewritten when nothing changed.
        let mut dir = ManifestDir::open(root).unwrap();
        let report = dir
            .sync(&desired_of(&[cm("a", "1"), cm("b", "2")]))
            .unwrap();
        assert_eq!(
            report,
            SyncReport {
                written: 1,
                removed: 0,
                unchanged: 1
            }
        );
        assert_eq!(mtime(&a), a_written);

        let report = dir.sync(&desired_of(&[cm("b", "2")])).unwrap();
        assert_eq!(
            report,
            SyncReport {
                written: 0,
                removed: 1,
                unchanged: 1
            }
        );
        assert!(!a.exists());
        assert!(
            foreign.exists(),
            "files meshplane does not own are never removed"
        );

        dir.sync(&Desired::default()).unwrap();
        assert!(foreign.exists());
        assert!(!root.join("shop").join("configmap.b.yaml").exists());
    }

    #[test]
    fn cluster_scoped_objects_go_to_the_cluster_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = ManifestDir::open(tmp.path()).unwrap();
        dir.sync(&desired_of(&[
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        ]))
        .unwrap();
        assert!(tmp
            .path()
            .join("_cluster")
            .join("namespace.shop.yaml")
            .exists());
    }
}
