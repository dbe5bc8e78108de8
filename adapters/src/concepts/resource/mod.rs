//! The declarative-resource concept's I/O: none of its own. Its routes (`/api/v1/apply`,
//! `/api/v1/resources/...`) are the API's generic entry for every kind (`crate::api`).

use super::ConceptIo;

impl ConceptIo for actors::resource::Resources {}
