#!/usr/bin/env python3
"""A deterministic MLMD scenario, run with the real `ml-metadata` Python client against any
server of `ml_metadata.MetadataStoreService`, printing every step's outcome as JSON.

Run it against Google's engine (tests/mlmd/oracle_server.py) and against metamesh, then compare
the two outputs with tests/mlmd/compare.py: any difference is a compatibility bug.

    suite.py --host H --port P [--ca CA.pem --cert CERT.pem --key KEY.pem]
             [--only GROUP,...] [--prefix STR]

Output (stdout): `{"steps": [{"step": NAME, "result": R}, ...], "methods_called": [...]}`.
A step's result is its normalized return value, or `{"error": <exception class>, "code":
<gRPC status code name>}`. Normalization drops the time fields (`create_time_since_epoch`,
`last_update_time_since_epoch`, `milliseconds_since_epoch`) and replaces every id with a stable
symbol: `artifact:<name>`, `execution@2` (unnamed nodes, by creation order),
`artifact_type:<name>@<version>`, `token#1` (paging tokens, by first appearance), ... The same
real id always gets the same symbol. Results of calls whose order MLMD does not define are
sorted by their normalized JSON; results of list calls with list options (ordered by id unless
`order_by` says otherwise, paged) keep the server's order.

`--prefix` is put in front of every type name, node name, external id and uri (and of the names
in filter queries), and removed again from the output: several runs can share one store, and
another run's nodes showing up in a listing are a visible difference. `--only` runs some groups
(and the groups they depend on), for debugging; the coverage guard (every public method of
`MetadataStore` called at least once, else exit 2) only applies to full runs.

Exit status: 0 when the scenario ran (whatever the server answered), 1 on a crash of this
script, 2 when the coverage guard fails.
"""

import argparse
import base64
import inspect
import itertools
import json
import sys
import time
import traceback

import grpc
from google.protobuf import any_pb2, descriptor, json_format, struct_pb2
from ml_metadata import errors
from ml_metadata.metadata_store import metadata_store
from ml_metadata.metadata_store.metadata_store import ListOptions, OrderByField
from ml_metadata.proto import metadata_store_pb2 as pb
from ml_metadata.proto import metadata_store_service_pb2 as spb

FD = descriptor.FieldDescriptor

# Time fields: never compared.
DROPPED_FIELDS = {"create_time_since_epoch", "last_update_time_since_epoch", "milliseconds_since_epoch"}

# Which fields of which messages hold ids, and of what id space.
ID_FIELDS = {
    "ml_metadata.Artifact": {"id": "artifact", "type_id": "artifact_type"},
    "ml_metadata.Execution": {"id": "execution", "type_id": "execution_type"},
    "ml_metadata.Context": {"id": "context", "type_id": "context_type"},
    "ml_metadata.ArtifactType": {"id": "artifact_type"},
    "ml_metadata.ExecutionType": {"id": "execution_type"},
    "ml_metadata.ContextType": {"id": "context_type"},
    "ml_metadata.Event": {"artifact_id": "artifact", "execution_id": "execution"},
    "ml_metadata.Attribution": {"artifact_id": "artifact", "context_id": "context"},
    "ml_metadata.Association": {"execution_id": "execution", "context_id": "context"},
    "ml_metadata.ParentContext": {"child_id": "context", "parent_id": "context"},
}

# An id no store of this scenario ever reaches.
ABSENT_ID = 987654321

GRPC_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}

INT, DOUBLE, STRING, STRUCT, PROTO, BOOLEAN = (
    pb.INT,
    pb.DOUBLE,
    pb.STRING,
    pb.STRUCT,
    pb.PROTO,
    pb.BOOLEAN,
)


def public_methods():
    """The public methods of the client (what the coverage guard checks)."""
    return sorted(
        name
        for name, member in inspect.getmembers(metadata_store.MetadataStore, inspect.isfunction)
        if not name.startswith("_")
    )


class Recorded:
    """The client, noting which of its public methods the scenario calls (calls the client makes
    internally, e.g. get_lineage_subgraph's own reads, are not counted)."""

    def __init__(self, store, called):
        self._store = store
        self._called = called

    def __getattr__(self, name):
        value = getattr(self._store, name)
        if not name.startswith("_"):
            self._called.add(name)
        return value


def set_value(value, v):
    """Fills an `ml_metadata.Value` from a Python value."""
    if isinstance(v, bool):
        value.bool_value = v
    elif isinstance(v, int):
        value.int_value = v
    elif isinstance(v, float):
        value.double_value = v
    elif isinstance(v, str):
        value.string_value = v
    elif isinstance(v, dict):
        value.struct_value.update(v)
    elif isinstance(v, any_pb2.Any):
        value.proto_value.CopyFrom(v)
    else:
        raise TypeError(f"no Value for {v!r}")


class Suite:
    def __init__(self, store, prefix):
        self.called = set()
        self.store = store
        self.s = Recorded(store, self.called)
        self.prefix = prefix
        self.steps = []
        self.step_names = set()
        # id space -> real id -> symbol, and id space -> symbol -> real id.
        self.symbols = {}
        self.reals = {}
        # id space -> number of unnamed ids registered (for `kind@n` symbols).
        self.unnamed = {}
        # Paging tokens seen, by first appearance.
        self.tokens = {}

    # ----------------------------------------------------------------- names and ids

    def p(self, name):
        """A name as stored: with the run's prefix."""
        return self.prefix + name

    def strip(self, s):
        return s[len(self.prefix) :] if self.prefix and s.startswith(self.prefix) else s

    def register(self, space, real, name=None):
        """The symbol of `real` in `space`, registering it (by name, or by creation order) if
        new. A name already taken by another id gets `~2`, `~3`... appended."""
        known = self.symbols.setdefault(space, {})
        if real in known:
            return known[real]
        taken = self.reals.setdefault(space, {})
        if name:
            base = f"{space}:{name}"
        else:
            self.unnamed[space] = self.unnamed.get(space, 0) + 1
            base = f"{space}@{self.unnamed[space]}"
        symbol, n = base, 1
        while symbol in taken:
            n += 1
            symbol = f"{base}~{n}"
        known[real] = symbol
        taken[symbol] = real
        return symbol

    def register_all(self, space, ids, nodes):
        """Registers the ids a put answered, index-aligned with the nodes it was given (by the
        nodes' names); a missing id shows as None, an extra one by its symbol."""
        out = []
        for real, node in itertools.zip_longest(ids, nodes or []):
            if real is None:
                out.append(None)
            elif node is None:
                out.append(self.symbol(space, real))
            else:
                version = getattr(node, "version", "")  # types only
                out.append(self.register(space, real, self.strip(node.name) + (f"@{version}" if version else "")))
        return out

    def symbol(self, space, real, message=None):
        """The symbol of an id found in an answer. An id this run never registered (which only
        another run's or tenant's node can have) gets one from the message's name if it has
        one, else `space?n` by first appearance."""
        known = self.symbols.get(space, {})
        if real in known:
            return known[real]
        if message is not None and ID_FIELDS.get(message.DESCRIPTOR.full_name, {}).get("id") == space:
            name = getattr(message, "name", "")
            if name:
                version = getattr(message, "version", "")
                return self.register(space, real, "?" + self.strip(name) + (f"@{version}" if version else ""))
        self.unnamed[space + "?"] = self.unnamed.get(space + "?", 0) + 1
        symbol = f"{space}?{self.unnamed[space + '?']}"
        self.symbols.setdefault(space, {})[real] = symbol
        self.reals.setdefault(space, {})[symbol] = real
        return symbol

    def id(self, space, name):
        """The real id of a node or type registered under `name` (ABSENT_ID + 1 when an earlier
        step failed to create it, so later steps still run and show the difference)."""
        return self.reals.get(space, {}).get(f"{space}:{name}", ABSENT_ID + 1)

    def token(self, t):
        if t not in self.tokens:
            self.tokens[t] = f"token#{len(self.tokens) + 1}"
        return self.tokens[t]

    # ----------------------------------------------------------------- normalization

    def norm(self, x):
        """A JSON value for a client answer, order kept."""
        if x is None or isinstance(x, (bool, int, float)):
            return x
        if isinstance(x, str):
            return self.strip(x)
        if isinstance(x, (list, tuple)) or hasattr(x, "__iter__") and not hasattr(x, "DESCRIPTOR"):
            return [self.norm(v) for v in x]
        return self.message(x)

    def message(self, m):
        out = {}
        ids = ID_FIELDS.get(m.DESCRIPTOR.full_name, {})
        for field, value in m.ListFields():
            if field.name in DROPPED_FIELDS:
                continue
            if field.name in ids:
                out[field.name] = self.symbol(ids[field.name], value, m)
            elif field.name == "next_page_token":
                out[field.name] = self.token(value) if value else value
            else:
                out[field.name] = self.field(field, value)
        return out

    def field(self, field, value):
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            inner = field.message_type.fields_by_name["value"]
            return {key: self.single(inner, value[key]) for key in sorted(value)}
        if field.label == FD.LABEL_REPEATED:
            return [self.single(field, v) for v in value]
        return self.single(field, value)

    def single(self, field, value):
        if field.type == FD.TYPE_MESSAGE:
            full = field.message_type.full_name
            if full == "google.protobuf.Struct":
                return {"struct": json_format.MessageToDict(value)}
            if full == "google.protobuf.Any":
                return {"type_url": value.type_url, "value": base64.b64encode(value.value).decode()}
            return self.message(value)
        if field.type == FD.TYPE_ENUM:
            v = field.enum_type.values_by_number.get(value)
            return v.name if v is not None else value
        if field.type == FD.TYPE_BYTES:
            return base64.b64encode(value).decode()
        if field.type == FD.TYPE_STRING:
            return self.strip(value)
        return value

    def unordered(self, x):
        """Normalized, sorted by canonical JSON: for answers in no defined order."""
        return sorted((self.norm(v) for v in x), key=lambda v: json.dumps(v, sort_keys=True))

    def names(self, x):
        """Just the (unprefixed) names, order kept: for long ordered listings."""
        return {"count": len(x), "names": [self.strip(n.name) if n.name else self.norm(n) for n in x]}

    def graph(self, g):
        """A LineageGraph with each of its lists sorted."""
        out = {}
        for field, value in g.ListFields():
            out[field.name] = self.unordered(value)
        return out

    # ----------------------------------------------------------------- steps

    def step(self, name, call, shape=None):
        """Runs one step, records its normalized outcome and returns the raw answer (None on an
        error)."""
        if name in self.step_names:
            raise RuntimeError(f"step {name!r} twice")
        self.step_names.add(name)
        try:
            value = call()
        except errors.StatusError as e:
            cause = e.__cause__
            code = cause.code().name if isinstance(cause, grpc.RpcError) else GRPC_CODE_NAMES.get(e.error_code)
            self.steps.append({"step": name, "result": {"error": type(e).__name__, "code": code}})
            return None
        except Exception as e:  # a bad answer the client chokes on: a result too
            return self.crashed(name, e)
        try:
            result = (shape or self.norm)(value)
        except Exception as e:  # an answer of an unexpected shape
            return self.crashed(name, e)
        self.steps.append({"step": name, "result": result})
        return value

    def crashed(self, name, e):
        print(f"step {name}: {type(e).__name__}: {e}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        self.steps.append({"step": name, "result": {"crash": type(e).__name__}})
        return None

    def put_type(self, name, method, t, **kw):
        space = {"put_artifact_type": "artifact_type", "put_execution_type": "execution_type"}.get(
            method, "context_type"
        )
        label = self.strip(t.name) + (f"@{t.version}" if t.version else "")
        return self.step(
            name,
            lambda: getattr(self.s, method)(t, **kw),
            lambda type_id: self.register(space, type_id, label),
        )

    def put_nodes(self, name, method, space, nodes, **kw):
        """put_artifacts / put_executions / put_contexts, registering the new ids by name."""

        def shape(ids):
            return self.register_all(space, ids, nodes)

        return self.step(name, lambda: getattr(self.s, method)(nodes, **kw), shape)

    # ----------------------------------------------------------------- builders

    def atype(self, cls, name, props=None, version=None, base_type=None, external_id=None, description=None):
        t = cls(name=self.p(name))
        for k, v in (props or {}).items():
            t.properties[k] = v
        if version is not None:
            t.version = version
        if base_type is not None:
            t.base_type = base_type
        if external_id is not None:
            t.external_id = self.p(external_id)
        if description is not None:
            t.description = description
        return t

    def node(self, cls, space, type_name, name=None, props=None, custom=None, uri=None, state=None,
             external_id=None, id=None, type_version=None):
        n = cls()
        if type_name is not None:
            n.type_id = self.id(space + "_type", type_name + (f"@{type_version}" if type_version else ""))
        if name is not None:
            n.name = self.p(name)
        if id is not None:
            n.id = id
        for k, v in (props or {}).items():
            set_value(n.properties[k], v)
        for k, v in (custom or {}).items():
            set_value(n.custom_properties[k], v)
        if uri is not None:
            n.uri = self.p(uri)
        if state is not None:
            if space == "execution":
                n.last_known_state = state
            else:
                n.state = state
        if external_id is not None:
            n.external_id = self.p(external_id)
        return n

    def artifact(self, type_name, name=None, **kw):
        return self.node(pb.Artifact, "artifact", type_name, name, **kw)

    def execution(self, type_name, name=None, **kw):
        return self.node(pb.Execution, "execution", type_name, name, **kw)

    def context(self, type_name, name=None, **kw):
        return self.node(pb.Context, "context", type_name, name, **kw)

    def event(self, kind, artifact=None, execution=None, path=()):
        """An event; `path` steps are ints (index) or strs (key)."""
        e = pb.Event(type=kind)
        if artifact is not None:
            e.artifact_id = self.id("artifact", artifact)
        if execution is not None:
            e.execution_id = self.id("execution", execution)
        for s in path:
            if isinstance(s, int):
                e.path.steps.add(index=s)
            else:
                e.path.steps.add(key=s)
        return e

    def aid(self, name):
        return self.id("artifact", name)

    def eid(self, name):
        return self.id("execution", name)

    def cid(self, name):
        return self.id("context", name)

    def q(self, text):
        """A filter query; `{P}` stands for the prefix (in names, types and uris)."""
        return text.replace("{P}", self.prefix)


# =================================================================================== groups
# Each group is a function of the Suite; GROUPS lists them in order, with what they build on.


def g_types(t):
    """Types: create, idempotent re-put, evolution (can_add_fields / can_omit_fields), versions,
    base types, external ids, and every read of types."""
    s = t.s
    AT, ET, CT = pb.ArtifactType, pb.ExecutionType, pb.ContextType
    dataset = {"day": INT, "split": STRING, "score": DOUBLE}
    t.put_type("types.artifact.create", "put_artifact_type",
               t.atype(AT, "DataSet", dataset, base_type=AT.DATASET, external_id="ext-type-dataset",
                       description="a dataset"))
    t.put_type("types.artifact.same_again", "put_artifact_type",
               t.atype(AT, "DataSet", dataset, base_type=AT.DATASET, external_id="ext-type-dataset",
                       description="a dataset"))
    # Evolution: a new property needs can_add_fields, a missing one can_omit_fields.
    added = dict(dataset, owner=STRING)
    t.put_type("types.artifact.add_field_refused", "put_artifact_type", t.atype(AT, "DataSet", added))
    t.put_type("types.artifact.add_field_allowed", "put_artifact_type", t.atype(AT, "DataSet", added),
               can_add_fields=True)
    omitted = {"day": INT, "split": STRING, "owner": STRING}
    t.put_type("types.artifact.omit_field_refused", "put_artifact_type", t.atype(AT, "DataSet", omitted))
    t.put_type("types.artifact.omit_field_allowed", "put_artifact_type", t.atype(AT, "DataSet", omitted),
               can_omit_fields=True)
    t.put_type("types.artifact.change_property_type", "put_artifact_type",
               t.atype(AT, "DataSet", dict(added, day=STRING)), can_add_fields=True, can_omit_fields=True)
    t.put_type("types.artifact.change_base_type", "put_artifact_type",
               t.atype(AT, "DataSet", added, base_type=AT.MODEL))
    t.put_type("types.artifact.change_description", "put_artifact_type",
               t.atype(AT, "DataSet", added, description="another description"))
    t.put_type("types.artifact.empty_version_is_no_version", "put_artifact_type",
               t.atype(AT, "DataSet", added, version=""))
    t.put_type("types.artifact.no_name", "put_artifact_type", pb.ArtifactType(properties={"x": INT}))
    t.put_type("types.artifact.unknown_property_type", "put_artifact_type",
               t.atype(AT, "Broken", {"x": pb.UNKNOWN}))
    t.put_type("types.artifact.versioned", "put_artifact_type",
               t.atype(AT, "DataSet", {"day": INT, "rows": INT}, version="v2"))
    t.put_type("types.artifact.model", "put_artifact_type",
               t.atype(AT, "Model", {"framework": STRING, "accuracy": DOUBLE, "tuned": BOOLEAN,
                                     "config": STRUCT, "blob": PROTO}, base_type=AT.MODEL,
                       external_id="ext-type-model"))
    t.put_type("types.artifact.duplicate_external_id", "put_artifact_type",
               t.atype(AT, "Other", {"x": INT}, external_id="ext-type-dataset"))
    t.put_type("types.artifact.bulk", "put_artifact_type", t.atype(AT, "Bulk", {"index": INT}))
    t.put_type("types.artifact.mark", "put_artifact_type", t.atype(AT, "Mark", {}))

    t.put_type("types.execution.create", "put_execution_type",
               t.atype(ET, "Trainer", {"epochs": INT, "lr": DOUBLE, "algo": STRING}, base_type=ET.TRAIN,
                       external_id="ext-type-trainer"))
    t.put_type("types.execution.same_again", "put_execution_type",
               t.atype(ET, "Trainer", {"epochs": INT, "lr": DOUBLE, "algo": STRING}, base_type=ET.TRAIN,
                       external_id="ext-type-trainer"))
    t.put_type("types.execution.omit_field_refused", "put_execution_type",
               t.atype(ET, "Trainer", {"epochs": INT}))
    t.put_type("types.execution.change_property_type", "put_execution_type",
               t.atype(ET, "Trainer", {"epochs": STRING, "lr": DOUBLE, "algo": STRING}))
    transform_v1 = t.atype(ET, "Transform", {"op": STRING}, version="v1", base_type=ET.TRANSFORM)
    transform_v1.input_type.any.SetInParent()
    transform_v1.output_type.simple.name = "Anything"
    t.put_type("types.execution.versioned_v1", "put_execution_type", transform_v1)
    t.put_type("types.execution.versioned_v2", "put_execution_type",
               t.atype(ET, "Transform", {"op": STRING, "level": INT}, version="v2"))
    t.put_type("types.execution.bulk", "put_execution_type", t.atype(ET, "BulkRun", {"index": INT}))

    t.put_type("types.context.create", "put_context_type",
               t.atype(CT, "Pipeline", {"owner": STRING}, external_id="ext-type-pipeline"))
    t.put_type("types.context.run", "put_context_type", t.atype(CT, "PipelineRun", {"run_no": INT}))
    t.put_type("types.context.add_field_refused", "put_context_type",
               t.atype(CT, "PipelineRun", {"run_no": INT, "extra": STRING}))
    t.put_type("types.context.add_field_allowed", "put_context_type",
               t.atype(CT, "PipelineRun", {"run_no": INT, "extra": STRING}), can_add_fields=True)
    t.put_type("types.context.versioned", "put_context_type",
               t.atype(CT, "PipelineRun", {"run_no": INT}, version="2024"))
    t.put_type("types.context.bulk", "put_context_type", t.atype(CT, "BulkCtx", {"index": INT}))

    # Reads.
    t.step("types.get_artifact_type.by_name", lambda: s.get_artifact_type(t.p("DataSet")))
    t.step("types.get_artifact_type.by_version", lambda: s.get_artifact_type(t.p("DataSet"), "v2"))
    t.step("types.get_artifact_type.missing", lambda: s.get_artifact_type(t.p("NoSuchType")))
    t.step("types.get_artifact_type.missing_version", lambda: s.get_artifact_type(t.p("DataSet"), "v9"))
    t.step("types.get_artifact_types", lambda: s.get_artifact_types(), t.unordered)
    t.step("types.get_artifact_types_by_id",
           lambda: s.get_artifact_types_by_id([t.id("artifact_type", "DataSet"), t.id("artifact_type", "Model"),
                                               t.id("artifact_type", "DataSet@v2"), ABSENT_ID]),
           t.unordered)
    t.step("types.get_artifact_types_by_id.execution_type_id",
           lambda: s.get_artifact_types_by_id([t.id("execution_type", "Trainer")]), t.unordered)
    t.step("types.get_artifact_types_by_external_ids",
           lambda: s.get_artifact_types_by_external_ids([t.p("ext-type-dataset"), t.p("ext-type-model"),
                                                         t.p("ext-none")]), t.unordered)
    t.step("types.get_execution_type.by_name", lambda: s.get_execution_type(t.p("Trainer")))
    t.step("types.get_execution_type.by_version", lambda: s.get_execution_type(t.p("Transform"), "v1"))
    t.step("types.get_execution_type.unversioned_missing", lambda: s.get_execution_type(t.p("Transform")))
    t.step("types.get_execution_types", lambda: s.get_execution_types(), t.unordered)
    t.step("types.get_execution_types_by_id",
           lambda: s.get_execution_types_by_id([t.id("execution_type", "Trainer"),
                                                t.id("execution_type", "Transform@v2"), ABSENT_ID]),
           t.unordered)
    t.step("types.get_execution_types_by_external_ids",
           lambda: s.get_execution_types_by_external_ids([t.p("ext-type-trainer")]), t.unordered)
    t.step("types.get_context_type.by_name", lambda: s.get_context_type(t.p("PipelineRun")))
    t.step("types.get_context_type.by_version", lambda: s.get_context_type(t.p("PipelineRun"), "2024"))
    t.step("types.get_context_type.missing", lambda: s.get_context_type(t.p("Nope")))
    t.step("types.get_context_types", lambda: s.get_context_types(), t.unordered)
    t.step("types.get_context_types_by_id",
           lambda: s.get_context_types_by_id([t.id("context_type", "Pipeline"), t.id("context_type", "PipelineRun"),
                                              ABSENT_ID]), t.unordered)
    t.step("types.get_context_types_by_external_ids",
           lambda: s.get_context_types_by_external_ids([t.p("ext-type-pipeline"), t.p("ext-type-dataset")]),
           t.unordered)


def g_nodes(t):
    """Artifacts, executions and contexts: puts (with their refusals), full and masked updates,
    and every read by id, type, type and name, uri and external id."""
    s = t.s
    A = pb.Artifact
    any_value = any_pb2.Any()
    any_value.Pack(pb.Value(int_value=5))
    t.put_nodes("nodes.put_artifacts.datasets", "put_artifacts", "artifact", [
        t.artifact("DataSet", "ds-a", uri="mem://data/a", props={"day": 1, "split": "train", "score": 0.5},
                   custom={"note": "first", "odd key": 7}, state=A.LIVE, external_id="ext-art-a"),
        t.artifact("DataSet", "ds-b", uri="mem://data/b", props={"day": 2, "split": "eval"},
                   custom={"note": "second"}, state=A.PENDING),
        t.artifact("DataSet", "ds-c", uri="mem://data/a", props={"day": 3, "split": "train"},
                   custom={"note": "third"}, state=A.MARKED_FOR_DELETION),
        t.artifact("DataSet", None, uri="mem://data/unnamed"),
    ])
    t.put_nodes("nodes.put_artifacts.model", "put_artifacts", "artifact", [
        t.artifact("Model", "model-1", uri="mem://models/1",
                   props={"framework": "xgb", "accuracy": 0.91, "tuned": True,
                          "config": {"layers": 3, "name": "m", "tags": ["a", "b"]}, "blob": any_value},
                   custom={"approved": False, "meta": {"k": "v"}}, state=A.LIVE),
        t.artifact("Model", "ds-a", uri="mem://models/same-name-other-type"),
    ])
    # Refusals.
    t.put_nodes("nodes.put_artifacts.no_type", "put_artifacts", "artifact", [t.artifact(None, "no-type")])
    no_such_type = t.artifact(None, "bad-type")
    no_such_type.type_id = ABSENT_ID
    t.put_nodes("nodes.put_artifacts.unknown_type", "put_artifacts", "artifact", [no_such_type])
    t.put_nodes("nodes.put_artifacts.undeclared_property", "put_artifacts", "artifact",
                [t.artifact("DataSet", "bad-prop", props={"nope": 1})])
    t.put_nodes("nodes.put_artifacts.wrong_value_type", "put_artifacts", "artifact",
                [t.artifact("DataSet", "bad-value", props={"day": "monday"})])
    t.put_nodes("nodes.put_artifacts.duplicate_name", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-a", uri="mem://dup")])
    t.put_nodes("nodes.put_artifacts.duplicate_name_in_one_request", "put_artifacts", "artifact",
                [t.artifact("DataSet", "twin"), t.artifact("DataSet", "twin")])
    t.step("nodes.twin_not_written", lambda: s.get_artifact_by_type_and_name(t.p("DataSet"), t.p("twin")))
    t.put_nodes("nodes.put_artifacts.duplicate_external_id", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-x", external_id="ext-art-a")])
    # Updates: a whole update replaces properties; a masked one touches only the named fields.
    t.put_nodes("nodes.update.whole", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-b", id=t.aid("ds-b"), uri="mem://data/b2", props={"day": 20},
                            state=A.LIVE)])
    t.step("nodes.update.whole.read", lambda: s.get_artifacts_by_id([t.aid("ds-b")]), t.unordered)
    t.put_nodes("nodes.update.type_change", "put_artifacts", "artifact",
                [t.artifact("Model", "ds-b", id=t.aid("ds-b"))])
    t.put_nodes("nodes.update.unknown_id", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ghost", id=ABSENT_ID)])
    t.put_nodes("nodes.update.mask_property", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-a", id=t.aid("ds-a"), props={"split": "eval", "day": 99})],
                field_mask_paths=["properties.split"])
    t.put_nodes("nodes.update.mask_deletes_custom", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-a", id=t.aid("ds-a"))], field_mask_paths=["custom_properties.note"])
    t.put_nodes("nodes.update.mask_external_id_uri_state", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-c", id=t.aid("ds-c"), uri="mem://data/c", external_id="ext-art-c",
                            state=A.LIVE, props={"day": 100})],
                field_mask_paths=["external_id", "uri", "state"])
    t.put_nodes("nodes.update.mask_ignored_on_insert", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-d", uri="mem://data/d", props={"day": 4, "split": "test"})],
                field_mask_paths=["uri"])
    t.put_nodes("nodes.update.mask_unknown_path", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-d", id=t.aid("ds-d"))], field_mask_paths=["no_such_field"])
    t.put_nodes("nodes.update.rename", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-d-renamed", id=t.aid("ds-d"), uri="mem://data/d")])
    t.put_nodes("nodes.update.rename_back", "put_artifacts", "artifact",
                [t.artifact("DataSet", "ds-d", id=t.aid("ds-d"), uri="mem://data/d",
                            props={"day": 4, "split": "test"})])
    # Reads.
    t.step("nodes.get_artifacts_by_id",
           lambda: s.get_artifacts_by_id([t.aid("ds-a"), t.aid("ds-b"), t.aid("ds-c"), t.aid("model-1"), ABSENT_ID]),
           t.unordered)
    t.step("nodes.get_artifacts_by_id.empty", lambda: s.get_artifacts_by_id([]), t.unordered)
    t.step("nodes.get_artifacts_by_type", lambda: s.get_artifacts_by_type(t.p("DataSet")), t.unordered)
    t.step("nodes.get_artifacts_by_type.model", lambda: s.get_artifacts_by_type(t.p("Model")), t.unordered)
    t.step("nodes.get_artifacts_by_type.version_without_nodes",
           lambda: s.get_artifacts_by_type(t.p("DataSet"), "v2"), t.unordered)
    t.step("nodes.get_artifacts_by_type.unknown", lambda: s.get_artifacts_by_type(t.p("NoSuchType")), t.unordered)
    t.step("nodes.get_artifact_by_type_and_name",
           lambda: s.get_artifact_by_type_and_name(t.p("DataSet"), t.p("ds-a")))
    t.step("nodes.get_artifact_by_type_and_name.other_type",
           lambda: s.get_artifact_by_type_and_name(t.p("Model"), t.p("ds-a")))
    t.step("nodes.get_artifact_by_type_and_name.missing",
           lambda: s.get_artifact_by_type_and_name(t.p("DataSet"), t.p("nope")))
    t.step("nodes.get_artifact_by_type_and_name.unknown_type",
           lambda: s.get_artifact_by_type_and_name(t.p("NoSuchType"), t.p("ds-a")))
    t.step("nodes.get_artifacts_by_uri", lambda: s.get_artifacts_by_uri(t.p("mem://data/a")), t.unordered)
    t.step("nodes.get_artifacts_by_uri.none", lambda: s.get_artifacts_by_uri(t.p("mem://nothing")), t.unordered)
    t.step("nodes.get_artifacts_by_external_ids",
           lambda: s.get_artifacts_by_external_ids([t.p("ext-art-a"), t.p("ext-art-c"), t.p("ext-none")]),
           t.unordered)
    t.step("nodes.get_artifacts_and_types_by_artifact_ids",
           lambda: s.get_artifacts_and_types_by_artifact_ids([t.aid("ds-a"), t.aid("model-1"), ABSENT_ID]),
           lambda pair: {"artifacts": t.unordered(pair[0]), "types": t.unordered(pair[1])})
    t.step("nodes.get_artifacts", lambda: s.get_artifacts(), t.unordered)

    # Executions.
    E = pb.Execution
    t.put_nodes("nodes.put_executions", "put_executions", "execution", [
        t.execution("Trainer", "train-1", props={"epochs": 10, "lr": 0.1, "algo": "xgb"}, state=E.RUNNING,
                    external_id="ext-exec-1", custom={"attempt": 1}),
        t.execution("Trainer", "train-2", props={"epochs": 20}, state=E.COMPLETE),
        t.execution("Trainer", None, state=E.NEW),
        t.execution("Transform", "transform-1", type_version="v1", props={"op": "scale"}),
    ])
    t.put_nodes("nodes.put_executions.duplicate_name", "put_executions", "execution",
                [t.execution("Trainer", "train-1")])
    t.put_nodes("nodes.put_executions.no_type", "put_executions", "execution", [t.execution(None, "x")])
    t.put_nodes("nodes.put_executions.wrong_value_type", "put_executions", "execution",
                [t.execution("Trainer", "bad", props={"lr": "fast"})])
    t.put_nodes("nodes.put_executions.mask_state", "put_executions", "execution",
                [t.execution("Trainer", "train-1", id=t.eid("train-1"), state=E.COMPLETE, props={"epochs": 1})],
                field_mask_paths=["last_known_state"])
    t.put_nodes("nodes.put_executions.mask_custom", "put_executions", "execution",
                [t.execution("Trainer", "train-2", id=t.eid("train-2"), custom={"attempt": 2})],
                field_mask_paths=["custom_properties.attempt"])
    t.step("nodes.get_executions_by_id",
           lambda: s.get_executions_by_id([t.eid("train-1"), t.eid("train-2"), ABSENT_ID]), t.unordered)
    t.step("nodes.get_executions_by_type", lambda: s.get_executions_by_type(t.p("Trainer")), t.unordered)
    t.step("nodes.get_executions_by_type.version", lambda: s.get_executions_by_type(t.p("Transform"), "v1"),
           t.unordered)
    t.step("nodes.get_execution_by_type_and_name",
           lambda: s.get_execution_by_type_and_name(t.p("Trainer"), t.p("train-2")))
    t.step("nodes.get_execution_by_type_and_name.version",
           lambda: s.get_execution_by_type_and_name(t.p("Transform"), t.p("transform-1"), "v1"))
    t.step("nodes.get_execution_by_type_and_name.missing",
           lambda: s.get_execution_by_type_and_name(t.p("Trainer"), t.p("nope")))
    t.step("nodes.get_executions_by_external_ids",
           lambda: s.get_executions_by_external_ids([t.p("ext-exec-1"), t.p("ext-none")]), t.unordered)
    t.step("nodes.get_executions", lambda: s.get_executions(), t.unordered)

    # Contexts.
    t.put_nodes("nodes.put_contexts", "put_contexts", "context", [
        t.context("Pipeline", "pipe-1", props={"owner": "fraud"}, external_id="ext-ctx-pipe"),
        t.context("PipelineRun", "run-1", props={"run_no": 1}, custom={"tag": "nightly"}),
        t.context("PipelineRun", "run-2", props={"run_no": 2}),
        t.context("PipelineRun", "run-3", props={"run_no": 3}),
        t.context("PipelineRun", "run-v", type_version="2024", props={"run_no": 9}),
    ])
    t.put_nodes("nodes.put_contexts.no_name", "put_contexts", "context", [t.context("Pipeline", None)])
    t.put_nodes("nodes.put_contexts.duplicate_name", "put_contexts", "context", [t.context("Pipeline", "pipe-1")])
    t.put_nodes("nodes.put_contexts.same_name_other_type", "put_contexts", "context",
                [t.context("PipelineRun", "pipe-1", props={"run_no": 0})])
    t.put_nodes("nodes.put_contexts.mask_property", "put_contexts", "context",
                [t.context("PipelineRun", "run-1", id=t.cid("run-1"), props={"run_no": 11}, custom={"tag": "x"})],
                field_mask_paths=["properties.run_no"])
    t.step("nodes.get_contexts_by_id",
           lambda: s.get_contexts_by_id([t.cid("pipe-1"), t.cid("run-1"), ABSENT_ID]), t.unordered)
    t.step("nodes.get_contexts_by_type", lambda: s.get_contexts_by_type(t.p("PipelineRun")), t.unordered)
    t.step("nodes.get_contexts_by_type.version", lambda: s.get_contexts_by_type(t.p("PipelineRun"), "2024"),
           t.unordered)
    t.step("nodes.get_context_by_type_and_name",
           lambda: s.get_context_by_type_and_name(t.p("Pipeline"), t.p("pipe-1")))
    t.step("nodes.get_context_by_type_and_name.version",
           lambda: s.get_context_by_type_and_name(t.p("PipelineRun"), t.p("run-v"), "2024"))
    t.step("nodes.get_context_by_type_and_name.missing",
           lambda: s.get_context_by_type_and_name(t.p("Pipeline"), t.p("nope")))
    t.step("nodes.get_contexts_by_external_ids",
           lambda: s.get_contexts_by_external_ids([t.p("ext-ctx-pipe")]), t.unordered)
    t.step("nodes.get_contexts", lambda: s.get_contexts(), t.unordered)


def g_events(t):
    """Events with paths, their refusals, and reads by execution and by artifact."""
    s = t.s
    Ev = pb.Event
    t.step("events.put", lambda: s.put_events([
        t.event(Ev.INPUT, "ds-a", "train-1", ["examples", 0]),
        t.event(Ev.INPUT, "ds-b", "train-1", ["examples", 1]),
        t.event(Ev.OUTPUT, "model-1", "train-1", ["model"]),
        t.event(Ev.DECLARED_INPUT, "ds-c", "train-2"),
        t.event(Ev.OUTPUT, "model-1", "train-2", [0, "nested", 3]),
    ]))
    t.step("events.put.duplicate", lambda: s.put_events([t.event(Ev.INPUT, "ds-a", "train-1", ["examples", 0])]))
    t.step("events.put.unknown_artifact", lambda: s.put_events([pb.Event(
        type=Ev.INPUT, artifact_id=ABSENT_ID, execution_id=t.eid("train-1"))]))
    t.step("events.put.unknown_execution", lambda: s.put_events([pb.Event(
        type=Ev.INPUT, artifact_id=t.aid("ds-a"), execution_id=ABSENT_ID)]))
    t.step("events.put.no_type", lambda: s.put_events([pb.Event(
        artifact_id=t.aid("ds-b"), execution_id=t.eid("train-2"))]))
    t.step("events.put.no_execution", lambda: s.put_events([pb.Event(type=Ev.INPUT, artifact_id=t.aid("ds-b"))]))
    t.step("events.get_by_execution_ids",
           lambda: s.get_events_by_execution_ids([t.eid("train-1"), t.eid("train-2"), ABSENT_ID]), t.unordered)
    t.step("events.get_by_artifact_ids",
           lambda: s.get_events_by_artifact_ids([t.aid("model-1"), t.aid("ds-c")]), t.unordered)
    t.step("events.get_by_artifact_ids.none", lambda: s.get_events_by_artifact_ids([ABSENT_ID]), t.unordered)


def g_relations(t):
    """Attributions, associations and parent contexts (with a cycle that must be refused), and
    the reads across them."""
    s = t.s
    attributions = [
        pb.Attribution(context_id=t.cid("run-1"), artifact_id=t.aid("ds-a")),
        pb.Attribution(context_id=t.cid("run-1"), artifact_id=t.aid("model-1")),
        pb.Attribution(context_id=t.cid("pipe-1"), artifact_id=t.aid("ds-a")),
        pb.Attribution(context_id=t.cid("run-2"), artifact_id=t.aid("ds-b")),
    ]
    associations = [
        pb.Association(context_id=t.cid("run-1"), execution_id=t.eid("train-1")),
        pb.Association(context_id=t.cid("pipe-1"), execution_id=t.eid("train-1")),
        pb.Association(context_id=t.cid("pipe-1"), execution_id=t.eid("train-2")),
        pb.Association(context_id=t.cid("run-2"), execution_id=t.eid("train-2")),
    ]
    t.step("relations.put_attributions_and_associations",
           lambda: s.put_attributions_and_associations(attributions, associations))
    t.step("relations.put_attributions_and_associations.again",
           lambda: s.put_attributions_and_associations(attributions[:1], associations[:1]))
    t.step("relations.attribution_unknown_context", lambda: s.put_attributions_and_associations(
        [pb.Attribution(context_id=ABSENT_ID, artifact_id=t.aid("ds-a"))], []))
    t.step("relations.attribution_unknown_artifact", lambda: s.put_attributions_and_associations(
        [pb.Attribution(context_id=t.cid("run-1"), artifact_id=ABSENT_ID)], []))
    t.step("relations.association_unknown_execution", lambda: s.put_attributions_and_associations(
        [], [pb.Association(context_id=t.cid("run-1"), execution_id=ABSENT_ID)]))
    t.step("relations.get_contexts_by_artifact", lambda: s.get_contexts_by_artifact(t.aid("ds-a")), t.unordered)
    t.step("relations.get_contexts_by_artifact.none", lambda: s.get_contexts_by_artifact(t.aid("ds-c")),
           t.unordered)
    t.step("relations.get_contexts_by_execution", lambda: s.get_contexts_by_execution(t.eid("train-1")),
           t.unordered)
    t.step("relations.get_artifacts_by_context", lambda: s.get_artifacts_by_context(t.cid("run-1")), t.unordered)
    t.step("relations.get_artifacts_by_context.unknown", lambda: s.get_artifacts_by_context(ABSENT_ID),
           t.unordered)
    # Default order of get_executions_by_context (set by the client): create time, descending.
    t.step("relations.get_executions_by_context", lambda: s.get_executions_by_context(t.cid("pipe-1")))
    t.step("relations.get_executions_by_context.by_id_asc", lambda: s.get_executions_by_context(
        t.cid("pipe-1"), ListOptions(order_by=OrderByField.ID, is_asc=True)))

    pc = pb.ParentContext
    t.step("relations.put_parent_contexts", lambda: s.put_parent_contexts([
        pc(parent_id=t.cid("pipe-1"), child_id=t.cid("run-1")),
        pc(parent_id=t.cid("pipe-1"), child_id=t.cid("run-2")),
        pc(parent_id=t.cid("run-1"), child_id=t.cid("run-3")),
    ]))
    t.step("relations.put_parent_contexts.duplicate", lambda: s.put_parent_contexts([
        pc(parent_id=t.cid("pipe-1"), child_id=t.cid("run-1"))]))
    t.step("relations.put_parent_contexts.cycle", lambda: s.put_parent_contexts([
        pc(parent_id=t.cid("run-3"), child_id=t.cid("pipe-1"))]))
    t.step("relations.put_parent_contexts.direct_cycle", lambda: s.put_parent_contexts([
        pc(parent_id=t.cid("run-1"), child_id=t.cid("pipe-1"))]))
    t.step("relations.put_parent_contexts.self", lambda: s.put_parent_contexts([
        pc(parent_id=t.cid("run-2"), child_id=t.cid("run-2"))]))
    t.step("relations.put_parent_contexts.unknown_parent", lambda: s.put_parent_contexts([
        pc(parent_id=ABSENT_ID, child_id=t.cid("run-2"))]))
    t.step("relations.put_parent_contexts.unknown_child", lambda: s.put_parent_contexts([
        pc(parent_id=t.cid("run-2"), child_id=ABSENT_ID)]))
    t.step("relations.get_parent_contexts_by_context", lambda: s.get_parent_contexts_by_context(t.cid("run-1")),
           t.unordered)
    t.step("relations.get_parent_contexts_by_context.grandchild",
           lambda: s.get_parent_contexts_by_context(t.cid("run-3")), t.unordered)
    t.step("relations.get_parent_contexts_by_context.root",
           lambda: s.get_parent_contexts_by_context(t.cid("pipe-1")), t.unordered)
    t.step("relations.get_children_contexts_by_context",
           lambda: s.get_children_contexts_by_context(t.cid("pipe-1")), t.unordered)
    t.step("relations.get_children_contexts_by_context.leaf",
           lambda: s.get_children_contexts_by_context(t.cid("run-3")), t.unordered)
    t.step("relations.get_children_contexts_by_context.unknown",
           lambda: s.get_children_contexts_by_context(ABSENT_ID), t.unordered)


def g_put_execution(t):
    """put_execution: new and existing nodes, events, contexts, and its reuse options."""
    s = t.s
    Ev, E, A = pb.Event, pb.Execution, pb.Artifact

    def put(name, execution, pairs, contexts, **kw):
        def shape(answer):
            exec_id, artifact_ids, context_ids = answer
            return {
                "execution": t.register("execution", exec_id, t.strip(execution.name)),
                "artifacts": t.register_all("artifact", artifact_ids, [a for a, _ in pairs]),
                "contexts": t.register_all("context", context_ids, contexts),
            }

        return t.step(name, lambda: s.put_execution(execution, pairs, contexts, **kw), shape)

    put("put_execution.new", t.execution("Trainer", "pe-train", props={"epochs": 1}, state=E.RUNNING), [
        (t.artifact("DataSet", "pe-in", uri="mem://pe/in", external_id="ext-pe-in"), t.event(Ev.INPUT, path=["in"])),
        (t.artifact("Model", "pe-out", uri="mem://pe/out"), t.event(Ev.OUTPUT, path=["out", 0])),
    ], [t.context("PipelineRun", "pe-run", props={"run_no": 7}), t.context("Pipeline", "pe-pipe")])
    put("put_execution.update", t.execution("Trainer", "pe-train", id=t.eid("pe-train"), props={"epochs": 1},
                                            state=E.COMPLETE), [
        (t.artifact("Model", "pe-out", id=t.aid("pe-out"), uri="mem://pe/out", state=A.LIVE), None),
        (t.artifact("Model", "pe-out-2", uri="mem://pe/out2"), t.event(Ev.OUTPUT, path=["out", 1])),
    ], [t.context("PipelineRun", "pe-run", id=t.cid("pe-run"), props={"run_no": 7})])
    put("put_execution.context_exists", t.execution("Trainer", "pe-train-2"), [],
        [t.context("PipelineRun", "pe-run", props={"run_no": 8})])
    t.step("put_execution.context_exists.nothing_written",
           lambda: s.get_execution_by_type_and_name(t.p("Trainer"), t.p("pe-train-2")))
    put("put_execution.reuse_context", t.execution("Trainer", "pe-train-2"), [],
        [t.context("PipelineRun", "pe-run", props={"run_no": 8})], reuse_context_if_already_exist=True)
    put("put_execution.artifact_external_id_exists", t.execution("Trainer", "pe-train-3"),
        [(t.artifact("DataSet", "pe-in-again", external_id="ext-pe-in"), t.event(Ev.INPUT))], [])
    put("put_execution.reuse_artifact_by_external_id", t.execution("Trainer", "pe-train-3"),
        [(t.artifact("DataSet", "pe-in", uri="mem://pe/in-v2", external_id="ext-pe-in"), t.event(Ev.INPUT))], [],
        reuse_artifact_if_already_exist_by_external_id=True)
    put("put_execution.force_reuse_context", t.execution("Trainer", "pe-train-4"), [],
        [t.context("PipelineRun", "pe-run", id=t.cid("pe-run"), props={"run_no": 999})], force_reuse_context=True)
    t.step("put_execution.force_reuse_context.unchanged", lambda: s.get_contexts_by_id([t.cid("pe-run")]),
           t.unordered)
    put("put_execution.force_update_time", t.execution("Trainer", "pe-train-4", id=t.eid("pe-train-4")), [], [],
        force_update_time=True)
    put("put_execution.event_artifact_mismatch", t.execution("Trainer", "pe-train-5"),
        [(t.artifact("Model", "pe-out", id=t.aid("pe-out")), t.event(Ev.OUTPUT, artifact="pe-in"))], [])
    put("put_execution.event_execution_mismatch", t.execution("Trainer", "pe-train", id=t.eid("pe-train")),
        [(t.artifact("Model", "pe-out", id=t.aid("pe-out")), t.event(Ev.OUTPUT, execution="pe-train-2"))], [])
    put("put_execution.no_type", t.execution(None, "pe-none"), [], [])
    put("put_execution.no_contexts_arg", t.execution("Trainer", "pe-train-6"), [], None)
    t.step("put_execution.events", lambda: s.get_events_by_execution_ids([t.eid("pe-train"), t.eid("pe-train-3")]),
           t.unordered)
    t.step("put_execution.artifacts_by_context", lambda: s.get_artifacts_by_context(t.cid("pe-run")), t.unordered)
    t.step("put_execution.executions_by_context", lambda: s.get_executions_by_context(
        t.cid("pe-run"), ListOptions(order_by=OrderByField.ID)))
    t.step("put_execution.contexts_by_execution", lambda: s.get_contexts_by_execution(t.eid("pe-train")),
           t.unordered)
    t.step("put_execution.contexts_by_artifact", lambda: s.get_contexts_by_artifact(t.aid("pe-out-2")),
           t.unordered)


def g_put_lineage_subgraph(t):
    """put_lineage_subgraph: executions, artifacts, contexts and event edges by index or id."""
    s = t.s
    Ev = pb.Event

    def put(name, executions, artifacts, contexts, edges, **kw):
        def shape(answer):
            e_ids, a_ids, c_ids = answer
            return {
                "executions": t.register_all("execution", e_ids, executions),
                "artifacts": t.register_all("artifact", a_ids, artifacts),
                "contexts": t.register_all("context", c_ids, contexts),
            }

        return t.step(name, lambda: s.put_lineage_subgraph(executions, artifacts, contexts, edges, **kw), shape)

    put("put_lineage_subgraph.new",
        [t.execution("Trainer", "lp-e1"), t.execution("Trainer", "lp-e2", props={"epochs": 2})],
        [t.artifact("DataSet", "lp-a1", uri="mem://lp/1"), t.artifact("Model", "lp-a2", uri="mem://lp/2"),
         t.artifact("DataSet", "lp-a3", uri="mem://lp/3")],
        [t.context("PipelineRun", "lp-run", props={"run_no": 1})],
        [(0, 0, t.event(Ev.INPUT)), (0, 1, t.event(Ev.OUTPUT, path=["model"])),
         (1, 1, t.event(Ev.INPUT, path=["m", 0])), (1, 2, t.event(Ev.OUTPUT))])
    put("put_lineage_subgraph.index_out_of_range", [t.execution("Trainer", "lp-e3")], [], [],
        [(5, 0, t.event(Ev.INPUT))])
    put("put_lineage_subgraph.context_exists", [t.execution("Trainer", "lp-e3")], [],
        [t.context("PipelineRun", "lp-run")], [])
    put("put_lineage_subgraph.reuse_context", [t.execution("Trainer", "lp-e3")], [],
        [t.context("PipelineRun", "lp-run")], [], reuse_context_if_already_exist=True)
    put("put_lineage_subgraph.edges_by_id", [], [t.artifact("DataSet", "lp-a4")], [],
        [(None, 0, t.event(Ev.INPUT, execution="lp-e3"))])
    put("put_lineage_subgraph.edge_id_mismatch",
        [t.execution("Trainer", "lp-e1", id=t.eid("lp-e1"))], [t.artifact("DataSet", "lp-a5")], [],
        [(0, 0, t.event(Ev.INPUT, execution="lp-e2"))])
    put("put_lineage_subgraph.reuse_artifact_by_external_id", [],
        [t.artifact("DataSet", "lp-a6", external_id="ext-lp-a6")], [], [])
    put("put_lineage_subgraph.reuse_artifact_by_external_id.again", [],
        [t.artifact("DataSet", "lp-a6", uri="mem://lp/6", external_id="ext-lp-a6")], [], [],
        reuse_artifact_if_already_exist_by_external_id=True)
    t.step("put_lineage_subgraph.events",
           lambda: s.get_events_by_execution_ids([t.eid("lp-e1"), t.eid("lp-e2"), t.eid("lp-e3")]), t.unordered)
    t.step("put_lineage_subgraph.contexts_by_artifact", lambda: s.get_contexts_by_artifact(t.aid("lp-a2")),
           t.unordered)
    t.step("put_lineage_subgraph.executions_by_context", lambda: s.get_executions_by_context(
        t.cid("lp-run"), ListOptions(order_by=OrderByField.ID)))


def g_lists(t):
    """List options: limits, order_by (id, create and update time, both directions), and paging
    (the client asks for 100 per page, so 250 results take three pages)."""
    s = t.s
    # 250 artifacts in three puts, a little apart: create times differ between the batches and
    # tie inside one (MLMD breaks ties by id).
    for first, last in ((0, 100), (100, 200), (200, 250)):
        t.put_nodes(f"lists.put_bulk_artifacts.{first}", "put_artifacts", "artifact",
                    [t.artifact("Bulk", f"bulk-{i:03}", props={"index": i}) for i in range(first, last)])
        time.sleep(0.01)
    # Steps record the ids of 100 artifacts: shorten those to a count.
    bulk = t.q("type = '{P}Bulk'")
    names = t.names
    t.step("lists.all_bulk.limit_250", lambda: s.get_artifacts(ListOptions(limit=250, filter_query=bulk)), names)
    t.step("lists.all_bulk.no_limit", lambda: s.get_artifacts(ListOptions(filter_query=bulk)), names)
    t.step("lists.all_bulk.limit_120", lambda: s.get_artifacts(ListOptions(limit=120, filter_query=bulk)), names)
    t.step("lists.all_artifacts.paged", lambda: s.get_artifacts(ListOptions(limit=1000)), names)
    t.step("lists.by_id_desc.limit_5", lambda: s.get_artifacts(
        ListOptions(limit=5, order_by=OrderByField.ID, is_asc=False, filter_query=bulk)), names)
    t.step("lists.by_create_time_asc.limit_7", lambda: s.get_artifacts(
        ListOptions(limit=7, order_by=OrderByField.CREATE_TIME, is_asc=True, filter_query=bulk)), names)
    t.step("lists.by_create_time_desc.limit_130", lambda: s.get_artifacts(
        ListOptions(limit=130, order_by=OrderByField.CREATE_TIME, is_asc=False, filter_query=bulk)), names)
    t.step("lists.by_create_time_desc.all", lambda: s.get_artifacts(
        ListOptions(order_by=OrderByField.CREATE_TIME, is_asc=False, filter_query=bulk)), names)
    # Three updates in a known order, a little apart.
    for n in ("bulk-010", "bulk-200", "bulk-005"):
        t.put_nodes(f"lists.touch.{n}", "put_artifacts", "artifact",
                    [t.artifact("Bulk", n, id=t.aid(n), props={"index": -1}, custom={"touched": True})])
        time.sleep(0.01)
    t.step("lists.by_update_time_desc.limit_3", lambda: s.get_artifacts(
        ListOptions(limit=3, order_by=OrderByField.UPDATE_TIME, is_asc=False, filter_query=bulk)))
    t.step("lists.by_update_time_asc.limit_3", lambda: s.get_artifacts(
        ListOptions(limit=3, order_by=OrderByField.UPDATE_TIME, is_asc=True, filter_query=bulk)), names)
    t.step("lists.negative_limit", lambda: s.get_artifacts(ListOptions(limit=-1)), names)

    # Executions and contexts: 150 and 105, paged.
    t.put_nodes("lists.put_bulk_executions", "put_executions", "execution",
                [t.execution("BulkRun", f"brun-{i:03}", props={"index": i}) for i in range(150)])
    t.put_nodes("lists.put_bulk_contexts", "put_contexts", "context",
                [t.context("BulkCtx", f"bctx-{i:03}", props={"index": i}) for i in range(105)])
    bulk_runs, bulk_ctx = t.q("type = '{P}BulkRun'"), t.q("type = '{P}BulkCtx'")
    t.step("lists.executions.limit_150", lambda: s.get_executions(ListOptions(limit=150, filter_query=bulk_runs)),
           names)
    t.step("lists.executions.by_id_desc.limit_101", lambda: s.get_executions(
        ListOptions(limit=101, order_by=OrderByField.ID, is_asc=False, filter_query=bulk_runs)), names)
    t.step("lists.executions.all_paged", lambda: s.get_executions(ListOptions(limit=1000)), names)
    t.step("lists.contexts.all", lambda: s.get_contexts(ListOptions(filter_query=bulk_ctx)), names)
    t.step("lists.contexts.by_create_time_desc.limit_4", lambda: s.get_contexts(
        ListOptions(limit=4, order_by=OrderByField.CREATE_TIME, is_asc=False, filter_query=bulk_ctx)), names)
    t.step("lists.contexts.all_paged", lambda: s.get_contexts(ListOptions(limit=1000)), names)

    # Paging within a context: 120 attributions, 110 associations.
    ctx = t.cid("bctx-000")
    t.step("lists.attribute_and_associate", lambda: s.put_attributions_and_associations(
        [pb.Attribution(context_id=ctx, artifact_id=t.aid(f"bulk-{i:03}")) for i in range(120)],
        [pb.Association(context_id=ctx, execution_id=t.eid(f"brun-{i:03}")) for i in range(110)]))
    t.step("lists.artifacts_by_context.limit_200", lambda: s.get_artifacts_by_context(ctx, ListOptions(limit=200)),
           names)
    t.step("lists.artifacts_by_context.by_id_desc.limit_3", lambda: s.get_artifacts_by_context(
        ctx, ListOptions(limit=3, order_by=OrderByField.ID, is_asc=False)), names)
    t.step("lists.artifacts_by_context.no_options", lambda: s.get_artifacts_by_context(ctx),
           lambda x: {"count": len(x), "names": sorted(t.strip(a.name) for a in x)})
    t.step("lists.executions_by_context.default_order", lambda: s.get_executions_by_context(ctx), names)
    t.step("lists.executions_by_context.by_id.limit_105", lambda: s.get_executions_by_context(
        ctx, ListOptions(limit=105, order_by=OrderByField.ID)), names)


def g_raw_paging(t):
    """Paging tokens as the wire shows them, through the client's own gRPC stub (the client
    hides them), plus PutTypes, which the client does not offer."""
    stub = t.store._metadata_store_stub
    bulk = t.q("type = '{P}Bulk'")

    def page(max_size=None, token=None, query=bulk, order=None, is_asc=True):
        request = spb.GetArtifactsRequest()
        options = request.options
        options.SetInParent()
        if max_size is not None:
            options.max_result_size = max_size
        if query is not None:
            options.filter_query = query
        if order is not None:
            options.order_by_field.field = order
            options.order_by_field.is_asc = is_asc
        if token is not None:
            options.next_page_token = token
        return stub.GetArtifacts(request)

    def shape(r):
        names = [t.strip(a.name) for a in r.artifacts]
        return {
            "count": len(names),
            "first": names[:1],
            "last": names[-1:],
            "has_next_page_token": r.HasField("next_page_token"),
            "next_page_token": t.token(r.next_page_token) if r.next_page_token else r.next_page_token,
        }

    def raw(name, call, shape_fn=shape):
        """Like Suite.step, for raw stub calls (grpc errors instead of client ones)."""
        def wrapped():
            try:
                return call()
            except grpc.RpcError as e:
                raise errors.make_exception(e.details(), e.code().value[0]) from e

        return t.step(name, wrapped, shape_fn)

    first = raw("raw.get_artifacts.page_1", lambda: page(100))
    token = first.next_page_token if first else "x"
    second = raw("raw.get_artifacts.page_2", lambda: page(100, token))
    token2 = second.next_page_token if second else "x"
    raw("raw.get_artifacts.page_3", lambda: page(100, token2))
    raw("raw.get_artifacts.page_2_again", lambda: page(100, token))
    raw("raw.get_artifacts.token_with_other_filter", lambda: page(100, token, query=t.q("type = '{P}DataSet'")))
    raw("raw.get_artifacts.token_with_other_order", lambda: page(
        100, token, order=pb.ListOperationOptions.OrderByField.CREATE_TIME))
    raw("raw.get_artifacts.token_with_other_size", lambda: page(7, token))
    raw("raw.get_artifacts.garbage_token", lambda: page(100, "not-a-token"))
    raw("raw.get_artifacts.default_size", lambda: page(None))
    raw("raw.get_artifacts.size_101", lambda: page(101))
    raw("raw.get_artifacts.size_0", lambda: page(0))
    raw("raw.get_artifacts.size_negative", lambda: page(-5))
    raw("raw.get_artifacts.exact_fit", lambda: page(50, query=t.q("type = '{P}Bulk' AND name LIKE '{P}bulk-2%'")))
    desc = raw("raw.get_artifacts.create_time_desc.page_1", lambda: page(
        100, order=pb.ListOperationOptions.OrderByField.CREATE_TIME, is_asc=False))
    raw("raw.get_artifacts.create_time_desc.page_2", lambda: page(
        100, desc.next_page_token if desc else "x", order=pb.ListOperationOptions.OrderByField.CREATE_TIME,
        is_asc=False))

    def put_types(name, request):
        def shape(r):
            # Index-aligned with the request's types: registered by their names.
            return {
                f"{kind}_type_ids": t.register_all(f"{kind}_type", getattr(r, f"{kind}_type_ids"),
                                                   getattr(request, f"{kind}_types"))
                for kind in ("artifact", "execution", "context")
            }

        raw(name, lambda: stub.PutTypes(request), shape)

    AT, ET, CT = pb.ArtifactType, pb.ExecutionType, pb.ContextType
    put_types("raw.put_types.new_and_existing", spb.PutTypesRequest(
        artifact_types=[t.atype(AT, "Bulk", {"index": INT}), t.atype(AT, "RawType", {"a": INT})],
        execution_types=[t.atype(ET, "RawExec", {})],
        context_types=[t.atype(CT, "BulkCtx", {"index": INT})]))
    put_types("raw.put_types.incompatible", spb.PutTypesRequest(
        artifact_types=[t.atype(AT, "RawType2", {"a": INT}), t.atype(AT, "Bulk", {"index": STRING})]))
    raw("raw.put_types.incompatible.nothing_written", lambda: stub.GetArtifactType(
        spb.GetArtifactTypeRequest(type_name=t.p("RawType2"))), lambda r: t.norm(r))


def g_filters(t):
    """filter_query: attributes, properties, custom properties, backquoted names, contexts_X,
    events_X, parent/child contexts, IN, LIKE, IS NULL, AND/OR/NOT, enum names, time fields, and
    malformed queries."""
    s = t.s
    names = t.names
    ds = t.q("type = '{P}DataSet'")

    def arts(name, query, **kw):
        t.step(f"filters.artifacts.{name}", lambda: s.get_artifacts(ListOptions(filter_query=t.q(query), **kw)), names)

    def execs(name, query):
        t.step(f"filters.executions.{name}", lambda: s.get_executions(ListOptions(filter_query=t.q(query))), names)

    def ctxs(name, query):
        t.step(f"filters.contexts.{name}", lambda: s.get_contexts(ListOptions(filter_query=t.q(query))), names)

    arts("type", ds)
    t.step("filters.artifacts.type.full", lambda: s.get_artifacts(ListOptions(filter_query=ds)))
    arts("type_in", "type IN ('{P}DataSet', '{P}Model')")
    arts("name", "name = '{P}ds-a'")
    arts("name_in", "name IN ('{P}ds-a', '{P}ds-c', '{P}nope')")
    arts("name_like", "name LIKE '{P}ds-%'")
    arts("uri_like", "uri LIKE '{P}mem://data/%'")
    arts("uri_equal", "uri = '{P}mem://data/a'")
    arts("external_id", "external_id = '{P}ext-art-a'")
    arts("external_id_is_null", ds + " AND external_id IS NULL")
    arts("external_id_is_not_null", "external_id IS NOT NULL")
    arts("id", f"id = {t.aid('ds-b')}")
    arts("id_in", f"id IN ({t.aid('ds-a')}, {t.aid('model-1')}, {ABSENT_ID})")
    arts("state", "state = LIVE")
    arts("state_in", "state IN (LIVE, PENDING)")
    arts("int_property", "properties.day.int_value > 1")
    arts("int_property_and_string", "properties.split.string_value = 'train' AND properties.day.int_value >= 3")
    arts("string_property_like", "properties.split.string_value LIKE 'te%'")
    arts("double_property", "properties.score.double_value < 1.0")
    arts("bool_property", "properties.tuned.bool_value = true")
    arts("property_is_null", ds + " AND properties.score.double_value IS NULL")
    arts("property_is_not_null", "properties.score.double_value IS NOT NULL")
    arts("custom_property", "custom_properties.note.string_value = 'third'")
    arts("custom_property_replaced_by_update", "custom_properties.note.string_value = 'second'")
    arts("custom_property_backquoted", "custom_properties.`odd key`.int_value = 7")
    arts("custom_property_bool", "custom_properties.approved.bool_value = false")
    arts("custom_is_null", ds + " AND custom_properties.note.string_value IS NULL")
    arts("property_wrong_value_kind", "properties.day.string_value = '1'")
    arts("not", ds + " AND NOT(name = '{P}ds-a')")
    arts("or_and", "(name = '{P}ds-a' OR name = '{P}model-1') AND type = '{P}DataSet'")
    arts("or", "name = '{P}ds-b' OR uri = '{P}mem://models/1'")
    arts("contexts_name", "contexts_a.name = '{P}run-1'")
    arts("contexts_type_and_name", "contexts_a.type = '{P}Pipeline' AND contexts_b.name = '{P}run-1'")
    arts("contexts_same_alias_twice", "contexts_a.type = '{P}PipelineRun' AND contexts_a.name = '{P}run-2'")
    arts("contexts_property", "contexts_a.properties.run_no.int_value = 11")
    arts("events_type", "events_0.type = INPUT")
    arts("events_type_output", "events_0.type = OUTPUT AND " + t.q("type = '{P}Model'"))
    arts("events_execution", f"events_0.execution_id = {t.eid('train-2')}")
    arts("create_time_positive", ds + " AND create_time_since_epoch > 0")
    arts("update_time_positive", ds + " AND last_update_time_since_epoch > 0")
    arts("with_limit_and_order", ds, limit=2, order_by=OrderByField.ID, is_asc=False)
    # Time fields, against a boundary this run observes: two artifacts created 50 ms apart.
    t.put_nodes("filters.put_time_marks.early", "put_artifacts", "artifact", [t.artifact("Mark", "tm-early")])
    time.sleep(0.05)
    t.put_nodes("filters.put_time_marks.late", "put_artifacts", "artifact", [t.artifact("Mark", "tm-late")])
    late = t.step("filters.time_marks.read", lambda: s.get_artifacts_by_id([t.aid("tm-late")]), len)
    boundary = late[0].create_time_since_epoch if late else 0
    arts("create_time_boundary", f"type = '{{P}}Mark' AND create_time_since_epoch >= {boundary}")
    arts("create_time_before", f"type = '{{P}}Mark' AND create_time_since_epoch < {boundary}")
    arts("update_time_boundary", f"type = '{{P}}Mark' AND last_update_time_since_epoch >= {boundary}")
    # Malformed queries.
    arts("syntax_error", "name = ")
    arts("unknown_attribute", "bogus_field = 1")
    arts("unknown_enum", "state = SHINY")
    arts("unbalanced", "(name = 'x'")
    # Executions.
    execs("state", "last_known_state = COMPLETE")
    execs("state_in", "last_known_state IN (NEW, RUNNING)")
    execs("type_and_property", "type = '{P}Trainer' AND properties.epochs.int_value >= 10")
    execs("contexts", "contexts_a.name = '{P}pipe-1'")
    execs("events", f"events_0.artifact_id = {t.aid('model-1')}")
    execs("events_type", "events_0.type = DECLARED_INPUT")
    execs("custom_property", "custom_properties.attempt.int_value = 2")
    execs("name_like_or", "name LIKE '{P}train-%' OR name = '{P}transform-1'")
    execs("bad_attribute", "uri = 'x'")
    # Contexts.
    ctxs("type", "type = '{P}PipelineRun'")
    ctxs("property", "properties.run_no.int_value < 3")
    ctxs("name_like", "name LIKE '{P}run-%'")
    ctxs("parent", "parent_contexts_a.name = '{P}pipe-1'")
    ctxs("child", "child_contexts_a.name = '{P}run-3'")
    ctxs("parent_and_type", "parent_contexts_a.type = '{P}PipelineRun' AND type = '{P}PipelineRun'")
    ctxs("custom_property", "custom_properties.tag.string_value = 'nightly'")
    ctxs("external_id", "external_id = '{P}ext-ctx-pipe'")
    ctxs("not_in", "type = '{P}PipelineRun' AND NOT(name IN ('{P}run-1', '{P}run-2'))")
    ctxs("events_not_allowed", "events_0.type = INPUT")
    # Filters inside a context.
    t.step("filters.artifacts_by_context", lambda: s.get_artifacts_by_context(
        t.cid("run-1"), ListOptions(filter_query=t.q("type = '{P}Model'"))), names)
    t.step("filters.executions_by_context", lambda: s.get_executions_by_context(
        t.cid("pipe-1"), ListOptions(filter_query="last_known_state = COMPLETE")), names)


def g_lineage(t):
    """get_lineage_subgraph: hops, directions, ending nodes, field masks, refusals."""
    s = t.s
    Ev = pb.Event
    # g-a0 -> g-e1 -> g-a1 -> g-e2 -> g-a2 -> g-e3 -> g-a3, and g-a1 -> g-e4 -> g-a4.
    t.put_nodes("lineage.put_artifacts", "put_artifacts", "artifact", [
        t.artifact("DataSet", f"g-a{i}", uri=f"mem://g/{i}", props={"day": i}) for i in range(5)])
    t.put_nodes("lineage.put_executions", "put_executions", "execution", [
        t.execution("Trainer", f"g-e{i}", props={"epochs": i}) for i in range(1, 5)])
    t.step("lineage.put_events", lambda: s.put_events([
        t.event(Ev.INPUT, "g-a0", "g-e1"), t.event(Ev.OUTPUT, "g-a1", "g-e1"),
        t.event(Ev.INPUT, "g-a1", "g-e2"), t.event(Ev.OUTPUT, "g-a2", "g-e2"),
        t.event(Ev.INPUT, "g-a2", "g-e3"), t.event(Ev.OUTPUT, "g-a3", "g-e3"),
        t.event(Ev.INPUT, "g-a1", "g-e4"), t.event(Ev.OUTPUT, "g-a4", "g-e4", ["branch"]),
    ]))
    t.put_nodes("lineage.put_context", "put_contexts", "context", [t.context("PipelineRun", "g-run")])
    t.step("lineage.attribute", lambda: s.put_attributions_and_associations(
        [pb.Attribution(context_id=t.cid("g-run"), artifact_id=t.aid(f"g-a{i}")) for i in range(3)],
        [pb.Association(context_id=t.cid("g-run"), execution_id=t.eid(f"g-e{i}")) for i in (1, 2)]))

    LQ = pb.LineageSubgraphQueryOptions

    def query(start_artifacts=None, start_executions=None, hops=None, direction=None, end_artifacts=None,
              end_executions=None, include_end=None):
        o = LQ()
        if start_artifacts is not None:
            o.starting_artifacts.filter_query = t.q(start_artifacts)
        if start_executions is not None:
            o.starting_executions.filter_query = t.q(start_executions)
        if hops is not None:
            o.max_num_hops = hops
        if direction is not None:
            o.direction = direction
        if end_artifacts is not None:
            o.ending_artifacts.filter_query = t.q(end_artifacts)
            if include_end is not None:
                o.ending_artifacts.include_ending_nodes = include_end
        if end_executions is not None:
            o.ending_executions.filter_query = t.q(end_executions)
            if include_end is not None:
                o.ending_executions.include_ending_nodes = include_end
        return o

    def lineage(name, options, mask=None):
        t.step(f"lineage.{name}", lambda: s.get_lineage_subgraph(options, mask), t.graph)

    a1 = "name = '{P}g-a1'"
    lineage("a1.hops_2.both", query(a1, hops=2, direction=LQ.BIDIRECTIONAL))
    lineage("a1.hops_2.downstream", query(a1, hops=2, direction=LQ.DOWNSTREAM))
    lineage("a1.hops_2.upstream", query(a1, hops=2, direction=LQ.UPSTREAM))
    lineage("a1.hops_1.unspecified_direction", query(a1, hops=1))
    lineage("a1.hops_0", query(a1, hops=0, direction=LQ.BIDIRECTIONAL))
    lineage("a1.hops_unset", query(a1, direction=LQ.DOWNSTREAM))
    lineage("a0.downstream.ending_at_a2.included", query(
        "name = '{P}g-a0'", hops=20, direction=LQ.DOWNSTREAM, end_artifacts="name = '{P}g-a2'", include_end=True))
    lineage("a0.downstream.ending_at_a2.excluded", query(
        "name = '{P}g-a0'", hops=20, direction=LQ.DOWNSTREAM, end_artifacts="name = '{P}g-a2'", include_end=False))
    lineage("a3.upstream.ending_at_e2", query(
        "name = '{P}g-a3'", hops=20, direction=LQ.UPSTREAM, end_executions="name = '{P}g-e2'", include_end=True))
    lineage("e2.hops_1", query(start_executions="name = '{P}g-e2'", hops=1, direction=LQ.BIDIRECTIONAL))
    lineage("e4.upstream.hops_3", query(start_executions="name = '{P}g-e4'", hops=3, direction=LQ.UPSTREAM))
    lineage("many_starts.hops_1", query("name LIKE '{P}g-a%'", hops=1, direction=LQ.BIDIRECTIONAL))
    lineage("starting_by_context", query("contexts_a.name = '{P}g-run' AND name = '{P}g-a2'", hops=1,
                                         direction=LQ.DOWNSTREAM))
    lineage("mask.artifacts_events", query(a1, hops=2, direction=LQ.BIDIRECTIONAL), ["artifacts", "events"])
    lineage("mask.types", query(a1, hops=2, direction=LQ.BIDIRECTIONAL),
            ["artifact_types", "execution_types", "context_types"])
    lineage("mask.contexts_and_edges", query(a1, hops=2, direction=LQ.BIDIRECTIONAL),
            ["contexts", "attributions", "associations"])
    lineage("mask.executions_only", query(a1, hops=2, direction=LQ.BIDIRECTIONAL), ["executions"])
    lineage("no_start_matches", query("name = '{P}nope'", hops=2, direction=LQ.BIDIRECTIONAL))
    lineage("no_starting_nodes", query(hops=2))
    lineage("both_starting_kinds", query(a1, start_executions="name = '{P}g-e2'", hops=2))
    lineage("negative_hops", query(a1, hops=-1))
    lineage("bad_filter", query("name = ", hops=1))

    # What the server itself answers (the client asks for node ids only, then reads the nodes):
    # the skeleton, through the client's own stub.
    stub = t.store._metadata_store_stub

    def raw(name, read_mask):
        request = spb.GetLineageSubgraphRequest(
            lineage_subgraph_query_options=query(a1, hops=1, direction=LQ.BIDIRECTIONAL))
        if read_mask is not None:
            request.read_mask.paths.extend(read_mask)

        def call():
            try:
                return stub.GetLineageSubgraph(request).lineage_subgraph
            except grpc.RpcError as e:
                raise errors.make_exception(e.details(), e.code().value[0]) from e

        t.step(f"lineage.raw.{name}", call, t.graph)

    raw("default_mask", None)
    raw("client_mask", [f.name for f in pb.LineageGraph.DESCRIPTOR.fields if not f.name.endswith("_types")])
    raw("types_mask", ["artifact_types", "context_types"])
    raw("bad_mask", ["no_such_path"])


def g_misc(t):
    """The rest of the public surface."""
    t.step("misc.pipeline_asset", lambda: t.s.pipeline_asset)


# name, groups it builds on, function.
GROUPS = [
    ("types", [], g_types),
    ("nodes", ["types"], g_nodes),
    ("events", ["nodes"], g_events),
    ("relations", ["nodes"], g_relations),
    ("put_execution", ["types"], g_put_execution),
    ("put_lineage_subgraph", ["types"], g_put_lineage_subgraph),
    ("lists", ["types"], g_lists),
    ("raw_paging", ["lists"], g_raw_paging),
    ("filters", ["nodes", "events", "relations"], g_filters),
    ("lineage", ["types"], g_lineage),
    ("misc", [], g_misc),
]


def selected_groups(only):
    if not only:
        return [g for g, _, _ in GROUPS]
    deps = {g: d for g, d, _ in GROUPS}
    unknown = [g for g in only if g not in deps]
    if unknown:
        raise SystemExit(f"unknown group(s) {unknown}; groups: {list(deps)}")
    wanted = set()

    def add(g):
        if g not in wanted:
            wanted.add(g)
            for d in deps[g]:
                add(d)

    for g in only:
        add(g)
    return [g for g, _, _ in GROUPS if g in wanted]


def connect(args):
    config = metadata_store.metadata_store_pb2.MetadataStoreClientConfig(host=args.host, port=args.port)
    if args.ca or args.cert or args.key:
        if not (args.ca and args.cert and args.key):
            raise SystemExit("--ca, --cert and --key go together")

        def read(path):
            with open(path) as f:
                return f.read()

        # server_cert is the client's own certificate chain: the client hands it to
        # grpc.ssl_channel_credentials as certificate_chain.
        config.ssl_config.CopyFrom(pb.MetadataStoreClientConfig.SSLConfig(
            client_key=read(args.key), server_cert=read(args.cert), custom_ca=read(args.ca)))
    return metadata_store.MetadataStore(config)


def wait_until_serving(store, seconds=15.0):
    """Retries a harmless read until the server answers anything but UNAVAILABLE."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            store.get_context_types()
            return
        except errors.UnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        except errors.StatusError:
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--only", default="", help="comma-separated groups (and what they build on)")
    parser.add_argument("--prefix", default="", help="put in front of every type and node name")
    args = parser.parse_args()
    only = [g for g in args.only.split(",") if g]

    store = connect(args)
    wait_until_serving(store)
    suite = Suite(store, args.prefix)
    for name, _, fn in GROUPS:
        if name in selected_groups(only):
            fn(suite)

    called = sorted(suite.called & set(public_methods()))
    json.dump({"steps": suite.steps, "methods_called": called}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    if not only:
        missed = sorted(set(public_methods()) - suite.called)
        if missed:
            print(f"coverage guard: public MetadataStore methods never called: {missed}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
