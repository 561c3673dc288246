#!/usr/bin/env python3
"""Renders the ML Metadata (MLMD) wire definitions compiled into the installed `ml-metadata`
wheel as `.proto` source.

The wheel embeds each file's `FileDescriptorProto` (`<module>_pb2.DESCRIPTOR.serialized_pb`);
this script turns those descriptors back into proto2 source, so that our copies under
`proto/ml_metadata/proto/` are our own rendering of the published wire definitions (no text is
copied from any repository). The descriptors carry no comments (`source_code_info` is stripped
from generated Python code), so neither does the output.

Usage (with the venv of tests/python/setup.sh):

    target/py-venv/bin/python tests/python/render_proto.py [--out-dir proto]

Without `--out-dir` the files are printed to stdout. The result must compile to descriptors
identical to the wheel's; `tests/python/compare_mlmd_descriptors.py` checks that.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from google.protobuf import descriptor_pb2, descriptor_pool

from ml_metadata import __version__ as MLMD_VERSION
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2

FDP = descriptor_pb2.FieldDescriptorProto

HEADER = """\
// Wire definitions of Google's ML Metadata (MLMD) gRPC API, ml-metadata {version}, package
// `ml_metadata` (Apache-2.0). This file is metamesh's own rendering of the published wire
// definitions (generated from the descriptors in the `ml-metadata` wheel by
// tests/python/render_proto.py, then reviewed); it must stay wire-identical to upstream, which
// crates/metamesh-proto/tests/t20_mlmd_descriptors.rs checks field by field. Do not edit by hand
// except to re-render.
"""

SCALAR_NAMES = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}

LABELS = {
    FDP.LABEL_OPTIONAL: "optional",
    FDP.LABEL_REQUIRED: "required",
    FDP.LABEL_REPEATED: "repeated",
}

INDENT = "  "


def c_escape(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append("\\%03o" % byte)
    return "".join(out)


class Symbols:
    """Fully-qualified names (without the leading dot) of every type and package in scope, for
    rendering type references as short names that still resolve to the same type."""

    def __init__(self, files: list[descriptor_pb2.FileDescriptorProto]):
        self.names: set[str] = set()
        for f in files:
            parts = f.package.split(".") if f.package else []
            for i in range(1, len(parts) + 1):
                self.names.add(".".join(parts[:i]))
            prefix = f.package + "." if f.package else ""
            for m in f.message_type:
                self._add_message(prefix, m)
            for e in f.enum_type:
                self.names.add(prefix + e.name)

    def _add_message(self, prefix: str, m: descriptor_pb2.DescriptorProto) -> None:
        full = prefix + m.name
        self.names.add(full)
        for n in m.nested_type:
            self._add_message(full + ".", n)
        for e in m.enum_type:
            self.names.add(full + "." + e.name)

    def resolve(self, scope: str, name: str) -> str | None:
        """protoc's lookup of a relative `name` from within `scope` (a dotted full name)."""
        first = name.split(".", 1)[0]
        parts = scope.split(".") if scope else []
        for i in range(len(parts), -1, -1):
            candidate = ".".join(parts[:i] + [first])
            if candidate in self.names:
                full = ".".join(parts[:i] + [name])
                return full if full in self.names else None
        return None

    def shortest(self, scope: str, type_name: str) -> str:
        """The shortest suffix of the absolute `type_name` (`.pkg.Type`) that resolves to it."""
        full = type_name.lstrip(".")
        parts = full.split(".")
        for i in range(len(parts) - 1, -1, -1):
            candidate = ".".join(parts[i:])
            if self.resolve(scope, candidate) == full:
                return candidate
        return type_name


def format_scalar(value, field_desc) -> str:
    if field_desc.type == field_desc.TYPE_BOOL:
        return "true" if value else "false"
    if field_desc.type == field_desc.TYPE_ENUM:
        return field_desc.enum_type.values_by_number[value].name
    if field_desc.type in (field_desc.TYPE_STRING,):
        return '"' + c_escape(value) + '"'
    if field_desc.type == field_desc.TYPE_BYTES:
        return '"' + "".join(c_escape(chr(b)) if b < 0x80 else "\\%03o" % b for b in value) + '"'
    if field_desc.type in (field_desc.TYPE_FLOAT, field_desc.TYPE_DOUBLE):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return repr(value)
    return str(value)


def option_entries(options, package: str) -> list[tuple[str, str]]:
    """(name, value) pairs of every set option, custom ones as `(ext).sub.path`."""
    entries: list[tuple[str, str]] = []

    def walk(prefix: str, msg) -> None:
        for fd, value in msg.ListFields():
            if fd.is_extension:
                # Short form for extensions declared at the top level of the file's own package.
                scope = fd.full_name.rsplit(".", 1)[0]
                name = f"({fd.name})" if scope == package else f"({fd.full_name})"
            else:
                name = fd.name
            path = f"{prefix}.{name}" if prefix else name
            values = value if fd.label == fd.LABEL_REPEATED else [value]
            for v in values:
                if fd.type in (fd.TYPE_MESSAGE, fd.TYPE_GROUP):
                    walk(path, v)
                else:
                    entries.append((path, format_scalar(v, fd)))

    walk("", options)
    return entries


def format_default(field: descriptor_pb2.FieldDescriptorProto) -> str:
    value = field.default_value
    if field.type == FDP.TYPE_STRING:
        return '"' + c_escape(value) + '"'
    if field.type == FDP.TYPE_BYTES:
        return '"' + value + '"'  # already C-escaped in the descriptor
    return value  # numbers, bools, enum value names, inf/nan: verbatim


class Renderer:
    def __init__(self, symbols: Symbols, package: str):
        self.symbols = symbols
        self.package = package
        self.lines: list[str] = []

    def emit(self, depth: int, text: str = "") -> None:
        self.lines.append(INDENT * depth + text if text else "")

    def type_ref(self, scope: str, field: descriptor_pb2.FieldDescriptorProto) -> str:
        if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM, FDP.TYPE_GROUP):
            return self.symbols.shortest(scope, field.type_name)
        return SCALAR_NAMES[field.type]

    def field_options(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        opts = []
        if field.HasField("default_value"):
            opts.append(f"default = {format_default(field)}")
        if field.HasField("json_name"):
            opts.append(f'json_name = "{c_escape(field.json_name)}"')
        opts += [f"{k} = {v}" for k, v in option_entries(field.options, self.package)]
        return f" [{', '.join(opts)}]" if opts else ""

    def field_line(self, scope: str, field, map_entries: dict) -> str:
        if field.type == FDP.TYPE_MESSAGE and field.type_name in map_entries:
            entry = map_entries[field.type_name]
            key, value = entry.field[0], entry.field[1]
            type_text = f"map<{self.type_ref(scope, key)}, {self.type_ref(scope, value)}>"
            label = ""
        else:
            if field.type == FDP.TYPE_GROUP:
                raise SystemExit(f"groups are not supported: {scope}.{field.name}")
            type_text = self.type_ref(scope, field)
            label = "" if field.HasField("oneof_index") else LABELS[field.label] + " "
        return f"{label}{type_text} {field.name} = {field.number}{self.field_options(field)};"

    def enum(self, depth: int, enum: descriptor_pb2.EnumDescriptorProto) -> None:
        self.emit(depth, f"enum {enum.name} {{")
        for k, v in option_entries(enum.options, self.package):
            self.emit(depth + 1, f"option {k} = {v};")
        for value in enum.value:
            opts = option_entries(value.options, self.package)
            suffix = f" [{', '.join(f'{k} = {v}' for k, v in opts)}]" if opts else ""
            self.emit(depth + 1, f"{value.name} = {value.number}{suffix};")
        self.reserved(depth + 1, enum.reserved_range, enum.reserved_name, inclusive_end=True)
        self.emit(depth, "}")

    def reserved(self, depth: int, ranges, names, inclusive_end: bool) -> None:
        parts = []
        for r in ranges:
            end = r.end if inclusive_end else r.end - 1
            parts.append(str(r.start) if end == r.start else f"{r.start} to {end}")
        if parts:
            self.emit(depth, f"reserved {', '.join(parts)};")
        if names:
            self.emit(depth, f"reserved {', '.join(repr_str(n) for n in names)};")

    def extensions(self, depth: int, scope: str, exts) -> None:
        by_extendee: dict[str, list] = {}
        for ext in exts:
            by_extendee.setdefault(ext.extendee, []).append(ext)
        for extendee, fields in by_extendee.items():
            self.emit(depth, f"extend {self.symbols.shortest(scope, extendee)} {{")
            for f in fields:
                self.emit(depth + 1, self.field_line(scope, f, {}))
            self.emit(depth, "}")

    def message(self, depth: int, scope: str, msg: descriptor_pb2.DescriptorProto) -> None:
        full = f"{scope}.{msg.name}" if scope else msg.name
        self.emit(depth, f"message {msg.name} {{")
        inner = depth + 1
        for k, v in option_entries(msg.options, self.package):
            self.emit(inner, f"option {k} = {v};")

        # Map entry types are implied by their `map<,>` fields, at the field's position among the
        # nested types; other nested types are declared so that the nested_type order is kept.
        map_entries = {}
        map_entry_index = {}
        for i, n in enumerate(msg.nested_type):
            if n.options.map_entry:
                map_entries[f".{full}.{n.name}"] = n
                map_entry_index[f".{full}.{n.name}"] = i
        pending = [i for i, n in enumerate(msg.nested_type) if not n.options.map_entry]

        def flush_nested(before: int) -> None:
            while pending and pending[0] < before:
                self.message(inner, full, msg.nested_type[pending.pop(0)])

        for e in msg.enum_type:
            self.enum(inner, e)
        # Nested types ahead of the first map entry go before the fields (the usual layout).
        flush_nested(min(map_entry_index.values(), default=len(msg.nested_type)))

        # Fields, with each oneof as one contiguous block.
        emitted_oneofs = set()
        fields = list(msg.field)
        i = 0
        while i < len(fields):
            field = fields[i]
            if field.type_name in map_entries:
                flush_nested(map_entry_index[field.type_name])
            if field.HasField("oneof_index"):
                idx = field.oneof_index
                if idx in emitted_oneofs:
                    raise SystemExit(f"oneof {full}.{msg.oneof_decl[idx].name} is not contiguous")
                emitted_oneofs.add(idx)
                oneof = msg.oneof_decl[idx]
                self.emit(inner, f"oneof {oneof.name} {{")
                for k, v in option_entries(oneof.options, self.package):
                    self.emit(inner + 1, f"option {k} = {v};")
                while i < len(fields) and fields[i].HasField("oneof_index") and fields[i].oneof_index == idx:
                    self.emit(inner + 1, self.field_line(full, fields[i], map_entries))
                    i += 1
                self.emit(inner, "}")
                continue
            self.emit(inner, self.field_line(full, field, map_entries))
            i += 1
        if len(emitted_oneofs) != len(msg.oneof_decl):
            raise SystemExit(f"{full}: empty oneofs are not supported")
        # Oneof declaration order must follow the order of their first fields.
        firsts = []
        for f in msg.field:
            if f.HasField("oneof_index") and f.oneof_index not in firsts:
                firsts.append(f.oneof_index)
        if firsts != sorted(firsts):
            raise SystemExit(f"{full}: oneof order differs from field order")

        flush_nested(len(msg.nested_type) + 1)
        if msg.extension_range:
            parts = []
            for r in msg.extension_range:
                end = "max" if r.end == 536870912 else str(r.end - 1)
                parts.append(str(r.start) if end == str(r.start) else f"{r.start} to {end}")
                if r.options.ByteSize():
                    raise SystemExit(f"{full}: extension range options are not supported")
            self.emit(inner, f"extensions {', '.join(parts)};")
        self.reserved(inner, msg.reserved_range, msg.reserved_name, inclusive_end=False)
        self.extensions(inner, full, msg.extension)
        if self.lines[-1].endswith("{"):
            self.lines[-1] += "}"  # empty message
        else:
            self.emit(depth, "}")

    def service(self, svc: descriptor_pb2.ServiceDescriptorProto) -> None:
        scope = self.package
        self.emit(0, f"service {svc.name} {{")
        for k, v in option_entries(svc.options, self.package):
            self.emit(1, f"option {k} = {v};")
        for m in svc.method:
            req = ("stream " if m.client_streaming else "") + self.symbols.shortest(scope, m.input_type)
            resp = ("stream " if m.server_streaming else "") + self.symbols.shortest(scope, m.output_type)
            opts = option_entries(m.options, self.package)
            head = f"rpc {m.name}({req})"
            tail = f"returns ({resp})" + (" {" if opts else ";")
            if len(INDENT) + len(head) + 1 + len(tail) <= 100:
                self.emit(1, f"{head} {tail}")
            else:
                self.emit(1, head)
                self.emit(3, tail)
            if opts:
                for k, v in opts:
                    self.emit(2, f"option {k} = {v};")
                self.emit(1, "}")
        self.emit(0, "}")

    def file(self, f: descriptor_pb2.FileDescriptorProto) -> str:
        self.lines = []
        for line in HEADER.format(version=MLMD_VERSION).splitlines():
            self.emit(0, line)
        self.emit(0)
        self.emit(0, f'syntax = "{f.syntax or "proto2"}";')
        self.emit(0)
        self.emit(0, f"package {f.package};")
        self.emit(0)
        public = set(f.public_dependency)
        weak = set(f.weak_dependency)
        for i, dep in enumerate(f.dependency):
            kind = "public " if i in public else "weak " if i in weak else ""
            self.emit(0, f'import {kind}"{dep}";')
        if f.dependency:
            self.emit(0)
        file_opts = option_entries(f.options, self.package)
        for k, v in file_opts:
            self.emit(0, f"option {k} = {v};")
        if file_opts:
            self.emit(0)
        # The API first, then the messages it carries.
        for s in f.service:
            self.service(s)
            self.emit(0)
        for e in f.enum_type:
            self.enum(0, e)
            self.emit(0)
        # File-level extensions right after the message type they carry (or at the end).
        ext_after: dict[str, list] = {}
        for ext in f.extension:
            ext_after.setdefault(ext.type_name.rsplit(".", 1)[-1], []).append(ext)
        for m in f.message_type:
            self.message(0, f.package, m)
            self.emit(0)
            if m.name in ext_after:
                self.extensions(0, f.package, ext_after.pop(m.name))
                self.emit(0)
        for exts in ext_after.values():
            self.extensions(0, f.package, exts)
            self.emit(0)
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n"


def repr_str(s: str) -> str:
    return '"' + c_escape(s) + '"'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", help="write <out-dir>/<file name> instead of printing")
    args = parser.parse_args()

    modules = [metadata_store_pb2, metadata_store_service_pb2]
    files = [descriptor_pb2.FileDescriptorProto.FromString(m.DESCRIPTOR.serialized_pb) for m in modules]

    # Every file in scope (the two files and their transitive dependencies) for name resolution.
    pool = descriptor_pool.Default()
    scope_files = {f.name: f for f in files}
    queue = [d for f in files for d in f.dependency]
    while queue:
        name = queue.pop()
        if name in scope_files:
            continue
        dep = descriptor_pb2.FileDescriptorProto.FromString(pool.FindFileByName(name).serialized_pb)
        scope_files[name] = dep
        queue += list(dep.dependency)
    symbols = Symbols(list(scope_files.values()))

    for f in files:
        text = Renderer(symbols, f.package).file(f)
        if args.out_dir:
            path = os.path.join(args.out_dir, f.name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as out:
                out.write(text)
            print(f"wrote {path}", file=sys.stderr)
        else:
            sys.stdout.write(f"// ===== {f.name}\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
