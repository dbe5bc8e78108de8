//! The observed cluster projects nothing: what the watchers saw is an input of other concepts
//! (the fence reads observed ServiceFences, Services, Namespaces and VirtualServices).

use actors::cluster::Cluster;

use crate::concept::{Projection, Targets};

impl Projection for Cluster {
    const TARGETS: Targets = Targets::NONE;
    type Cursor = ();
}
