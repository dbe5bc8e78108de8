//! Pure functions from actor state to the objects that should exist.
//!
//! [`desired`] turns the mesh state into typed Kubernetes objects (k8s-openapi types) and etcd
//! key/values, built from state alone so that applying them twice changes nothing. [`plan`]
//! compares desired against observed and says what to create, update and delete. Adapters do the
//! I/O; this crate does none.
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod cluster;
pub mod concept;
pub mod crds;
pub mod desired;
pub mod digest;
pub mod fence;
pub mod history;
pub mod install;
pub mod object;
pub mod objects;
pub mod plan;
pub mod registry;
pub mod rollback;
pub mod time;

pub use concept::{DesiredItem, Projection, Targets};
pub use desired::{desired, desired_digest, desired_etcd, desired_kube, Desired};
pub use digest::{mesh_digest, MeshDigest};
pub use object::{KubeObject, ObjectRef, MANAGED_BY_LABEL, MANAGER};
pub use plan::{plan, Plan};
