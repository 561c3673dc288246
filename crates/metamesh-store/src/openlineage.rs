//! OpenLineage events (`Command::OpenLineage`): the raw events, kept once each, and what they
//! say mapped onto the catalog and the lineage graph, in the same transaction
//! (docs/openlineage.md has the whole mapping).
//!
//! - Every event is stored in `ol_events` under its digest (blake3 of its JSON text, which the
//!   router writes canonically): a re-sent event is found there and changes nothing.
//! - A job is the entity `mm://<tenant>/job/ol:<namespace>;<name>`, a run `…/run/ol:<runId>`,
//!   a dataset `…/dataset/ol:<namespace>;<name>` (`model/…` when its `datasetType` facet says
//!   MODEL). Properties hold what Marquez shows, under `{"openlineage": {…}}`.
//! - A run's state follows its events (START/RUNNING → RUNNING, COMPLETE → COMPLETED,
//!   FAIL → FAILED, ABORT → ABORTED) unless the event is older than the last transition.
//! - When a run reaches a terminal state, its job's inputs and outputs become the run's, and the
//!   job's lineage edges follow: `dataset -consumed-> job`, `job -produced-> dataset`; an
//!   edge to a dataset no longer read or written is removed. An output gets a new version made
//!   by the run (COMPLETE only), and its `columnLineage` facet becomes `column` edges.
//! - Inputs owned by another tenant (`foreign`, from the router's namespace map) are
//!   referenced, never written: the edge crosses tenants.
//!
//! Within one command a job or run written by several events is written once, as the last
//! event left it; every event is still stored.

use std::collections::{BTreeMap, HashMap};

use metamesh_core::command::ForeignDataset;
use metamesh_core::openlineage as names;
use metamesh_core::{CommandError, EdgeKind, EdgeSpec, EntitySpec, EntityUrn, Kind, Outcome, TenantId, Urn};
use metamesh_openlineage::{DatasetKey, DatasetRef, Event, EventKind, JobKey, RunState};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::apply::{record_change, Ctx, Fail, Res};
use crate::{entities, lineage, StoreError};

/// The longest description copied from a `documentation` facet.
const MAX_DESCRIPTION: usize = 4096;

/// Applies a command's events in order.
pub(crate) fn apply(
    ctx: &Ctx<'_>,
    conn: &Connection,
    tenant: &TenantId,
    events: &[String],
    foreign: &[ForeignDataset],
) -> Res<Outcome> {
    ctx.require_tenant(tenant)?;
    let foreign = foreign.iter().map(|f| ((f.namespace.clone(), f.name.clone()), f.tenant.clone())).collect();
    let mut w = Writer {
        ctx,
        conn,
        tenant,
        foreign,
        jobs: BTreeMap::new(),
        runs: BTreeMap::new(),
        datasets: Vec::new(),
        known: HashMap::new(),
        columns: Vec::new(),
    };
    let mut stored = Vec::with_capacity(events.len());
    for (i, text) in events.iter().enumerate() {
        let event = metamesh_openlineage::parse_bytes(text.as_bytes())
            .map_err(|e| CommandError::invalid(format!("events[{i}].{}", e.field), e.message))?;
        let fresh = w.store_event(text, &event)?;
        stored.push(fresh);
        if fresh {
            w.event(&event).map_err(|f| crate::apply::at_index(i, f))?;
        }
    }
    if stored.contains(&true) {
        w.flush()?;
    }
    Ok(Outcome::OpenLineage { stored })
}

/// When [`Writer::dataset_version`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// A new version (unless nothing changed).
    Always,
    /// Only if the dataset does not exist yet (or exists bare, and the event describes it).
    IfMissing,
    /// Only if it does not exist yet, and then without the event's facets.
    BareIfMissing,
}

/// A job as the command leaves it.
struct JobState {
    urn: EntityUrn,
    /// Its properties before the command (none: new).
    before: Option<Value>,
    props: Value,
    /// Datasets the job read and wrote before the command, as URNs.
    io_before: Option<(Vec<EntityUrn>, Vec<EntityUrn>)>,
}

struct RunStateRow {
    urn: EntityUrn,
    before: Option<Value>,
    props: Value,
}

struct Writer<'a, 'c> {
    ctx: &'a Ctx<'c>,
    conn: &'a Connection,
    tenant: &'a TenantId,
    foreign: HashMap<(String, String), TenantId>,
    jobs: BTreeMap<JobKey, JobState>,
    runs: BTreeMap<String, RunStateRow>,
    /// Dataset versions not written yet, in order (a dataset may have several): written
    /// set-based when the command ends.
    datasets: Vec<EntitySpec>,
    /// The properties of every dataset (or model) URN looked at so far, as this command leaves
    /// them (`None`: no such live entity): each is read and parsed once per command.
    known: HashMap<EntityUrn, Option<Value>>,
    /// `column` edges to write once their outputs are: output URN, its `columnLineage`
    /// facet.
    columns: Vec<(EntityUrn, Map<String, Value>)>,
}

impl Writer<'_, '_> {
    /// Stores the event's text once; false if it was stored before.
    fn store_event(&self, body: &str, event: &Event) -> Res<bool> {
        let digest = blake3::hash(body.as_bytes()).as_bytes().to_vec();
        let (run_id, job) = (event.run.as_ref().map(|r| r.run_id.as_str()), event.job.as_ref().map(|j| &j.key));
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO ol_events (tenant, digest, rev, at_ms, by, event_time_ms, kind, event_type, run_id,
                                        job_namespace, job_name, body)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                self.tenant.as_str(),
                digest,
                self.ctx.rev,
                self.ctx.at_ms,
                self.ctx.by,
                event.event_time_ms,
                kind_name(event.kind),
                event.event_type.map(|t| t.as_str()),
                run_id,
                job.map(|j| j.namespace.as_str()),
                job.map(|j| j.name.as_str()),
                body,
            ])?;
        Ok(inserted == 1)
    }

    fn event(&mut self, event: &Event) -> Res<()> {
        match event.kind {
            EventKind::Dataset => {
                if let Some(d) = &event.dataset {
                    self.dataset_version(d, None, Write::Always)?;
                }
                Ok(())
            }
            EventKind::Job => {
                let Some(job) = &event.job else { return Ok(()) };
                self.touch_datasets(event)?;
                let state = self.job(&job.key)?;
                merge_facets(&mut state.props["openlineage"]["facets"], &job.facets);
                let (inputs, outputs) = (self.keys(&event.inputs)?, self.keys(&event.outputs)?);
                let state = self.jobs.get_mut(&job.key).expect("loaded above");
                state.props["openlineage"]["inputs"] = json!(inputs);
                state.props["openlineage"]["outputs"] = json!(outputs);
                Ok(())
            }
            EventKind::Run => self.run_event(event),
        }
    }

    fn run_event(&mut self, event: &Event) -> Res<()> {
        let (Some(run), Some(job)) = (&event.run, &event.job) else { return Ok(()) };
        let run_urn = names::run_urn(self.tenant, &run.run_id).map_err(|e| invalid_urn("run.runId", e))?;
        self.job(&job.key)?;
        {
            let state = self.jobs.get_mut(&job.key).expect("loaded above");
            merge_facets(&mut state.props["openlineage"]["facets"], &job.facets);
        }
        let (inputs, outputs) = (self.keys(&event.inputs)?, self.keys(&event.outputs)?);
        let row = self.run(&run.run_id, run_urn, &job.key)?;
        let ol = &mut row.props["openlineage"];
        merge_facets(&mut ol["facets"], &run.facets);
        let parent_job = run.parent.as_ref().map(|p| json!({"namespace": p.job.namespace, "name": p.job.name}));
        if let Some(parent) = &run.parent {
            ol["parent"] =
                json!({"runId": parent.run_id, "job": {"namespace": parent.job.namespace, "name": parent.job.name}});
        }
        add_keys(&mut ol["inputs"], inputs);
        add_keys(&mut ol["outputs"], outputs);
        // What the run said of each output, until it completes and the outputs get their
        // versions (Marquez's demo describes outputs on START and completes without them).
        for d in &event.outputs {
            let key = format!("{}\u{0}{}", d.key.namespace, d.key.name);
            let slot = &mut ol["outputFacets"][key.as_str()];
            merge_facets(slot, &d.facets);
            merge_facets(slot, &d.output_facets);
        }
        let last = ol["transitionedAt"].as_i64().unwrap_or(i64::MIN);
        let mut terminal = None;
        if let Some(t) = event.event_type {
            if let Some(state) = run_state(t) {
                if event.event_time_ms >= last {
                    ol["state"] = json!(state);
                    ol["transitionedAt"] = json!(event.event_time_ms);
                }
                if t == RunState::Start || ol["startedAt"].is_null() && state == "RUNNING" {
                    ol["startedAt"] = json!(event.event_time_ms);
                }
                if t.is_terminal() {
                    ol["endedAt"] = json!(event.event_time_ms);
                    terminal = Some(t);
                }
            }
        }
        let (run_inputs, run_outputs) = (ol["inputs"].clone(), ol["outputs"].clone());
        // On COMPLETE, every output the run named gets its version, with what the run said of it.
        let completed_outputs: Vec<DatasetRef> = if terminal == Some(RunState::Complete) {
            run_outputs
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    let (ns, name) =
                        (k["namespace"].as_str().unwrap_or_default(), k["name"].as_str().unwrap_or_default());
                    let facets = ol["outputFacets"][format!("{ns}\u{0}{name}").as_str()]
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                    DatasetRef {
                        key: DatasetKey { namespace: ns.to_owned(), name: name.to_owned() },
                        facets,
                        input_facets: Map::new(),
                        output_facets: Map::new(),
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        if terminal.is_some() {
            // Settled: the versions are written (COMPLETE) or never will be.
            if let Some(map) = ol.as_object_mut() {
                map.remove("outputFacets");
            }
        }
        let summary = json!({
            "id": run.run_id,
            "state": ol["state"],
            "startedAt": ol["startedAt"],
            "endedAt": ol["endedAt"],
            "transitionedAt": ol["transitionedAt"],
        });
        self.touch_datasets(event)?;
        for d in &completed_outputs {
            self.dataset_version(d, Some(run.run_id.as_str()), Write::Always)?;
        }
        let job_state = self.jobs.get_mut(&job.key).expect("loaded above");
        let newer = job_state.props["openlineage"]["latestRun"]["transitionedAt"].as_i64().unwrap_or(i64::MIN);
        if summary["transitionedAt"].as_i64().unwrap_or(i64::MIN) >= newer {
            job_state.props["openlineage"]["latestRun"] = summary;
        }
        if let Some(parent) = parent_job {
            job_state.props["openlineage"]["parentJob"] = parent;
        }
        if terminal.is_some() {
            job_state.props["openlineage"]["inputs"] = run_inputs;
            job_state.props["openlineage"]["outputs"] = run_outputs;
        }
        Ok(())
    }

    /// Creates the datasets an event names that this tenant owns and does not hold yet (the
    /// outputs' versions are written when their run completes, by `run_event`). As in
    /// Marquez, a dataset first read gets the reader's facets at once; what a run writes
    /// becomes the dataset's current version only when the run completes (an output first seen
    /// before that is created bare: no facets, no fields).
    fn touch_datasets(&mut self, event: &Event) -> Res<()> {
        for d in &event.inputs {
            if !self.foreign.contains_key(&(d.key.namespace.clone(), d.key.name.clone())) {
                self.dataset_version(d, None, Write::IfMissing)?;
            }
        }
        for d in &event.outputs {
            self.dataset_version(d, None, Write::BareIfMissing)?;
        }
        Ok(())
    }

    /// Writes dataset `d` (ours), as `how` says, with its facets merged and, for an output of
    /// a completed run, the run that produced it.
    fn dataset_version(&mut self, d: &DatasetRef, produced_by: Option<&str>, how: Write) -> Res<()> {
        let urn = self.dataset_urn(&d.key, Some(d))?;
        let before = self.dataset_properties(&urn)?.cloned();
        // A bare dataset (an output named before its run completed) is no version yet in
        // Marquez's eyes: a read describing it fills it in.
        let bare = before.as_ref().is_some_and(|p| {
            p["openlineage"]["producedBy"].is_null()
                && p["openlineage"]["facets"].as_object().is_none_or(serde_json::Map::is_empty)
        });
        let fill = how == Write::IfMissing && bare && !d.facets.is_empty();
        if before.is_some() && how != Write::Always && !fill {
            return Ok(());
        }
        let existed = before.is_some();
        let mut props = before.unwrap_or_else(
            || json!({"openlineage": {"namespace": d.key.namespace, "name": d.key.name, "facets": {}, "fields": []}}),
        );
        let ol = &mut props["openlineage"];
        let mut changed = !existed;
        if how != Write::BareIfMissing {
            changed |= merge_facets(&mut ol["facets"], &d.facets);
            changed |= merge_facets(&mut ol["facets"], &d.output_facets);
        }
        if let Some(run_id) = produced_by {
            changed |= ol["producedBy"] != run_id;
            ol["producedBy"] = json!(run_id);
        }
        if !changed {
            return Ok(());
        }
        let facets = ol["facets"].as_object();
        let fields: Vec<Value> = facets
            .map(metamesh_openlineage::schema_fields)
            .unwrap_or_default()
            .into_iter()
            .map(|f| json!({"name": f.name, "type": f.r#type, "description": f.description}))
            .collect();
        let description = facets.and_then(documentation);
        ol["fields"] = Value::Array(fields);
        let mut spec = EntitySpec::new(urn.clone());
        spec.description = description;
        spec.properties = props;
        spec.tags.insert(names::TAG.to_owned());
        if produced_by.is_some() {
            if let Some(Value::Object(facet)) = spec.properties["openlineage"]["facets"].get("columnLineage") {
                self.columns.push((urn.clone(), facet.clone()));
            }
        }
        self.known.insert(urn, Some(spec.properties.clone()));
        self.datasets.push(spec);
        Ok(())
    }

    /// The properties of dataset `urn` as this command left them so far.
    fn dataset_properties(&mut self, urn: &EntityUrn) -> Res<Option<&Value>> {
        if !self.known.contains_key(urn) {
            let props = current_properties(self.conn, urn)?;
            self.known.insert(urn.clone(), props);
        }
        Ok(self.known[urn].as_ref())
    }

    /// Writes the pending dataset versions, then their `column` edges. A dataset written
    /// several times gets as many versions, in order: round `k` writes the `k`-th version of
    /// each, set-based (a put takes distinct URNs).
    fn write_datasets(&mut self) -> Res<()> {
        let specs = std::mem::take(&mut self.datasets);
        let mut rounds: Vec<Vec<&EntitySpec>> = Vec::new();
        let mut seen: HashMap<&EntityUrn, usize> = HashMap::new();
        for spec in &specs {
            let k = seen.entry(&spec.urn).or_default();
            if rounds.len() == *k {
                rounds.push(Vec::new());
            }
            rounds[*k].push(spec);
            *k += 1;
        }
        for round in rounds {
            entities::put(self.ctx, self.conn, &round, None)?;
        }
        for (urn, facet) in std::mem::take(&mut self.columns) {
            let facets = Map::from_iter([("columnLineage".to_owned(), Value::Object(facet))]);
            self.column_edges(&urn, &facets)?;
        }
        Ok(())
    }

    /// `column` edges from a `columnLineage` facet of output `urn`.
    fn column_edges(&mut self, urn: &EntityUrn, facets: &Map<String, Value>) -> Res<()> {
        for column in metamesh_openlineage::column_lineage(facets) {
            for input in &column.inputs {
                let from = self.dataset_urn(&input.dataset, None)?;
                if from.tenant() == self.tenant && current_properties(self.conn, &from)?.is_none() {
                    continue; // an input never seen: nothing to point at
                }
                let mut spec = EdgeSpec::new(Urn::unversioned(from), EdgeKind::Column, Urn::unversioned(urn.clone()));
                spec.from_column = Some(input.field.clone());
                spec.to_column = Some(column.field.clone());
                spec.transformation = transformation(facets, &column.field, input);
                skip_refused(lineage::add_edge(self.ctx, self.conn, &spec))?;
            }
        }
        Ok(())
    }

    /// The URN of a dataset: in its owner's tenant, a `model` if its facets (or an existing
    /// model entity of ours) say so.
    fn dataset_urn(&mut self, key: &DatasetKey, d: Option<&DatasetRef>) -> Res<EntityUrn> {
        let owner = self.foreign.get(&(key.namespace.clone(), key.name.clone())).unwrap_or(self.tenant).clone();
        let owner = &owner;
        let said = d.and_then(|d| metamesh_openlineage::dataset_type(&d.facets));
        let kind = match said.as_deref() {
            Some("MODEL") => Kind::Model,
            Some(_) => Kind::Dataset,
            None => {
                let model = names::dataset_urn(owner, Kind::Model, &key.namespace, &key.name)
                    .map_err(|e| invalid_urn("dataset", e))?;
                if owner == self.tenant && self.dataset_properties(&model)?.is_some() {
                    Kind::Model
                } else {
                    Kind::Dataset
                }
            }
        };
        names::dataset_urn(owner, kind, &key.namespace, &key.name).map_err(|e| invalid_urn("dataset", e))
    }

    fn job(&mut self, key: &JobKey) -> Res<&mut JobState> {
        if !self.jobs.contains_key(key) {
            let urn = names::job_urn(self.tenant, &key.namespace, &key.name).map_err(|e| invalid_urn("job", e))?;
            let before = current_properties(self.conn, &urn)?;
            let props = before.clone().unwrap_or_else(|| {
                json!({"openlineage": {"namespace": key.namespace, "name": key.name, "facets": {},
                                       "inputs": [], "outputs": [], "latestRun": null}})
            });
            let io_before =
                before.as_ref().map(|p| (urns(&p["openlineage"]["inputs"]), urns(&p["openlineage"]["outputs"])));
            self.jobs.insert(key.clone(), JobState { urn, before, props, io_before });
        }
        Ok(self.jobs.get_mut(key).expect("inserted above"))
    }

    fn run(&mut self, run_id: &str, urn: EntityUrn, job: &JobKey) -> Res<&mut RunStateRow> {
        if !self.runs.contains_key(run_id) {
            let before = current_properties(self.conn, &urn)?;
            let props = before.clone().unwrap_or_else(|| {
                json!({"openlineage": {"runId": run_id, "job": {"namespace": job.namespace, "name": job.name},
                                       "state": "NEW", "facets": {}, "parent": null, "inputs": [], "outputs": [],
                                       "startedAt": null, "endedAt": null, "transitionedAt": null}})
            });
            self.runs.insert(run_id.to_owned(), RunStateRow { urn, before, props });
        }
        Ok(self.runs.get_mut(run_id).expect("inserted above"))
    }

    /// The datasets of `list` as `{namespace, name, urn}` keys, each once: the URN keeps the
    /// owner and kind decided when the dataset was first named.
    fn keys(&mut self, list: &[DatasetRef]) -> Res<Vec<Value>> {
        let mut out: Vec<Value> = Vec::new();
        for d in list {
            let urn = self.dataset_urn(&d.key, Some(d))?.to_string();
            if !out.iter().any(|k| k["urn"] == urn.as_str()) {
                out.push(json!({"namespace": d.key.namespace, "name": d.key.name, "urn": urn}));
            }
        }
        Ok(out)
    }

    /// Writes every job and run touched, once each, then the jobs' edges.
    fn flush(mut self) -> Res<()> {
        self.write_datasets()?;
        let mut specs = Vec::new();
        for row in self.runs.values() {
            if row.before.as_ref() != Some(&row.props) {
                let mut spec = EntitySpec::new(row.urn.clone());
                spec.status = row.props["openlineage"]["state"].as_str().map(str::to_owned);
                spec.properties = row.props.clone();
                spec.tags.insert(names::TAG.to_owned());
                specs.push(spec);
            }
        }
        let jobs = std::mem::take(&mut self.jobs);
        for job in jobs.values() {
            if job.before.as_ref() != Some(&job.props) {
                let mut spec = EntitySpec::new(job.urn.clone());
                let facets = job.props["openlineage"]["facets"].as_object().cloned().unwrap_or_default();
                spec.description = documentation(&facets);
                spec.status = job.props["openlineage"]["latestRun"]["state"].as_str().map(str::to_owned);
                spec.properties = job.props.clone();
                spec.tags.insert(names::TAG.to_owned());
                specs.push(spec);
            }
        }
        let refs: Vec<&EntitySpec> = specs.iter().collect();
        if !refs.is_empty() {
            entities::put(self.ctx, self.conn, &refs, None)?;
        }
        for job in jobs.values() {
            let (inputs, outputs) =
                (urns(&job.props["openlineage"]["inputs"]), urns(&job.props["openlineage"]["outputs"]));
            let (old_in, old_out) = job.io_before.clone().unwrap_or_default();
            // Inputs are `dataset -consumed-> job`, outputs `job -produced-> dataset`.
            let edge = |urn: &EntityUrn, input: bool| {
                let (dataset, job) = (Urn::unversioned(urn.clone()), Urn::unversioned(job.urn.clone()));
                match input {
                    true => EdgeSpec::new(dataset, EdgeKind::Consumed, job),
                    false => EdgeSpec::new(job, EdgeKind::Produced, dataset),
                }
            };
            for (now, before, input) in [(&inputs, &old_in, true), (&outputs, &old_out, false)] {
                for urn in before.iter().filter(|u| !now.contains(u)) {
                    skip_refused(lineage::remove_edge(self.ctx, self.conn, &edge(urn, input)))?;
                }
                for urn in now.iter().filter(|u| !before.contains(u)) {
                    skip_refused(lineage::add_edge(self.ctx, self.conn, &edge(urn, input)))?;
                }
            }
        }
        record_change(self.ctx, self.conn, self.tenant.as_str(), &format!("mm://{}", self.tenant), "openlineage")?;
        Ok(())
    }
}

/// The `transformationDescription` a `columnLineage` facet gives for output field `field` from
/// `input` (on the input field, the newer `transformations[0].description`, or the field).
fn transformation(
    facets: &Map<String, Value>,
    field: &str,
    input: &metamesh_openlineage::InputField,
) -> Option<String> {
    let out = &facets.get("columnLineage")?["fields"][field];
    let from = out["inputFields"].as_array().into_iter().flatten().find(|i| {
        i["namespace"] == input.dataset.namespace.as_str()
            && i["name"] == input.dataset.name.as_str()
            && i["field"] == input.field.as_str()
    });
    let text = from
        .and_then(|i| {
            i["transformationDescription"].as_str().or_else(|| i["transformations"][0]["description"].as_str())
        })
        .or_else(|| out["transformationDescription"].as_str())?;
    Some(text.chars().take(1024).collect())
}

/// The URNs of a list of dataset keys (see `Writer::keys`).
fn urns(list: &Value) -> Vec<EntityUrn> {
    list.as_array().into_iter().flatten().filter_map(|k| k["urn"].as_str()?.parse().ok()).collect()
}

/// The properties of the live version of `urn`, if it exists (and is not deleted).
fn current_properties(conn: &Connection, urn: &EntityUrn) -> Res<Option<Value>> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT v.properties FROM nodes n JOIN versions v ON v.entity_id = n.id AND v.until_rev IS NULL
             WHERE n.urn = ? AND v.deleted = 0",
        )?
        .query_row([urn.to_string()], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| Fail::Store(StoreError::Corrupt(format!("properties of {urn}: {e}"))))
    })
    .transpose()
}

/// A graph change the catalog refuses (a `column` edge closing a cycle, an end deleted) is left
/// out rather than refusing the event: the event itself is kept.
fn skip_refused<T>(result: Res<T>) -> Res<()> {
    match result {
        Ok(_) => Ok(()),
        Err(Fail::Command(e)) => {
            tracing::debug!(error = %e, "OpenLineage edge not written");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn invalid_urn(field: &str, e: metamesh_core::UrnError) -> Fail {
    Fail::Command(CommandError::invalid(field, format!("names too long for an entity: {e}")))
}

/// Facets of the event replace those of the same name; others stay.
/// Whether anything changed.
fn merge_facets(into: &mut Value, facets: &Map<String, Value>) -> bool {
    if !into.is_object() {
        *into = json!({});
    }
    let map = into.as_object_mut().expect("made an object above");
    let mut changed = false;
    for (name, facet) in facets {
        if map.get(name) != Some(facet) {
            map.insert(name.clone(), facet.clone());
            changed = true;
        }
    }
    changed
}

/// Adds the datasets of `keys` not yet in `into` (a JSON array of keys).
fn add_keys(into: &mut Value, keys: Vec<Value>) {
    if !into.is_array() {
        *into = json!([]);
    }
    let arr = into.as_array_mut().expect("made an array above");
    for k in keys {
        if !arr.iter().any(|a| a["urn"] == k["urn"]) {
            arr.push(k);
        }
    }
}

/// The run state an event type leads to (Marquez's names); none for OTHER.
fn run_state(t: RunState) -> Option<&'static str> {
    match t {
        RunState::Start | RunState::Running => Some("RUNNING"),
        RunState::Complete => Some("COMPLETED"),
        RunState::Fail => Some("FAILED"),
        RunState::Abort => Some("ABORTED"),
        RunState::Other => None,
    }
}

fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::Run => "run",
        EventKind::Dataset => "dataset",
        EventKind::Job => "job",
    }
}

/// The `documentation` facet's description, capped.
fn documentation(facets: &Map<String, Value>) -> Option<String> {
    let text = facets.get("documentation")?.get("description")?.as_str()?;
    let mut end = text.len().min(MAX_DESCRIPTION);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

/// Which stored OpenLineage events to read ([`crate::Store::openlineage_events`]).
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub tenant: String,
    /// Event time bounds (ms), inclusive.
    pub after_ms: Option<i64>,
    pub before_ms: Option<i64>,
    pub run_id: Option<String>,
    pub limit: u32,
    pub descending: bool,
}

impl crate::Store {
    /// Stored OpenLineage events of a tenant by event time (then arrival), and how many match
    /// in all.
    pub async fn openlineage_events(&self, q: &EventQuery) -> Result<(Vec<String>, u64), StoreError> {
        let filter = "tenant = ?1 AND (?2 IS NULL OR event_time_ms >= ?2) AND (?3 IS NULL OR event_time_ms <= ?3)
                      AND (?4 IS NULL OR run_id = ?4)";
        let order = if q.descending { "DESC" } else { "ASC" };
        let sql =
            format!("SELECT body FROM ol_events WHERE {filter} ORDER BY event_time_ms {order}, seq {order} LIMIT ?5");
        let bodies: Vec<String> = sqlx::query_scalar(&sql)
            .bind(&q.tenant)
            .bind(q.after_ms)
            .bind(q.before_ms)
            .bind(q.run_id.as_deref())
            .bind(q.limit as i64)
            .fetch_all(&self.readers)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM ol_events WHERE {filter}"))
            .bind(&q.tenant)
            .bind(q.after_ms)
            .bind(q.before_ms)
            .bind(q.run_id.as_deref())
            .fetch_one(&self.readers)
            .await?;
        Ok((bodies, total as u64))
    }
}
