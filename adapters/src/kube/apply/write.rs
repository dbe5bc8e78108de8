//! One write to the API server: a server-side apply, a status apply, or a delete, with the
//! retry of a 409 against fresh state.

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::Client;
use projections::ObjectRef;
use serde_json::Value;

use crate::kube::kinds;

/// The field manager of every meshplane write.
pub const FIELD_MANAGER: &str = projections::object::MANAGER;

/// A write the applier decided on.
#[derive(Clone, Debug)]
pub enum Op {
    /// Server-side apply of a whole object meshplane owns (`force`: meshplane takes the fields
    /// it sets even when another manager set them).
    Apply { object: ObjectRef, value: Value },
    /// Server-side apply of the `status` of an object meshplane does not own (no force).
    Status { object: ObjectRef, value: Value },
    /// Delete an object meshplane created and no longer desires; `uid` guards against
    /// deleting a newer object of the same name.
    Delete {
        object: ObjectRef,
        uid: Option<String>,
    },
}

impl Op {
    pub fn object(&self) -> &ObjectRef {
        match self {
            Op::Apply { object, .. } | Op::Status { object, .. } | Op::Delete { object, .. } => {
                object
            }
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Op::Apply { .. } => "apply",
            Op::Status { .. } => "apply status of",
            Op::Delete { .. } => "delete",
        }
    }
}

/// What a write did.
#[derive(Debug)]
pub enum Done {
    /// Applied; the object's uid as the server answered.
    Applied { uid: Option<String> },
    /// Deleted, or already gone.
    Deleted,
}

/// Why a write failed.
#[derive(Debug)]
pub struct Failed {
    /// The HTTP status, when the server answered.
    pub code: Option<u16>,
    pub message: String,
    /// Whether a 409 was retried once with fresh state before giving up.
    pub conflicted: bool,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn failed(e: kube::Error) -> Failed {
    match e {
        kube::Error::Api(status) => Failed {
            code: Some(status.code),
            message: if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            },
            conflicted: false,
        },
        other => Failed {
            code: None,
            message: other.to_string(),
            conflicted: false,
        },
    }
}

fn code_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The dynamic API of an object's kind, at the object's own apiVersion.
pub fn api_for(client: &Client, object: &ObjectRef) -> Result<Api<DynamicObject>, Failed> {
    let Some(kind) = kinds::written(&object.kind) else {
        return Err(Failed {
            code: None,
            message: format!("meshplane does not write objects of kind {}", object.kind),
            conflicted: false,
        });
    };
    let (group, version) = match object.api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", object.api_version.as_str()),
    };
    let resource = ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk(group, version, &object.kind),
        kind.plural,
    );
    Ok(if kind.namespaced {
        Api::namespaced_with(client.clone(), &object.namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    })
}

/// Send a server-side apply; after a 409, read the object again and send it once more.
async fn apply_retrying_conflict<F, Fut>(
    api: &Api<DynamicObject>,
    name: &str,
    send: F,
) -> Result<Done, Failed>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<DynamicObject, kube::Error>>,
{
    let result = match send().await {
        Err(e) if code_of(&e) == Some(409) => {
            refresh(api, name).await?;
            send().await.map_err(|e| Failed {
                conflicted: true,
                ..failed(e)
            })
        }
        other => other.map_err(failed),
    }?;
    Ok(Done::Applied {
        uid: result.metadata.uid,
    })
}

/// Carry out one write. A 409 is retried once after reading the object again (its current
/// uid, or whether it is still there); anything else is the caller's to back off from.
pub async fn perform(client: &Client, op: &Op) -> Result<Done, Failed> {
    let api = api_for(client, op.object())?;
    let name = op.object().name.as_str();
    match op {
        Op::Apply { value, .. } => {
            // Force: meshplane owns the objects it applies whole.
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let patch = Patch::Apply(value);
            apply_retrying_conflict(&api, name, || api.patch(name, &params, &patch)).await
        }
        Op::Status { value, .. } => {
            // No force: the status of an object someone else may also write.
            let params = PatchParams::apply(FIELD_MANAGER);
            let patch = Patch::Apply(value);
            apply_retrying_conflict(&api, name, || api.patch_status(name, &params, &patch)).await
        }
        Op::Delete { uid, .. } => {
            let params = |uid: &Option<String>| {
                let mut p = DeleteParams::background();
                if let Some(uid) = uid {
                    p = p.preconditions(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    });
                }
                p
            };
            match api.delete(name, &params(uid)).await {
                Ok(_) => Ok(Done::Deleted),
                Err(e) if code_of(&e) == Some(404) => Ok(Done::Deleted),
                Err(e) if code_of(&e) == Some(409) => {
                    // The uid precondition failed: the name now holds another object. Delete it
                    // only if it is meshplane's too.
                    let Some(current) = refresh(&api, name).await? else {
                        return Ok(Done::Deleted);
                    };
                    let managed = current.metadata.labels.as_ref().and_then(|l| {
                        l.get(projections::object::MANAGED_BY_LABEL)
                            .map(|v| v == projections::object::MANAGER)
                    });
                    if managed != Some(true) {
                        return Ok(Done::Deleted);
                    }
                    match api.delete(name, &params(&current.metadata.uid)).await {
                        Ok(_) => Ok(Done::Deleted),
                        Err(e) if code_of(&e) == Some(404) => Ok(Done::Deleted),
                        Err(e) => Err(Failed {
                            conflicted: true,
                            ..failed(e)
                        }),
                    }
                }
                Err(e) => Err(failed(e)),
            }
        }
    }
}

/// Read the object again after a conflict: `None` when it is gone.
async fn refresh(api: &Api<DynamicObject>, name: &str) -> Result<Option<DynamicObject>, Failed> {
    match api.get(name).await {
        Ok(o) => Ok(Some(o)),
        Err(e) if code_of(&e) == Some(404) => Ok(None),
        Err(e) => Err(Failed {
            conflicted: true,
            ..failed(e)
        }),
    }
}
