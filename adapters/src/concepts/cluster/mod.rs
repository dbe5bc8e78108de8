//! The observed cluster's I/O: the Kubernetes watchers, technology code in `crate::kube`
//! (started with the Kubernetes adapter, not per concept).

use super::ConceptIo;

impl ConceptIo for actors::cluster::Cluster {}
