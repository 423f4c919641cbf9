#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generates the codec tables of proto/kmsg.c from Kafka's message schemas.

Reads the JSON message definitions Kafka publishes (clients/src/main/resources/
common/message/*.json, which carry // comments that are stripped before
parsing) for the APIs Sluice serves and for the request and response headers,
and writes:

  proto/kmsg_gen.h  one C struct per message and per nested struct, the enum of
                    API keys, the descriptors of the top-level messages
  proto/kmsg_gen.c  one field-descriptor table per struct, one descriptor per
                    struct, and the table of APIs

Both outputs are committed: the build never needs the schemas. Rerun after
changing MESSAGES or updating the schemas (the outputs are passed through
clang-format when it is installed, so a rerun reproduces them exactly):

  python3 scripts/gen-codec.py [SCHEMA_DIR]

The script refuses anything in a schema it does not understand (an unknown
key, type or default) rather than guess, so a new schema feature shows up as a
generator error, not as a silently wrong codec. Python 3 standard library only.
"""

import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SCHEMA_DIR = os.path.join(os.path.dirname(ROOT), "shared", "kafka-messages")

# The APIs Sluice serves: (schema name without Request/Response, API key).
MESSAGES = [
    ("Produce", 0),
    ("Fetch", 1),
    ("ListOffsets", 2),
    ("Metadata", 3),
    ("OffsetCommit", 8),
    ("OffsetFetch", 9),
    ("FindCoordinator", 10),
    ("JoinGroup", 11),
    ("Heartbeat", 12),
    ("LeaveGroup", 13),
    ("SyncGroup", 14),
    ("DescribeGroups", 15),
    ("ListGroups", 16),
    ("ApiVersions", 18),
    ("CreateTopics", 19),
    ("DeleteTopics", 20),
    ("InitProducerId", 22),
    ("OffsetForLeaderEpoch", 23),
    ("DescribeConfigs", 32),
    ("DeleteGroups", 42),
]
HEADERS = ["RequestHeader", "ResponseHeader"]

VMAX = 0x7FFF  # "N+" versions: open-ended, up to the largest int16

# Schema type -> (C type of the member, engine type code, integer range or None).
PRIMITIVES = {
    "bool": ("bool", "KMSG_BOOL", None),
    "int8": ("int8_t", "KMSG_INT8", (-(2**7), 2**7 - 1)),
    "int16": ("int16_t", "KMSG_INT16", (-(2**15), 2**15 - 1)),
    "uint16": ("uint16_t", "KMSG_UINT16", (0, 2**16 - 1)),
    "int32": ("int32_t", "KMSG_INT32", (-(2**31), 2**31 - 1)),
    "uint32": ("uint32_t", "KMSG_UINT32", (0, 2**32 - 1)),
    "int64": ("int64_t", "KMSG_INT64", (-(2**63), 2**63 - 1)),
    "float64": ("double", "KMSG_FLOAT64", None),
    "uuid": ("uint8_t", "KMSG_UUID", None),
    "string": ("struct kstr", "KMSG_STRING", None),
    "bytes": ("struct kbytes", "KMSG_BYTES", None),
    "records": ("struct kbytes", "KMSG_RECORDS", None),
}
NULLABLE_TYPES = ("string", "bytes", "records")

# Keys a field may carry. Those the codec does not need are documentation
# (about, entityType, mapKey) or are deliberately not enforced: "ignorable"
# (see kmsg.h: a field absent from the version being encoded is always
# skipped) and "zeroCopy" (decoding is always zero-copy here).
FIELD_KEYS = {
    "name", "type", "versions", "nullableVersions", "default", "fields", "tag",
    "taggedVersions", "flexibleVersions", "about", "entityType", "mapKey",
    "ignorable", "zeroCopy",
}
TOP_KEYS = {
    "apiKey", "type", "name", "validVersions", "flexibleVersions", "fields",
    "commonStructs", "listeners", "deprecatedVersions", "latestVersionUnstable",
}


class SchemaError(Exception):
    pass


def load_schema(schema_dir, name):
    path = os.path.join(schema_dir, name + ".json")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # The schemas use whole-line // comments only; a // inside a string (a URL
    # in an "about") must survive, so strip only lines that start with one.
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    return json.loads(text)


def parse_versions(text, what):
    """'3+' -> (3, VMAX), '3-5' -> (3, 5), '3' -> (3, 3), 'none' -> None."""
    text = text.strip()
    if text == "none":
        return None
    m = re.fullmatch(r"(\d+)\+", text)
    if m:
        return (int(m.group(1)), VMAX)
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise SchemaError("%s: empty version range %r" % (what, text))
        return (lo, hi)
    m = re.fullmatch(r"\d+", text)
    if m:
        return (int(text), int(text))
    raise SchemaError("%s: bad version range %r" % (what, text))


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def fmt_versions(v):
    if v is None:
        return "none"
    if v[1] == VMAX:
        return "v%d+" % v[0]
    if v[0] == v[1]:
        return "v%d" % v[0]
    return "v%d-%d" % v


class Field:
    pass


class Struct:
    def __init__(self, cname, path):
        self.cname = cname  # C struct tag without "struct "
        self.path = path  # where it sits in the schema, for comments
        self.fields = []
        self.local = None  # snake name within its message; None for the message
        self.short = cname[len("kmsg_"):]  # its field table is <short>_fields


class Message:
    """One schema file turned into structs, children before parents."""

    def __init__(self, schema, flexible):
        self.schema = schema
        self.name = schema["name"]
        self.prefix = "kmsg_" + snake(self.name)
        self.valid = parse_versions(schema["validVersions"], self.name)
        if schema.get("latestVersionUnstable", False):
            # Kafka does not serve an unstable latest version by default; nor do we.
            self.valid = (self.valid[0], self.valid[1] - 1)
        self.flexible = flexible
        self.structs = []  # post-order: every struct after the structs it contains
        self.by_name = {}
        self.common = {c["name"]: c for c in schema.get("commonStructs", [])}
        for key in schema:
            if key not in TOP_KEYS:
                raise SchemaError("%s: unknown key %r" % (self.name, key))
        self.root = self.build_struct(self.prefix, self.name, schema["fields"])

    def struct_for(self, type_name, spec, path):
        """The Struct of a field's struct type: defined inline or in commonStructs."""
        if type_name in self.by_name:
            if "fields" in spec:
                raise SchemaError("%s: struct %s defined twice" % (path, type_name))
            return self.by_name[type_name]
        if "fields" in spec:
            fields = spec["fields"]
        elif type_name in self.common:
            fields = self.common[type_name]["fields"]
        else:
            raise SchemaError("%s: struct type %s has no definition" % (path, type_name))
        st = self.build_struct(self.prefix + "_" + snake(type_name), path, fields)
        st.local = snake(type_name)
        self.by_name[type_name] = st
        return st

    def build_struct(self, cname, path, specs):
        st = Struct(cname, path)
        if not specs:
            raise SchemaError("%s: empty structs are not supported" % path)
        seen = set()
        for spec in specs:
            f = self.build_field(spec, path)
            if f.cname in seen:
                raise SchemaError("%s: two fields named %s" % (path, f.cname))
            seen.add(f.cname)
            st.fields.append(f)
        tags = [f.tag for f in st.fields if f.tag >= 0]
        if len(tags) != len(set(tags)):
            raise SchemaError("%s: duplicate tags %r" % (path, tags))
        self.structs.append(st)
        return st

    def build_field(self, spec, parent_path):
        for key in spec:
            if key not in FIELD_KEYS:
                raise SchemaError("%s.%s: unknown key %r" % (parent_path, spec.get("name"), key))
        f = Field()
        f.name = spec["name"]
        f.cname = snake(f.name)
        path = parent_path + "." + f.name
        f.versions = parse_versions(spec["versions"], path)
        if f.versions is None:
            raise SchemaError("%s: a field must exist in some version" % path)
        f.nullable = parse_versions(spec.get("nullableVersions", "none"), path)
        f.noflex = False
        if "flexibleVersions" in spec:
            # Only the header's ClientId overrides flexibility, and only to keep
            # its old-style encoding; anything else would need engine support.
            if spec["flexibleVersions"] != "none":
                raise SchemaError("%s: field flexibleVersions other than none" % path)
            f.noflex = True
        f.tag = -1
        if "tag" in spec:
            f.tag = int(spec["tag"])
            tagged = parse_versions(spec.get("taggedVersions", "none"), path)
            # The engine treats a tagged field as tagged in every version it
            # exists in; every schema so far is written that way.
            if tagged != f.versions:
                raise SchemaError("%s: taggedVersions differ from versions" % path)
            if self.flexible is None or f.versions[0] < self.flexible[0]:
                raise SchemaError("%s: tagged in a non-flexible version" % path)
            if f.tag < 0 or f.tag > 2**31 - 1:
                raise SchemaError("%s: bad tag" % path)
        elif "taggedVersions" in spec:
            raise SchemaError("%s: taggedVersions without a tag" % path)

        t = spec["type"]
        f.array = t.startswith("[]")
        base = t[2:] if f.array else t
        f.sub = None
        if base in PRIMITIVES:
            f.base = base
            if "fields" in spec:
                raise SchemaError("%s: a %s with fields" % (path, t))
            if f.array and base == "records":
                raise SchemaError("%s: arrays of records are not supported" % path)
        elif re.fullmatch(r"[A-Z][A-Za-z0-9]*", base):
            f.base = "struct"
            f.sub = self.struct_for(base, spec, path)
        else:
            raise SchemaError("%s: unknown type %r" % (path, t))
        if f.nullable is not None and not f.array and base not in NULLABLE_TYPES:
            raise SchemaError("%s: nullable %s is not supported" % (path, t))
        f.default = self.parse_default(spec, f, path)
        return f

    def parse_default(self, spec, f, path):
        """The value of the descriptor's default column (see kmsg.h)."""
        d = spec.get("default")
        if isinstance(d, str):
            d = d.strip()
        if f.array or f.base in ("string", "bytes", "records"):
            # Default lengths: -1 for a null default, 0 for empty.
            if d is None or d == "":
                return 0
            if d == "null":
                if f.nullable is None:
                    raise SchemaError("%s: null default on a non-nullable field" % path)
                return -1
            raise SchemaError("%s: unsupported default %r" % (path, d))
        if f.base == "struct" or f.base == "uuid":
            if d is not None:
                raise SchemaError("%s: unsupported default %r" % (path, d))
            return 0
        if f.base == "bool":
            if d is None or d is False or d == "false":
                return 0
            if d is True or d == "true":
                return 1
            raise SchemaError("%s: bad bool default %r" % (path, d))
        if f.base == "float64":
            if d is None or float(d) == 0.0:
                return 0
            raise SchemaError("%s: non-zero float default is not supported" % path)
        if d is None:
            return 0
        v = int(d, 0) if isinstance(d, str) else int(d)
        lo, hi = PRIMITIVES[f.base][2]
        if not lo <= v <= hi:
            raise SchemaError("%s: default %d out of range" % (path, v))
        return v


def c_literal(v):
    if v == -(2**63):
        return "INT64_MIN"
    if v < -(2**31) or v > 2**31 - 1:
        return "INT64_C(%d)" % v
    return str(v)


def member_comment(f):
    parts = [fmt_versions(f.versions)]
    if f.nullable is not None:
        parts.append("nullable " + fmt_versions(f.nullable))
    if f.tag >= 0:
        parts.append("tag %d" % f.tag)
    if f.default != 0 and f.base not in ("struct",):
        if f.array or f.base in NULLABLE_TYPES:
            parts.append("default null")
        elif f.base == "bool":
            parts.append("default true")
        else:
            parts.append("default %d" % f.default)
    if f.noflex:
        parts.append("never compact")
    return ", ".join(parts)


def emit_struct_decl(out, st):
    out.append("/* %s */" % st.path)
    out.append("struct %s {" % st.cname)
    for f in st.fields:
        if f.array:
            item = "struct " + f.sub.cname if f.sub else PRIMITIVES[f.base][0]
            if f.base == "uuid":
                item = "uint8_t[16]"
            out.append("    /* items: %s */" % item)
            out.append("    struct karray %s; /* %s */" % (f.cname, member_comment(f)))
        elif f.sub:
            out.append("    struct %s %s; /* %s */" % (f.sub.cname, f.cname, member_comment(f)))
        elif f.base == "uuid":
            out.append("    uint8_t %s[16]; /* %s */" % (f.cname, member_comment(f)))
        else:
            ctype = PRIMITIVES[f.base][0]
            out.append("    %s %s; /* %s */" % (ctype, f.cname, member_comment(f)))
    out.append("};")
    out.append("")


def desc_name(st):
    return st.cname + "_desc"


def emit_struct_tables(out, msg, st):
    fields_name = st.short + "_fields"
    out.append("/* %s */" % st.path)
    out.append("#define S struct %s" % st.cname)
    out.append("static const struct kmsg_field %s[] = {" % fields_name)
    for f in st.fields:
        ftype = "KMSG_STRUCT" if f.sub else PRIMITIVES[f.base][1]
        flags = []
        if f.array:
            flags.append("ARRAY")
        if f.noflex:
            flags.append("KMSG_F_NOFLEX")
        nullable = "NONNULL"
        if f.nullable is not None:
            nullable = "%d, %s" % (f.nullable[0], vstr(f.nullable[1]))
        sub = "SUB(%s)" % f.sub.local if f.sub else "NULL"
        row = "{%s, %s, %d, %s, %s, %d, F(%s), %s, %s}," % (
            ftype, "|".join(flags) or "0", f.versions[0], vstr(f.versions[1]), nullable,
            f.tag, f.cname, sub, c_literal(f.default))
        comment = "/* %s */" % f.name
        if 4 + len(comment) + 1 + len(row) <= 100:
            out.append("    %s %s" % (comment, row))
        else:
            out.append("    " + comment)
            out.append("    " + row)
    out.append("};")
    flex = msg.flexible[0] if msg.flexible else VMAX
    out.append('const struct kmsg_desc %s = DESC("%s", %s, %d, %d, %s);' % (
        desc_name(st), st.path, fields_name, msg.valid[0], msg.valid[1], vstr(flex)))
    out.append("#undef S")
    out.append("")


def vstr(v):
    return "VMAX" if v == VMAX else str(v)


def api_enum_name(base):
    return "KMSG_API_" + snake(base).upper()


HEADER_PREAMBLE = """/* SPDX-License-Identifier: Apache-2.0 */
/*
 * generated by scripts/gen-codec.py from Kafka's message schemas; do not edit.
 *
 * The C form of every message Sluice speaks: one struct per message and per
 * nested struct, field names in snake_case of the schema's names, members in
 * schema order. The comment after each member gives the versions it exists
 * in; a member absent from a version holds its default after decoding and is
 * not written when encoding. Included by proto/kmsg.h, which defines the
 * member types (struct kstr, kbytes, karray) and the engine.
 */
#ifndef SL_PROTO_KMSG_GEN_H
#define SL_PROTO_KMSG_GEN_H

#ifndef SL_PROTO_KMSG_H
#error "include proto/kmsg.h, not proto/kmsg_gen.h"
#endif
"""

SOURCE_PREAMBLE = """/* SPDX-License-Identifier: Apache-2.0 */
/*
 * generated by scripts/gen-codec.py from Kafka's message schemas; do not edit.
 *
 * One field-descriptor table per struct of proto/kmsg_gen.h, read by the
 * engine in proto/kmsg.c. A row is one field, in schema order:
 *
 *   {type, flags, versions min, max, nullable versions min, max, tag,
 *    offset in the struct, descriptor of the nested struct, default}
 *
 * VMAX is an open-ended range ("3+"); NONNULL is "never nullable"; a tag of
 * -1 marks a field that is not tagged. The default of a string, bytes or array
 * is -1 for null and 0 for empty. A struct's descriptor comes before the
 * tables that refer to it. S names the struct the current table describes;
 * SUB(x) is the descriptor of the current message's struct x.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"
#include "proto/kmsg.h"

#define VMAX     KMSG_VERSION_MAX
#define NONNULL  -1, -1
#define ARRAY    KMSG_F_ARRAY
#define F(field) offsetof(S, field)
/* A struct's descriptor: its name, field table and C size, and the version
 * range and first flexible version of its message. */
#define DESC(name, fields, min_version, max_version, flexible_min)                                 \
    {(name), (fields), SL_ARRAY_LEN(fields), sizeof(S), (min_version), (max_version),           \
     (flexible_min)}
"""


def generate(schema_dir):
    msgs = []
    apis = []
    for base, key in MESSAGES:
        pair = []
        for kind in ("Request", "Response"):
            schema = load_schema(schema_dir, base + kind)
            if schema.get("apiKey") != key or schema.get("type") != kind.lower():
                raise SchemaError("%s%s: expected %s key %d" % (base, kind, kind.lower(), key))
            flex = parse_versions(schema["flexibleVersions"], base + kind)
            pair.append(Message(schema, flex))
        req, resp = pair
        if req.valid != resp.valid or req.flexible != resp.flexible:
            raise SchemaError("%s: request and response version ranges differ" % base)
        msgs.extend(pair)
        apis.append((key, base, req, resp))
    headers = []
    for name in HEADERS:
        schema = load_schema(schema_dir, name)
        if schema.get("type") != "header":
            raise SchemaError("%s: not a header schema" % name)
        m = Message(schema, parse_versions(schema["flexibleVersions"], name))
        headers.append(m)

    h = [HEADER_PREAMBLE]
    h.append("enum kmsg_api_key {")
    for key, base, _, _ in apis:
        h.append("    %s = %d," % (api_enum_name(base), key))
    h.append("};")
    h.append("")
    h.append("/* Entries of kmsg_apis[] (proto/kmsg_gen.c), in order of API key. */")
    h.append("#define KMSG_API_COUNT %d" % len(apis))
    h.append("")
    for m in headers + msgs:
        h.append("/* ---- %s: versions %d-%d, flexible %s ---- */" % (
            m.name, m.valid[0], m.valid[1], fmt_versions(m.flexible)))
        h.append("")
        for st in m.structs:
            emit_struct_decl(h, st)
    h.append("/* Descriptors of every struct above, for kmsg_decode, kmsg_encode, kmsg_init. */")
    for m in headers + msgs:
        for st in m.structs:
            h.append("extern const struct kmsg_desc %s;" % desc_name(st))
    h.append("extern const struct kmsg_api kmsg_apis[KMSG_API_COUNT];")
    h.append("")
    h.append("#endif")

    c = [SOURCE_PREAMBLE]
    for m in headers + msgs:
        c.append("/* ---- %s ---- */" % m.name)
        c.append("")
        c.append("#define SUB(name) (&%s_##name##_desc)" % m.prefix)
        c.append("")
        for st in m.structs:
            emit_struct_tables(c, m, st)
        c.append("#undef SUB")
        c.append("")
    c.append("const struct kmsg_api kmsg_apis[KMSG_API_COUNT] = {")
    for key, base, req, resp in sorted(apis):
        flex = req.flexible[0] if req.flexible else VMAX
        c.append('    {%s, "%s", &%s_desc, &%s_desc, %d, %d, %s},' % (
            api_enum_name(base), base, req.prefix, resp.prefix, req.valid[0], req.valid[1],
            vstr(flex)))
    c.append("};")
    return "\n".join(h) + "\n", "\n".join(c) + "\n"


def main():
    schema_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SCHEMA_DIR
    try:
        header, source = generate(schema_dir)
    except (SchemaError, OSError, ValueError) as e:
        sys.exit("gen-codec: %s" % e)
    for name, text in (("kmsg_gen.h", header), ("kmsg_gen.c", source)):
        path = os.path.join(ROOT, "proto", name)
        # Format here so that a rerun reproduces the committed files byte for
        # byte, and leave an unchanged file alone so that make rebuilds nothing.
        if shutil.which("clang-format"):
            text = subprocess.run(
                ["clang-format", "--assume-filename=" + path], input=text, cwd=ROOT,
                check=True, capture_output=True, text=True).stdout
        else:
            print("gen-codec: clang-format not found; run it on proto/%s" % name)
        old = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                old = f.read()
        if old == text:
            print("gen-codec: proto/%s unchanged" % name)
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print("gen-codec: wrote proto/%s" % name)


if __name__ == "__main__":
    main()
