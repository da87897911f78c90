"""doctor_tools.py: shared helpers of the smtp-doctor tests: running the program (bounded, with
its exit status and outputs, failing on a sanitizer report), and a small JSON Schema checker
(standard library only) for validating `smtp-doctor --json` against docs/smtp-doctor.schema.json.

The checker implements the keywords the schema uses (type, required, properties,
additionalProperties, items, enum, const, minimum, maximum, minLength, maxLength, minItems,
maxItems, pattern, $ref to local definitions, anyOf, oneOf, allOf, not) and treats annotations
(title, description, examples, default, format, $schema, $id, $comment) as such. Any other
keyword raises SchemaError, so a schema the checker does not understand fails the test instead
of passing silently.
"""

import json
import os
import re
import subprocess

from .harness import BUILD, REPO, SANITIZER_MARKERS, json_strings

DOCTOR = os.path.join(BUILD, "smtp-doctor")
SCHEMA_PATH = os.environ.get("SMTP_DOCTOR_SCHEMA") or os.path.join(REPO, "docs",
                                                                  "smtp-doctor.schema.json")
DOC_PATH = os.path.join(REPO, "docs", "smtp-doctor.md")
RUN_TIMEOUT = 30.0


def require_doctor():
    if not os.access(DOCTOR, os.X_OK):
        raise AssertionError("%s is not built (SUBMITD_BUILD=%s)" % (DOCTOR, BUILD))


class Run:
    """One finished smtp-doctor run."""

    def __init__(self, argv, proc):
        self.argv = argv
        self.code = proc.returncode
        self.out = proc.stdout.decode("utf-8", "replace")
        self.err = proc.stderr.decode("utf-8", "replace")

    @property
    def text(self):
        return self.out + self.err

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError("--json output does not parse (%s): %r" % (e, self.out[:2000]))

    def __repr__(self):
        return "smtp-doctor %s -> exit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.argv), self.code, self.out[-6000:], self.err[-3000:])


def run_doctor(*args, input=None, timeout=RUN_TIMEOUT, env=None):
    """Runs build/smtp-doctor with args (stdin: input or /dev/null). Raises AssertionError on a
    sanitizer report or when it does not finish in time."""
    require_doctor()
    argv = [str(a) for a in args]
    e = dict(os.environ)
    e.pop("SSL_CERT_FILE", None)
    e["NO_COLOR"] = "1"
    e.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run([DOCTOR] + argv, input=data,
                              stdin=None if data is not None else subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, env=e)
    except subprocess.TimeoutExpired:
        raise AssertionError("smtp-doctor %s did not finish within %.0f s"
                             % (" ".join(argv), timeout))
    r = Run(argv, proc)
    for marker in SANITIZER_MARKERS:
        if marker in r.err:
            raise AssertionError("sanitizer report from smtp-doctor:\n%r" % r)
    return r


def json_text(value):
    """Every string of a JSON document joined by newlines (for 'the document mentions X')."""
    return "\n".join(json_strings(value))


# --- JSON Schema (the subset docs/smtp-doctor.schema.json uses) ---

class SchemaError(Exception):
    """The schema itself uses something this checker does not implement."""


ANNOTATIONS = {"title", "description", "examples", "default", "format", "$schema", "$id",
               "$comment", "readOnly", "writeOnly", "deprecated"}
KEYWORDS = {"type", "required", "properties", "additionalProperties", "items", "enum", "const",
            "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
            "maxLength", "minItems", "maxItems", "pattern", "$ref", "anyOf", "oneOf", "allOf",
            "not", "definitions", "$defs", "uniqueItems", "patternProperties"}


def _type_ok(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise SchemaError("unknown type %r" % t)


def _resolve(root, ref):
    if not ref.startswith("#"):
        raise SchemaError("only local $ref is supported: %r" % ref)
    node = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SchemaError("$ref %r does not resolve" % ref)
        node = node[part]
    return node


def validate(instance, schema, root=None, path="$", depth=0):
    """The list of violations of schema by instance (empty when valid)."""
    if root is None:
        root = schema
    if depth > 64:
        raise SchemaError("schema nesting too deep (a $ref loop?) at " + path)
    if schema is True or schema == {}:
        return []
    if schema is False:
        return ["%s: not allowed here" % path]
    if not isinstance(schema, dict):
        raise SchemaError("schema at %s is not an object" % path)
    unknown = set(schema) - KEYWORDS - ANNOTATIONS
    if unknown:
        raise SchemaError("unsupported keyword(s) %s at %s" % (sorted(unknown), path))
    errors = []
    if "$ref" in schema:
        errors += validate(instance, _resolve(root, schema["$ref"]), root, path, depth + 1)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(instance, t) for t in types):
            return errors + ["%s: %r is not of type %s" % (path, _short(instance), types)]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append("%s: %r not in %r" % (path, _short(instance), schema["enum"]))
    if "const" in schema and instance != schema["const"]:
        errors.append("%s: %r is not %r" % (path, _short(instance), schema["const"]))
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append("%s: %r < minimum %r" % (path, instance, schema["minimum"]))
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append("%s: %r > maximum %r" % (path, instance, schema["maximum"]))
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            errors.append("%s: %r <= exclusiveMinimum" % (path, instance))
        if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
            errors.append("%s: %r >= exclusiveMaximum" % (path, instance))
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            errors.append("%s: string shorter than %d" % (path, schema["minLength"]))
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append("%s: string longer than %d" % (path, schema["maxLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append("%s: %r does not match %r" % (path, _short(instance),
                                                        schema["pattern"]))
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            errors.append("%s: fewer than %d items" % (path, schema["minItems"]))
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append("%s: more than %d items" % (path, schema["maxItems"]))
        if schema.get("uniqueItems"):
            seen = [json.dumps(v, sort_keys=True) for v in instance]
            if len(set(seen)) != len(seen):
                errors.append("%s: items not unique" % path)
        if "items" in schema:
            items = schema["items"]
            if isinstance(items, list):
                raise SchemaError("tuple 'items' is not supported at " + path)
            for i, v in enumerate(instance):
                errors += validate(v, items, root, "%s[%d]" % (path, i), depth + 1)
    if isinstance(instance, dict):
        for name in schema.get("required", []):
            if name not in instance:
                errors.append("%s: required property %r missing" % (path, name))
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for name, v in instance.items():
            sub = "%s.%s" % (path, name)
            matched = False
            if name in props:
                matched = True
                errors += validate(v, props[name], root, sub, depth + 1)
            for pat, psch in patterns.items():
                if re.search(pat, name):
                    matched = True
                    errors += validate(v, psch, root, sub, depth + 1)
            if not matched and "additionalProperties" in schema:
                errors += validate(v, schema["additionalProperties"], root, sub, depth + 1)
    if "allOf" in schema:
        for s in schema["allOf"]:
            errors += validate(instance, s, root, path, depth + 1)
    if "anyOf" in schema:
        if not any(not validate(instance, s, root, path, depth + 1) for s in schema["anyOf"]):
            errors.append("%s: matches none of anyOf" % path)
    if "oneOf" in schema:
        n = sum(1 for s in schema["oneOf"] if not validate(instance, s, root, path, depth + 1))
        if n != 1:
            errors.append("%s: matches %d of oneOf (exactly 1 required)" % (path, n))
    if "not" in schema and not validate(instance, schema["not"], root, path, depth + 1):
        errors.append("%s: matches 'not'" % path)
    return errors


def _short(v):
    s = json.dumps(v)
    return s if len(s) < 80 else s[:77] + "..."


def load_schema():
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def check_schema_keywords(schema, path="$"):
    """Walks the whole schema once and raises SchemaError for anything the checker would not
    understand, even in branches no test document reaches."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError("schema at %s is not an object" % path)
    unknown = set(schema) - KEYWORDS - ANNOTATIONS
    if unknown:
        raise SchemaError("unsupported keyword(s) %s at %s" % (sorted(unknown), path))
    for key in ("properties", "patternProperties", "definitions", "$defs"):
        for name, sub in schema.get(key, {}).items():
            check_schema_keywords(sub, "%s.%s.%s" % (path, key, name))
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), (dict, bool)):
            check_schema_keywords(schema[key], "%s.%s" % (path, key))
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            check_schema_keywords(sub, "%s.%s[%d]" % (path, key, i))
    if "type" in schema:
        for t in schema["type"] if isinstance(schema["type"], list) else [schema["type"]]:
            _type_ok(None, t)


# --- reading a --json document (the shape of docs/smtp-doctor.schema.json) ---

def steps_of(doc):
    """{step name: step object} of a --json document, and the names in order."""
    steps = doc.get("steps") or []
    return {s.get("name"): s for s in steps}, [s.get("name") for s in steps]


def diagnoses_of(doc):
    return doc.get("diagnosis") or []


def fix_commands(doc):
    """Every fix command the document names (diagnoses' fixes and client-side fixes)."""
    out = []
    for d in diagnoses_of(doc):
        if d.get("lookup"):
            out.append(d["lookup"])
        for e in d.get("entries") or []:
            for f in e.get("fixes") or []:
                if f.get("command"):
                    out.append(f["command"])
    for s in doc.get("steps") or []:
        if s.get("fix"):
            out.append(s["fix"])
    return out


def entry_ids(doc):
    return [e.get("id") for d in diagnoses_of(doc) for e in d.get("entries") or []]
