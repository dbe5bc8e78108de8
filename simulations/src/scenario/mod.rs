//! Scenarios as code: what the world outside the daemon does (instances, traffic, operators).

pub mod fence;
pub mod registry;

use actors::mesh::document_command;
use serde_json::Value;

use crate::world::{Failure, World};

/// A scenario: sets the mesh up through the daemon, then acts every step.
pub trait Scenario {
    fn name(&self) -> &'static str;

    /// Apply the scenario's documents (through the real deciders and the log).
    fn setup(&mut self, world: &mut World) -> Result<(), Failure>;

    /// The concept's own invariants, after every step, against the world's truth the
    /// scenario holds (when it last heard from an instance, ...).
    fn check(&mut self, _world: &mut World) -> Result<(), Failure> {
        Ok(())
    }

    /// Act at the world's current time. `healing`: the liveness phase (no new disruptions;
    /// the background keeps going: heartbeats, steady traffic).
    fn act(&mut self, world: &mut World, healing: bool);
}

/// Apply declarative documents the way the daemon's apply endpoint does.
pub fn apply_documents(world: &mut World, documents: &[Value]) -> Result<(), Failure> {
    for (i, document) in documents.iter().enumerate() {
        let command = document_command(document)
            .map_err(|r| Failure::new("scenario_setup", format!("documents[{i}]: {r}")))?;
        world.execute(command).map_err(|r| {
            Failure::new(
                "scenario_setup",
                format!(
                    "documents[{i}]: {}",
                    r.map_or("the daemon is down".to_string(), |r| r.to_string())
                ),
            )
        })?;
    }
    Ok(())
}
