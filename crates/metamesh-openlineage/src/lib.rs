//! OpenLineage events, checked the way Marquez accepts them, and Marquez node ids.
//!
//! Pure: no IO (but [`workload::read_corpus`], for the benchmarks), no async, no clock. The HTTP endpoint (`POST /api/v1/lineage`) and the storage
//! of events are built on top of this crate; everything they need to know about an event's
//! shape is decided here, once.
//!
//! ```
//! let event = metamesh_openlineage::parse_bytes(br#"{
//!     "eventType": "COMPLETE",
//!     "eventTime": "2020-12-28T19:52:00.001+10:00",
//!     "run": {"runId": "41FB5137-F0FD-4EE5-BA5C-56F8571D1BD7"},
//!     "job": {"namespace": "my-scheduler-namespace", "name": "myjob"},
//!     "inputs": [{"namespace": "postgres://db:5432", "name": "public.orders"}]
//! }"#)?;
//! assert_eq!(event.kind, metamesh_openlineage::EventKind::Run);
//! assert_eq!(event.event_time_ms, 1_609_149_120_001);
//! assert_eq!(event.run.unwrap().run_id, "41fb5137-f0fd-4ee5-ba5c-56f8571d1bd7");
//! assert_eq!(event.inputs[0].key.namespace, "postgres://db:5432");
//! # Ok::<(), metamesh_openlineage::EventError>(())
//! ```
//!
//! # Events
//!
//! The kind comes from the fields present (as OpenLineage's clients tell them apart): `run` makes
//! a RunEvent (with or without `eventType`), else `dataset` a DatasetEvent, else `job` a
//! JobEvent; an event with none of the three is refused on `run`. Marquez itself dispatches on the suffix of
//! `schemaURL` (`…/DatasetEvent`, `…/JobEvent`, anything else a RunEvent); the two agree on every
//! event of the test corpus that has a `schemaURL`, and a missing `schemaURL` is fine here.
//!
//! **Strict** — refused with an [`EventError`] naming the field as a JSON path:
//! - the event is not a JSON object (`body`; a JSON syntax error in [`parse_bytes`] too);
//! - RunEvent: `run` and `job` objects, `run.runId` a UUID (any case, stored lowercase),
//!   `job.namespace` and `job.name`; DatasetEvent: `dataset.namespace`, `dataset.name`; JobEvent:
//!   `job.namespace`, `job.name`; every kind: `eventTime`;
//! - every input and output: `namespace` and `name` (`inputs[3].namespace`);
//! - namespaces and names are non-empty strings of at most [`MAX_NAME_BYTES`] (1024) bytes; at
//!   most [`MAX_DATASETS`] (1000) inputs and as many outputs, so a hostile body cannot blow up
//!   storage;
//! - a RunEvent's `eventType`, when present, is one of `START RUNNING COMPLETE ABORT FAIL OTHER`,
//!   upper case as in the spec;
//! - `facets`, `inputFacets`, `outputFacets`, when present, are objects; `inputs` and `outputs`
//!   arrays of objects; `producer` a string; the wrong JSON type anywhere above is refused on
//!   that field;
//! - the `parent` run facet, when present, has `run.runId` (a UUID) and `job.namespace`,
//!   `job.name` (`run.facets.parent.run.runId`): Marquez types that facet, and it becomes a
//!   lineage edge, so it is checked like the event's own run and job.
//!
//! **Lenient** where Marquez is:
//! - no `schemaURL`, no `producer` (read as `""`), no `eventType`;
//! - `eventTime` as `YYYY-MM-DDTHH:MM[:SS[.fraction]][offset]`: without a time zone (read as
//!   UTC), with micro- or nanoseconds, or more than nine fraction digits (which Java's parser
//!   refuses), cut to the millisecond toward the past, with an offset `Z`, `±HH`, `±HHMM`, `±HH:MM` or `±HH:MM:SS`, a lowercase
//!   `t` or `z`;
//! - `null` reads as absent everywhere; unknown top-level fields are ignored (so is `dataset` on
//!   a RunEvent: the spec's own `example_full_event.json` has one, and `eventType` on the other
//!   kinds); unknown facets, and facets of any shape, are kept as sent in the facets maps.
//!
//! **Refused on purpose**, where Marquez would accept:
//! - a `runId` (or parent `runId`) that is not a hyphenated UUID. Marquez turns such an id into a
//!   name-based UUID; we refuse it so that one run id has one spelling everywhere. No event of
//!   the corpus needs it.
//! - an `eventType` outside the spec's six values (Marquez stores any string);
//! - an `eventTime` with a zone name (`…[Europe/Paris]`: resolving one needs a time zone
//!   database), a space instead of `T`, a leap second, `24:00`, or a year beyond 9999.
//!
//! Every file of the test corpus (`tests/corpus/openlineage`: Marquez's test events, the
//! OpenLineage spec's and Python client's examples, the compatibility-test scenarios for
//! Airflow, Spark column lineage and Spark on BigQuery) is accepted; only
//! `marquez/metadata.template.json` needs its `{{RUN_START_TIME}}` placeholders filled first, as
//! its name says (an unfilled one is refused on `eventTime`).
//!
//! # Facets
//!
//! Helpers over a facets map, lenient on shape: [`schema_fields`] (nested fields flattened as
//! `parent.child`), [`column_lineage`] and [`column_lineage_dataset_inputs`], [`dataset_type`].
//!
//! # Node ids
//!
//! [`NodeId`] parses Marquez's lineage node ids (`dataset:<ns>:<name>`, `job:<ns>:<name>`,
//! `run:<uuid>`, `datasetField:<ns>:<name>:<field>`, and the versioned `…#<uuid>` forms) with
//! Marquez's own rule for colons inside namespaces (`s3://bucket`, `postgres://host:5432`),
//! described on the type, and refuses the ids that rule would misread.
//!
//! # Code map
//! - `event`: the event types, [`parse`] and [`parse_bytes`].
//! - `timestamp`: `eventTime` to UTC milliseconds.
//! - `facets`: the facet helpers.
//! - `node_id`: [`NodeId`].
//! - `error`: [`EventError`].
//! - [`workload`]: the events the benchmarks replay (corpus copies, chains of jobs).

mod error;
mod event;
mod facets;
mod node_id;
mod timestamp;
pub mod workload;

pub use error::EventError;
pub use event::{
    parse, parse_bytes, DatasetKey, DatasetRef, Event, EventKind, JobKey, JobRef, ParentRef, RunRef, RunState,
};
pub use facets::{
    column_lineage, column_lineage_dataset_inputs, dataset_type, schema_fields, ColumnLineage, Field, InputField,
    MAX_SCHEMA_DEPTH,
};
pub use node_id::{NodeId, NodeIdError};
pub use serde_json::{Map, Value};

/// The longest namespace or name accepted, in bytes (UTF-8).
pub const MAX_NAME_BYTES: usize = 1024;

/// The most inputs accepted in one event, and the most outputs.
pub const MAX_DATASETS: usize = 1000;

/// `text` as a canonical (lowercase, hyphenated) UUID, if it is a hyphenated UUID in any case.
///
/// The simple, braced and URN forms are refused: OpenLineage run ids and Marquez versions are
/// written hyphenated, and one run should have one spelling.
pub fn canonical_uuid(text: &str) -> Option<String> {
    if text.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(text).ok().map(|u| u.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyphenated_uuids_are_canonical() {
        let id = "3f5e83fa-3480-44ff-99c5-ff943904e5e8";
        assert_eq!(canonical_uuid(id).as_deref(), Some(id));
        assert_eq!(canonical_uuid(&id.to_uppercase()).as_deref(), Some(id));
        for bad in [
            "3f5e83fa348044ff99c5ff943904e5e8",
            "{3f5e83fa-3480-44ff-99c5-ff943904e5e8}",
            "urn:uuid:3f5e83fa-3480-44ff-99c5-ff943904e5e8",
            "3f5e83fa-3480-44ff-99c5-ff943904e5eg",
            "3f5e83fa-3480-44ff-99c5+ff943904e5e8",
            "",
        ] {
            assert_eq!(canonical_uuid(bad), None, "{bad}");
        }
    }
}
