//! Typed objects of the custom resources meshplane renders, by who defines them: Istio's
//! (`istio.rs`) and Slime's (`slime.rs`). The concepts' projections build them; the typed union
//! of every desired object ([`crate::object::KubeObject`]) names them. Neither imports a
//! projection, so the projections depend on these types and never the other way round.

pub mod istio;
pub mod slime;
