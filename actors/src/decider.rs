//! The decider contract every mesh concept implements.

use events::{Event, ExpectedVersion};

use crate::ctx::Ctx;

/// A mesh concept as a pure state machine.
pub trait Decider {
    /// The concept's state, folded from its events.
    type State: Default;
    /// What a client may ask of the concept.
    type Command;

    /// Decide what happens: the events to append (possibly none), or a rejection. Must not
    /// change anything; a rejected command appends nothing.
    fn decide(
        state: &Self::State,
        command: Self::Command,
        ctx: &mut Ctx,
    ) -> Result<Decision, Rejection>;

    /// Fold one stored event into the state. Total: every event this concept owns is applied,
    /// whatever the state; events of other concepts are ignored. Takes the event by value so a
    /// replay moves its strings into the state instead of copying them.
    fn evolve(state: &mut Self::State, event: Event, meta: &Meta);
}

/// The expectation for appending to a stream now at `version` (0: the stream does not exist).
pub fn expect_version(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    }
}

/// Where a stored event sits in the log, for deciders that remember it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub position: u64,
    pub stream_version: u64,
    pub recorded_at_ms: i64,
}

/// The result of an accepted command: events for one stream, with the version the stream must
/// still be at when they are appended (optimistic concurrency).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<Event>,
    pub outcome: Outcome,
    /// For commands that carry several items (a catalog file), each item's own outcome, in
    /// order; empty otherwise.
    pub item_outcomes: Vec<Outcome>,
}

/// What an accepted command did, in words a client shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    Deleted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
        }
    }
}

/// Why a command was refused. `field` names the offending field (`metadata.name`,
/// `spec.ports[0].port`) when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectionKind,
    pub field: Option<String>,
    pub message: String,
    /// For commands that carry several items, the index of the item at fault.
    pub item: Option<usize>,
}

/// The class of a rejection; the API maps it to a status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionKind {
    /// The command is malformed or violates a rule (400).
    Invalid,
    /// The target does not exist (404).
    NotFound,
    /// The command conflicts with the current state (409).
    Conflict,
}

impl Rejection {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection {
            kind: RejectionKind::Invalid,
            field: Some(field.into()),
            message: message.into(),
            item: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Rejection {
            kind: RejectionKind::NotFound,
            field: None,
            message: message.into(),
            item: None,
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Rejection {
            kind: RejectionKind::Conflict,
            field: None,
            message: message.into(),
            item: None,
        }
    }

    /// Name the item of a multi-item command that is at fault.
    pub fn at_item(mut self, item: usize) -> Self {
        self.item = Some(item);
        self
    }

    /// Prefix the field path, e.g. when validating the n-th document of a batch.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field {
            Some(f) => format!("{prefix}.{f}"),
            None => prefix.to_string(),
        });
        self
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for Rejection {}
