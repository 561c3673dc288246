//! The event model and [`parse`]: one JSON document to one checked [`Event`].
//!
//! The walk is top-down and stops at the first fault, in a fixed order (`eventType`,
//! `eventTime`, `producer`, `run`, `job`, `dataset`, `inputs`, `outputs`), so the same bad event
//! always gets the same error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{quote, EventError};
use crate::{canonical_uuid, timestamp, MAX_DATASETS, MAX_NAME_BYTES};

/// A job's identity: unique within its namespace (usually the scheduler, `airflow`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Ord, PartialOrd, Serialize, Deserialize)]
pub struct JobKey {
    /// Where the job runs, e.g. `airflow`, `my-scheduler-namespace`.
    pub namespace: String,
    /// The job's name within it, e.g. `dag.task`.
    pub name: String,
}

/// A dataset's identity: unique within its namespace (its data source).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Ord, PartialOrd, Serialize, Deserialize)]
pub struct DatasetKey {
    /// The data source, e.g. `postgres://host:5432`, `s3://bucket`, `bigquery`.
    pub namespace: String,
    /// The dataset's name within it, e.g. `db.schema.table`, `/path/to/data`.
    pub name: String,
}

/// Which of the three OpenLineage 2-0-x event shapes a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A run of a job changed state (`run` and `job`, with its inputs and outputs).
    Run,
    /// Static metadata about one dataset, outside any run (`dataset`).
    Dataset,
    /// Static metadata about a job and its datasets, outside any run (`job`, no `run`).
    Job,
}

impl EventKind {
    /// The spec's definition name: `RunEvent`, `DatasetEvent`, `JobEvent`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Run => "RunEvent",
            EventKind::Dataset => "DatasetEvent",
            EventKind::Job => "JobEvent",
        }
    }
}

/// A RunEvent's `eventType`: the state the run moved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunState {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    Other,
}

impl RunState {
    /// Every state, in the spec's order.
    pub const ALL: [RunState; 6] =
        [RunState::Start, RunState::Running, RunState::Complete, RunState::Abort, RunState::Fail, RunState::Other];

    /// The spec's spelling: `START`, `RUNNING`, `COMPLETE`, `ABORT`, `FAIL`, `OTHER`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Start => "START",
            RunState::Running => "RUNNING",
            RunState::Complete => "COMPLETE",
            RunState::Abort => "ABORT",
            RunState::Fail => "FAIL",
            RunState::Other => "OTHER",
        }
    }

    /// The state spelt `text` exactly as in the spec (upper case), if any.
    pub fn from_spec(text: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the run has ended: `COMPLETE`, `ABORT` or `FAIL`.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Complete | RunState::Abort | RunState::Fail)
    }
}

/// The run that started this one (the `parent` run facet), e.g. the DAG run of a task run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentRef {
    /// The parent run's id, canonical lowercase UUID.
    pub run_id: String,
    /// The parent run's job.
    pub job: JobKey,
}

/// A RunEvent's `run`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRef {
    /// `run.runId` as a canonical lowercase hyphenated UUID (`A1…` is stored as `a1…`).
    pub run_id: String,
    /// `run.facets` as sent, `parent` included; empty when absent.
    pub facets: Map<String, Value>,
    /// `run.facets.parent`, checked.
    pub parent: Option<ParentRef>,
}

/// An event's `job`.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRef {
    pub key: JobKey,
    /// `job.facets` as sent (`sql`, `documentation`, `jobType`, unknown ones); empty when absent.
    pub facets: Map<String, Value>,
}

/// One dataset of an event: an input, an output, or a DatasetEvent's `dataset`.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetRef {
    pub key: DatasetKey,
    /// `facets` as sent (`schema`, `columnLineage`, `datasetType`, unknown ones).
    pub facets: Map<String, Value>,
    /// `inputFacets` as sent (an input's data quality metrics, for instance); empty when absent.
    pub input_facets: Map<String, Value>,
    /// `outputFacets` as sent (an output's row count, for instance); empty when absent.
    pub output_facets: Map<String, Value>,
}

/// One checked OpenLineage event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// A RunEvent's `eventType`; `None` when absent (Marquez accepts that) and for the other kinds.
    pub event_type: Option<RunState>,
    /// `eventTime` in UTC milliseconds since 1970.
    pub event_time_ms: i64,
    /// `producer` (the URI of the integration that sent it), `""` when absent.
    pub producer: String,
    /// Some for a RunEvent only.
    pub run: Option<RunRef>,
    /// Some for a RunEvent and a JobEvent.
    pub job: Option<JobRef>,
    /// Some for a DatasetEvent only.
    pub dataset: Option<DatasetRef>,
    /// Empty for a DatasetEvent.
    pub inputs: Vec<DatasetRef>,
    /// Empty for a DatasetEvent.
    pub outputs: Vec<DatasetRef>,
}

/// Checks one event, already decoded from JSON, and returns its parts.
///
/// The rules, and what is refused on purpose, are in the crate documentation.
pub fn parse(value: &Value) -> Result<Event, EventError> {
    let Value::Object(top) = value else {
        return Err(EventError::new("body", format!("must be a JSON object, not {}", type_name(value))));
    };
    let kind = if present(top, "run").is_some() {
        EventKind::Run
    } else if present(top, "dataset").is_some() {
        EventKind::Dataset
    } else if present(top, "job").is_some() {
        EventKind::Job
    } else {
        return Err(EventError::new(
            "run",
            "missing: an event needs run and job (RunEvent), dataset (DatasetEvent) or job (JobEvent)",
        ));
    };

    let event_type = match kind {
        EventKind::Run => optional_str(top, "eventType", "eventType")?.map(run_state).transpose()?,
        // Not part of DatasetEvent and JobEvent: ignored like any unknown field.
        EventKind::Dataset | EventKind::Job => None,
    };
    let event_time = required_str(top, "eventTime", "eventTime")?;
    let event_time_ms = timestamp::parse_millis(event_time).map_err(|m| EventError::new("eventTime", m))?;
    let producer = optional_str(top, "producer", "producer")?.unwrap_or_default().to_owned();

    let mut event = Event {
        kind,
        event_type,
        event_time_ms,
        producer,
        run: None,
        job: None,
        dataset: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    match kind {
        EventKind::Run => {
            event.run = Some(run(required_object(top, "run", "run")?)?);
            event.job = Some(job(required_object(top, "job", "job")?)?);
        }
        EventKind::Dataset => {
            event.dataset = Some(dataset(required_object(top, "dataset", "dataset")?, "dataset")?);
        }
        EventKind::Job => event.job = Some(job(required_object(top, "job", "job")?)?),
    }
    if kind != EventKind::Dataset {
        event.inputs = datasets(top, "inputs")?;
        event.outputs = datasets(top, "outputs")?;
    }
    Ok(event)
}

/// Decodes `body` as JSON and checks it with [`parse`]; a JSON syntax error is refused on the
/// field `body`.
pub fn parse_bytes(body: &[u8]) -> Result<Event, EventError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| EventError::new("body", format!("not valid JSON: {e}")))?;
    parse(&value)
}

fn run_state(text: &str) -> Result<RunState, EventError> {
    RunState::from_spec(text).ok_or_else(|| {
        EventError::new(
            "eventType",
            format!("must be one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER, not {}", quote(text)),
        )
    })
}

fn run(obj: &Map<String, Value>) -> Result<RunRef, EventError> {
    let run_id = uuid(obj, "runId", "run.runId")?;
    let facets = facets(obj, "facets", "run.facets")?;
    let parent = match present(&facets, "parent") {
        None => None,
        Some(value) => Some(parent(value, "run.facets.parent")?),
    };
    Ok(RunRef { run_id, facets, parent })
}

/// The `parent` run facet. Marquez types it (`run` and `job` both required), so a malformed
/// one is refused rather than kept as an opaque facet.
fn parent(value: &Value, path: &str) -> Result<ParentRef, EventError> {
    let obj = as_object(value, path)?;
    let run = required_object(obj, "run", &format!("{path}.run"))?;
    let run_id = uuid(run, "runId", &format!("{path}.run.runId"))?;
    let job = required_object(obj, "job", &format!("{path}.job"))?;
    Ok(ParentRef { run_id, job: job_key(job, &format!("{path}.job"))? })
}

fn job(obj: &Map<String, Value>) -> Result<JobRef, EventError> {
    Ok(JobRef { key: job_key(obj, "job")?, facets: facets(obj, "facets", "job.facets")? })
}

fn job_key(obj: &Map<String, Value>, path: &str) -> Result<JobKey, EventError> {
    Ok(JobKey {
        namespace: name(obj, "namespace", &format!("{path}.namespace"))?,
        name: name(obj, "name", &format!("{path}.name"))?,
    })
}

/// `inputs` or `outputs`: absent and `null` are empty lists.
fn datasets(top: &Map<String, Value>, key: &str) -> Result<Vec<DatasetRef>, EventError> {
    let Some(value) = present(top, key) else { return Ok(Vec::new()) };
    let Value::Array(items) = value else {
        return Err(EventError::new(key, format!("must be an array, not {}", type_name(value))));
    };
    if items.len() > MAX_DATASETS {
        return Err(EventError::new(key, format!("at most {MAX_DATASETS} datasets, not {}", items.len())));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{key}[{i}]");
            dataset(as_object(item, &path)?, &path)
        })
        .collect()
}

fn dataset(obj: &Map<String, Value>, path: &str) -> Result<DatasetRef, EventError> {
    Ok(DatasetRef {
        key: DatasetKey {
            namespace: name(obj, "namespace", &format!("{path}.namespace"))?,
            name: name(obj, "name", &format!("{path}.name"))?,
        },
        facets: facets(obj, "facets", &format!("{path}.facets"))?,
        input_facets: facets(obj, "inputFacets", &format!("{path}.inputFacets"))?,
        output_facets: facets(obj, "outputFacets", &format!("{path}.outputFacets"))?,
    })
}

/// A namespace or name: a non-empty string of at most [`MAX_NAME_BYTES`] bytes.
fn name(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, EventError> {
    let text = required_str(obj, key, path)?;
    if text.is_empty() {
        return Err(EventError::new(path, "must not be empty"));
    }
    if text.len() > MAX_NAME_BYTES {
        return Err(EventError::new(path, format!("at most {MAX_NAME_BYTES} bytes, not {}", text.len())));
    }
    Ok(text.to_owned())
}

fn uuid(obj: &Map<String, Value>, key: &str, path: &str) -> Result<String, EventError> {
    let text = required_str(obj, key, path)?;
    canonical_uuid(text).ok_or_else(|| {
        EventError::new(
            path,
            format!("must be a UUID such as 3f5e83fa-3480-44ff-99c5-ff943904e5e8, not {}", quote(text)),
        )
    })
}

/// A facets map: absent and `null` are empty; anything else must be an object. The facets
/// inside are kept as sent, whatever their shape.
fn facets(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Map<String, Value>, EventError> {
    match present(obj, key) {
        None => Ok(Map::new()),
        Some(value) => as_object(value, path).cloned(),
    }
}

/// `obj[key]`, with `null` read as absent (Jackson, which Marquez uses, does the same).
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn required_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a Map<String, Value>, EventError> {
    as_object(present(obj, key).ok_or_else(|| EventError::new(path, "missing"))?, path)
}

fn required_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, EventError> {
    optional_str(obj, key, path)?.ok_or_else(|| EventError::new(path, "missing"))
}

fn optional_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>, EventError> {
    match present(obj, key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(EventError::new(path, format!("must be a string, not {}", type_name(other)))),
    }
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, EventError> {
    value.as_object().ok_or_else(|| EventError::new(path, format!("must be an object, not {}", type_name(value))))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_states_spell_as_in_the_spec() {
        for state in RunState::ALL {
            assert_eq!(RunState::from_spec(state.as_str()), Some(state));
        }
        assert_eq!(RunState::from_spec("complete"), None);
        let terminal: Vec<_> = RunState::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(terminal, [RunState::Complete, RunState::Abort, RunState::Fail]);
    }

    #[test]
    fn nulls_read_as_absent() {
        let event = parse(&json!({
            "eventTime": "2020-12-28T19:51:01.641Z",
            "eventType": null,
            "producer": null,
            "run": {"runId": "43D7DB3B-8984-4CDA-B237-8C6919B36670", "facets": null},
            "job": {"namespace": "n", "name": "j", "facets": null},
            "inputs": null,
            "dataset": null,
        }))
        .unwrap();
        assert_eq!(event.event_type, None);
        assert_eq!(event.producer, "");
        assert_eq!(event.run.unwrap().run_id, "43d7db3b-8984-4cda-b237-8c6919b36670");
        assert!(event.inputs.is_empty());
    }
}
