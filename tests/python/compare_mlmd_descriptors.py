#!/usr/bin/env python3
"""Compares metamesh's compiled ML Metadata descriptors with the ones in the `ml-metadata` wheel.

Usage: compare_mlmd_descriptors.py <descriptor_set.bin>

<descriptor_set.bin> is an encoded `google.protobuf.FileDescriptorSet` holding our compilation of
`ml_metadata/proto/metadata_store.proto` and `ml_metadata/proto/metadata_store_service.proto`
(`metamesh_proto::ML_METADATA_DESCRIPTOR_SET`). Each is compared, recursively and field by field,
with the wheel's `FileDescriptorProto` (`<module>_pb2.DESCRIPTOR.serialized_pb`): package,
syntax, dependencies, file options, every message (options, fields, nested messages and map
entries, oneofs, enums, extension ranges, reserved ranges and names, nested extensions), top-level
enums and extensions, and the services (methods, input/output types, streaming, options). The
order of declarations is compared too, so the descriptors are identical, not just compatible.

Each difference is printed as one line with a dotted path, e.g.
`ml_metadata.Artifact.field[uri].number: 3 != 4` (ours first, then the wheel's), followed by a
summary `compared: N messages, M fields, K enums, R rpcs` (counted on the wheel's side). Exits 1
on any difference, 0 otherwise, 2 on usage errors.

Deliberately not compared:
  * `source_code_info`: ours carries the comments of our sources; the wheel's is stripped.
  * `json_name` when only one side sets it: protoc drops it from descriptors embedded in
    generated Python code unless set explicitly, whereas protox always fills it in. When both
    sides set it, it is compared.
  * `syntax` spelled "" versus "proto2": both mean proto2.
File options are compared in full (the wheel sets none, so no code-generation-only option has to
be skipped).
"""

from __future__ import annotations

import sys

from google.protobuf import descriptor_pb2, text_format

# Importing the wheel's modules also registers its custom option `ml_metadata.system_type_extension`
# on EnumValueOptions, so both sides parse that option into a known extension.
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2

WHEEL_MODULES = [metadata_store_pb2, metadata_store_service_pb2]

FDP = descriptor_pb2.FieldDescriptorProto


class Comparison:
    def __init__(self) -> None:
        self.differences: list[str] = []
        self.messages = 0
        self.fields = 0
        self.enums = 0
        self.rpcs = 0

    def diff(self, path: str, ours, theirs) -> None:
        self.differences.append(f"{path}: {ours} != {theirs}")

    def scalar(self, path: str, ours, theirs, name: str, present_aware: bool = True) -> None:
        """Compares field `name` of two descriptor messages, presence included."""
        o_has = ours.HasField(name) if present_aware else True
        t_has = theirs.HasField(name) if present_aware else True
        o_val = getattr(ours, name) if o_has else "<unset>"
        t_val = getattr(theirs, name) if t_has else "<unset>"
        if (o_has, o_val) != (t_has, t_val):
            self.diff(f"{path}.{name}", fmt(o_val), fmt(t_val))

    def options(self, path: str, ours, theirs) -> None:
        o_text = one_line(ours)
        t_text = one_line(theirs)
        if o_text != t_text:
            self.diff(f"{path}.options", o_text or "<none>", t_text or "<none>")
        elif ours.SerializeToString(deterministic=True) != theirs.SerializeToString(deterministic=True):
            # Same text but different bytes: unknown fields (e.g. an unregistered custom option).
            self.diff(f"{path}.options", f"<bytes {ours.SerializeToString().hex()}>", theirs.SerializeToString().hex())

    def names(self, path: str, kind: str, ours: list, theirs: list) -> tuple[dict, dict]:
        """Reports missing/extra/reordered named elements; returns name -> element maps."""
        o_map = {e.name: e for e in ours}
        t_map = {e.name: e for e in theirs}
        for name in t_map.keys() - o_map.keys():
            self.differences.append(f"{path}.{kind}[{name}]: missing in ours")
        for name in o_map.keys() - t_map.keys():
            self.differences.append(f"{path}.{kind}[{name}]: not in the wheel")
        if len(o_map) != len(ours):
            self.differences.append(f"{path}.{kind}: duplicate names in ours")
        o_order = [e.name for e in ours if e.name in t_map]
        t_order = [e.name for e in theirs if e.name in o_map]
        if o_order != t_order:
            self.diff(f"{path}.{kind}.order", o_order, t_order)
        return o_map, t_map

    def field(self, path: str, ours, theirs, o_msg=None, t_msg=None) -> None:
        self.fields += 1
        for name in ("number", "label", "type", "type_name", "default_value", "extendee", "proto3_optional"):
            self.scalar(path, ours, theirs, name)
        self.scalar(path, ours, theirs, "oneof_index")
        if o_msg is not None and ours.HasField("oneof_index") and theirs.HasField("oneof_index"):
            o_oneof = o_msg.oneof_decl[ours.oneof_index].name
            t_oneof = t_msg.oneof_decl[theirs.oneof_index].name
            if o_oneof != t_oneof:
                self.diff(f"{path}.oneof", o_oneof, t_oneof)
        if ours.HasField("json_name") and theirs.HasField("json_name"):
            self.scalar(path, ours, theirs, "json_name")
        self.options(path, ours.options, theirs.options)

    def fields_of(self, path: str, kind: str, ours: list, theirs: list, o_msg=None, t_msg=None) -> None:
        o_map, t_map = self.names(path, kind, ours, theirs)
        for f in theirs:
            if f.name in o_map:
                self.field(f"{path}.{kind}[{f.name}]", o_map[f.name], f, o_msg, t_msg)

    def ranges(self, path: str, kind: str, ours, theirs, with_options: bool = False) -> None:
        o_list = [(r.start, r.end) for r in ours]
        t_list = [(r.start, r.end) for r in theirs]
        if o_list != t_list:
            self.diff(f"{path}.{kind}", o_list, t_list)
        elif with_options:
            for o_r, t_r in zip(ours, theirs):
                self.options(f"{path}.{kind}[{t_r.start}..{t_r.end}]", o_r.options, t_r.options)

    def enum(self, path: str, ours, theirs) -> None:
        self.enums += 1
        self.options(path, ours.options, theirs.options)
        o_map, _ = self.names(path, "value", ours.value, theirs.value)
        for v in theirs.value:
            if v.name in o_map:
                vpath = f"{path}.value[{v.name}]"
                self.scalar(vpath, o_map[v.name], v, "number")
                self.options(vpath, o_map[v.name].options, v.options)
        self.ranges(path, "reserved_range", ours.reserved_range, theirs.reserved_range)
        if list(ours.reserved_name) != list(theirs.reserved_name):
            self.diff(f"{path}.reserved_name", list(ours.reserved_name), list(theirs.reserved_name))

    def enums_of(self, path: str, ours: list, theirs: list) -> None:
        o_map, _ = self.names(path, "enum", ours, theirs)
        for e in theirs:
            if e.name in o_map:
                self.enum(f"{path}.{e.name}", o_map[e.name], e)

    def message(self, path: str, ours, theirs) -> None:
        self.messages += 1
        self.options(path, ours.options, theirs.options)
        self.fields_of(path, "field", ours.field, theirs.field, ours, theirs)
        o_oneofs, _ = self.names(path, "oneof", ours.oneof_decl, theirs.oneof_decl)
        for o in theirs.oneof_decl:
            if o.name in o_oneofs:
                self.options(f"{path}.oneof[{o.name}]", o_oneofs[o.name].options, o.options)
        self.messages_of(path, ours.nested_type, theirs.nested_type)
        self.enums_of(path, ours.enum_type, theirs.enum_type)
        self.fields_of(path, "extension", ours.extension, theirs.extension)
        self.ranges(path, "extension_range", ours.extension_range, theirs.extension_range, with_options=True)
        self.ranges(path, "reserved_range", ours.reserved_range, theirs.reserved_range)
        if list(ours.reserved_name) != list(theirs.reserved_name):
            self.diff(f"{path}.reserved_name", list(ours.reserved_name), list(theirs.reserved_name))

    def messages_of(self, path: str, ours: list, theirs: list) -> None:
        o_map, _ = self.names(path, "message", ours, theirs)
        for m in theirs:
            if m.name in o_map:
                self.message(f"{path}.{m.name}", o_map[m.name], m)

    def service(self, path: str, ours, theirs) -> None:
        self.options(path, ours.options, theirs.options)
        o_map, _ = self.names(path, "rpc", ours.method, theirs.method)
        for m in theirs.method:
            self.rpcs += 1
            if m.name not in o_map:
                continue
            mpath = f"{path}.rpc[{m.name}]"
            for name in ("input_type", "output_type", "client_streaming", "server_streaming"):
                self.scalar(mpath, o_map[m.name], m, name)
            self.options(mpath, o_map[m.name].options, m.options)

    def file(self, ours, theirs) -> None:
        # File-level attributes under the file name, declarations under their full names.
        fpath = theirs.name
        self.scalar(fpath, ours, theirs, "package")
        o_syntax = ours.syntax or "proto2"
        t_syntax = theirs.syntax or "proto2"
        if o_syntax != t_syntax:
            self.diff(f"{fpath}.syntax", o_syntax, t_syntax)
        for name in ("dependency", "public_dependency", "weak_dependency"):
            if list(getattr(ours, name)) != list(getattr(theirs, name)):
                self.diff(f"{fpath}.{name}", list(getattr(ours, name)), list(getattr(theirs, name)))
        self.options(fpath, ours.options, theirs.options)
        path = theirs.package or theirs.name
        self.messages_of(path, ours.message_type, theirs.message_type)
        self.enums_of(path, ours.enum_type, theirs.enum_type)
        self.fields_of(path, "extension", ours.extension, theirs.extension)
        o_services, _ = self.names(path, "service", ours.service, theirs.service)
        for s in theirs.service:
            if s.name in o_services:
                self.service(f"{path}.{s.name}", o_services[s.name], s)


def fmt(value) -> str:
    if isinstance(value, str) and value != "<unset>":
        return repr(value)
    return str(value)


def one_line(message) -> str:
    return text_format.MessageToString(message, as_one_line=True).strip()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        ours_set = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    ours_by_name = {f.name: f for f in ours_set.file}

    cmp = Comparison()
    for module in WHEEL_MODULES:
        theirs = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        ours = ours_by_name.get(theirs.name)
        if ours is None:
            cmp.differences.append(f"{theirs.name}: file missing in ours (have: {sorted(ours_by_name)})")
            continue
        cmp.file(ours, theirs)

    for line in cmp.differences:
        print(line)
    print(f"compared: {cmp.messages} messages, {cmp.fields} fields, {cmp.enums} enums, {cmp.rpcs} rpcs")
    if cmp.differences:
        print(f"{len(cmp.differences)} difference(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
