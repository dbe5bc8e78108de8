//! The replay digest: one stable fingerprint of every actor's state and every desired object.

use actors::Mesh;
use sha2::{Digest, Sha256};

use crate::desired::desired_digest;

/// Per-concept state digests, the desired-objects digest, and one combined digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshDigest {
    pub position: u64,
    pub concepts: Vec<(&'static str, String)>,
    pub desired: String,
    pub combined: String,
}

/// Digest a folded mesh. Two folds of the same log always give the same digest.
pub fn mesh_digest(mesh: &Mesh) -> MeshDigest {
    let concepts = mesh.concept_digests();
    let desired = desired_digest(mesh);
    let mut hasher = Sha256::new();
    for (name, digest) in &concepts {
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    hasher.update(b"desired=");
    hasher.update(desired.as_bytes());
    MeshDigest {
        position: mesh.position,
        concepts,
        desired,
        combined: hex::encode(hasher.finalize()),
    }
}

impl std::fmt::Display for MeshDigest {
    /// One `name value` pair per line; the combined digest is always the last line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "position {}", self.position)?;
        for (name, digest) in &self.concepts {
            writeln!(f, "state.{name} {digest}")?;
        }
        writeln!(f, "desired {}", self.desired)?;
        write!(f, "digest {}", self.combined)
    }
}
