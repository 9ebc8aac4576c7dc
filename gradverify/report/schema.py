"""The report document's JSON Schema (draft 2020-12) and a small validator for it.

``SCHEMA`` is the documented layout of ``report.json`` (print it with ``gradverify report
--schema``). ``validate(doc)`` checks a document against it with a built-in interpreter of the
subset of JSON Schema that ``SCHEMA`` uses (``type``, ``enum``, ``const``, ``pattern``,
``minimum``, ``properties``, ``required``, ``additionalProperties``, ``items``, ``minItems``,
``anyOf``, ``allOf``, ``if``/``then``, local ``$ref``), so no ``jsonschema`` package is needed;
it then checks what a schema cannot say (one parameter row per parameter, the same sources in
every row). It returns a list of problems, each starting with the JSON path (``$.comparison…``);
an empty list means the document is valid.

Versioning: ``schema_version`` is ``"MAJOR.MINOR"``. A reader accepts any minor version of its
major version (minor versions only add optional keys) and refuses another major version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gradverify.report.document import SCHEMA_VERSION

__all__ = ["SCHEMA", "validate"]

_MAJOR = SCHEMA_VERSION.split(".")[0]


def _obj(required: list[str], properties: dict, *, extra: bool | dict = True, description: str = "") -> dict:
    out = {"type": "object", "required": required, "properties": properties, "additionalProperties": extra}
    if description:
        out["description"] = description
    return out


_NUM = {"$ref": "#/$defs/number"}
_NUM_OR_NULL = {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/number"}]}
_STR = {"type": "string"}
_BY_SOURCE = {"type": "object", "additionalProperties": {"$ref": "#/$defs/number"}}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://gradverify.invalid/report.schema.json",
    "title": "gradverify report",
    "description": "A verify run, a suite run or a grading batch: every gradient source's values, errors, "
                   "budgets, ratios and verdicts, the diagnosis, and how to reproduce it.",
    "type": "object",
    "required": ["schema_version", "kind", "title", "generator", "created", "command", "reproduce", "verdict",
                 "summary", "environment"],
    "properties": {
        "schema_version": {"type": "string", "pattern": rf"^{_MAJOR}\.[0-9]+$",
                           "description": f"MAJOR.MINOR; this version of gradverify writes {SCHEMA_VERSION} and reads {_MAJOR}.x"},
        "kind": {"enum": ["verify", "suite", "batch"]},
        "title": _STR,
        "generator": {"const": "gradverify"},
        "created": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", "description": "ISO 8601, UTC"},
        "command": {"type": "string", "description": "the command line that produced the report"},
        "reproduce": {"type": "string", "description": "a command that rebuilds the (failing) problem"},
        "verdict": {"enum": ["pass", "fail"]},
        "summary": {"type": "string", "description": "one line: who is wrong, where and by how much"},
        "environment": {"$ref": "#/$defs/environment"},
        "comparison": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/comparison"}]},
        "suite": {"$ref": "#/$defs/suite"},
        "batch": {"$ref": "#/$defs/batch"},
    },
    "allOf": [
        {"if": {"properties": {"kind": {"const": "verify"}}, "required": ["kind"]},
         "then": {"required": ["comparison"], "properties": {"comparison": {"$ref": "#/$defs/comparison"}}}},
        {"if": {"properties": {"kind": {"const": "suite"}}, "required": ["kind"]},
         "then": {"required": ["suite", "comparison"]}},
        {"if": {"properties": {"kind": {"const": "batch"}}, "required": ["kind"]},
         "then": {"required": ["batch"]}},
    ],
    "additionalProperties": True,
    "$defs": {
        "number": {"anyOf": [{"type": "number"}, {"enum": ["Infinity", "-Infinity", "NaN"]}],
                   "description": "a JSON number, or one of the strings Infinity, -Infinity, NaN"},
        "environment": _obj(["python", "platform", "packages"], {
            "python": _STR, "platform": _STR,
            "packages": {"type": "object", "additionalProperties": _STR,
                         "description": "package name -> version, or 'not installed'"}}),
        "problem": _obj(["network", "sizes", "activations", "output", "lambda", "regularization", "regularize_bias",
                         "m", "origin", "n_params"], {
            "network": {"type": "string", "description": "the compact spec, e.g. 3-5-3 or 4-8-2:tanh/softmax"},
            "sizes": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2},
            "activations": {"type": "array", "items": _STR},
            "output": _STR, "lambda": _NUM, "regularization": _STR, "regularize_bias": {"type": "boolean"},
            "m": {"type": "integer", "minimum": 1}, "origin": _STR, "n_params": {"type": "integer", "minimum": 1}}),
        "source": _obj(["kind", "cost", "detail"], {
            "kind": {"enum": ["exact", "float64", "numeric"]}, "cost": _NUM_OR_NULL, "detail": _STR,
            "seconds": _NUM}),
        "array_summary": _obj(["n", "off", "kinks", "worst", "worst_ratio"], {
            "n": {"type": "integer"}, "off": {"type": "integer"}, "kinks": {"type": "integer"}, "worst": _STR,
            "worst_ratio": _NUM}),
        "verdict": _obj(["ok", "referee", "n_off", "n_kinks", "cost_abs_err", "cost_ok", "worst", "worst_ratio", "arrays"], {
            "ok": {"type": "boolean"}, "referee": _STR, "n_off": {"type": "integer", "minimum": 0},
            "n_kinks": {"type": "integer", "minimum": 0}, "cost_abs_err": _NUM_OR_NULL,
            "cost_ok": {"type": ["boolean", "null"]}, "worst": {"type": ["string", "null"]}, "worst_ratio": _NUM_OR_NULL,
            "arrays": {"type": "object", "additionalProperties": {"$ref": "#/$defs/array_summary"}}},
            description="one judged source against its referee"),
        "finding": _obj(["kind", "message", "confidence", "where"], {
            "kind": _STR, "message": _STR, "confidence": {"type": "number", "minimum": 0},
            "where": {"type": "array", "items": _STR}}),
        "parameter": _obj(["name", "values", "budgets", "abs_err", "rel_err", "ratio", "status"], {
            "name": {"type": "string", "description": "W2[1,3], b1[0] … (0-based)"},
            "values": _BY_SOURCE, "budgets": _BY_SOURCE, "abs_err": _BY_SOURCE, "rel_err": _BY_SOURCE,
            "ratio": _BY_SOURCE,
            "status": {"type": "object", "additionalProperties": {"enum": ["ok", "off", "kink", "unchecked"]}}},
            description="one scalar parameter: values per source; errors, budget, ratio and status per judged source"),
        "layer": _obj(["layer", "theta", "weights", "bias", "shape"], {
            "layer": {"type": "integer", "minimum": 1}, "theta": _STR, "weights": _STR, "bias": _STR,
            "shape": {"type": "array", "items": {"type": "integer"}, "minItems": 2}},
            description="Θk = [bk | Wk]: the bias is column 0"),
        "step_curve": _obj(["name", "steps", "errors"], {
            "name": _STR, "steps": {"type": "array", "items": _NUM}, "errors": {"type": "array", "items": _NUM},
            "predicted": {"type": "array", "items": _NUM}, "estimates": {"type": "array", "items": _NUM},
            "reference": _NUM, "reference_source": _STR, "best_step": _NUM},
            description="central-difference error against step size for the worst parameter"),
        "comparison": _obj(["verdict", "summary", "referee", "relative_error", "problem", "sources", "verdicts",
                            "diagnoses", "notes", "parameters", "layers"], {
            "verdict": {"enum": ["pass", "fail"]}, "summary": _STR, "referee": _STR, "relative_error": _STR,
            "problem": {"$ref": "#/$defs/problem"},
            "sources": {"type": "object", "additionalProperties": {"$ref": "#/$defs/source"}},
            "verdicts": {"type": "object", "additionalProperties": {"$ref": "#/$defs/verdict"}},
            "diagnoses": {"type": "object", "additionalProperties": {"type": "array", "items": {"$ref": "#/$defs/finding"}}},
            "notes": {"type": "array", "items": _STR},
            "parameters": {"type": "array", "items": {"$ref": "#/$defs/parameter"}},
            "layers": {"type": "array", "items": {"$ref": "#/$defs/layer"}},
            "step_curve": {"$ref": "#/$defs/step_curve"},
            "parameters_shown": _obj(["complete", "rows", "of"], {
                "complete": {"type": "boolean"}, "rows": {"type": "integer", "minimum": 0}, "of": {"type": "integer", "minimum": 0},
                "values_file": {"anyOf": [{"type": "null"}, _STR]}, "rule": _STR},
                description="whether every parameter has a row; a large problem lists a selection (rule) and may point to "
                            "a compressed .npz with every value"),
            "heatmaps": {"type": "object", "description": "large problems: per judged source and layer, the ratio in the Θ "
                         "layout max-pooled to blocks", "additionalProperties": {"type": "object", "additionalProperties": _obj(
                             ["block", "shape", "grid"], {"block": {"type": "array", "items": {"type": "integer"}},
                                                          "shape": {"type": "array", "items": {"type": "integer"}},
                                                          "grid": {"type": "array", "items": {"type": "array", "items": _NUM}}})}},
            "probes": {"type": "object", "description": "signed random probes of whole gradients (sampled finite differences)"}},
            description="every source on one problem, judged (Comparison.to_dict plus the Θ layout)"),
        "suite_record": _obj(["spec", "n_params", "m", "origin", "verdict", "worst_ratio", "seconds", "error"], {
            "spec": _STR, "n_params": {"type": "integer"}, "m": {"type": "integer"}, "origin": _STR,
            "verdict": {"enum": ["pass", "fail", "error"]}, "worst_ratio": _NUM, "seconds": _NUM, "error": _STR}),
        "suite": _obj(["seed", "examples", "ok", "n_cases", "n_failed", "records", "failure_error", "seconds"], {
            "seed": {"type": "integer"}, "examples": {"type": "integer"}, "ok": {"type": "boolean"},
            "n_cases": {"type": "integer"}, "n_failed": {"type": "integer"}, "failure_error": _STR, "seconds": _NUM,
            "records": {"type": "array", "items": {"$ref": "#/$defs/suite_record"}}}),
        "batch_entry": _obj(["name", "verdict", "score", "max_score", "diagnosis"], {
            "name": _STR, "verdict": _STR, "score": _NUM, "max_score": _NUM,
            "diagnosis": {"type": "array", "items": _STR},
            "comparison": {"$ref": "#/$defs/comparison"}},
            description="one graded submission; other keys are kept as the grader wrote them"),
        "batch": _obj(["entries"], {"entries": {"type": "array", "items": {"$ref": "#/$defs/batch_entry"}}}),
    },
}


# ---- the interpreter ------------------------------------------------------------------------

_TYPES = {
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _resolve(ref: str) -> dict:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, not {ref!r}")
    node = SCHEMA
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _check(value, schema: dict, path: str, out: list[str]) -> None:
    """Append to ``out`` every way ``value`` at ``path`` violates ``schema``."""
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"]), path, out)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            out.append(f"{path}: expected {' or '.join(types)}, got {type(value).__name__} {_short(value)}")
            return
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: expected {schema['const']!r}, got {_short(value)}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: expected one of {', '.join(map(repr, schema['enum']))}; got {_short(value)}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{path}: {_short(value)} does not match {schema['pattern']}")
    if "minimum" in schema and _TYPES["number"](value) and value < schema["minimum"]:
        out.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if isinstance(value, Mapping):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing required key {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], f"{path}.{key}", out)
            elif extra is False:
                out.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                _check(item, extra, f"{path}.{key}", out)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{path}: expected at least {schema['minItems']} items, got {len(value)}")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], f"{path}[{i}]", out)
    if "anyOf" in schema:
        attempts = []
        for alt in schema["anyOf"]:
            errs: list[str] = []
            _check(value, alt, path, errs)
            if not errs:
                break
            attempts.append(errs)
        else:
            best = min(attempts, key=len)
            out.append(best[0] if len(best) == 1 else f"{path}: matches none of the allowed forms ({best[0]})")
    for sub in schema.get("allOf", []):
        if "if" in sub:
            probe: list[str] = []
            _check(value, sub["if"], path, probe)
            if not probe and "then" in sub:
                _check(value, sub["then"], path, out)
        else:
            _check(value, sub, path, out)


def _consistency(section: Mapping, path: str, out: list[str]) -> None:
    """What the schema cannot say about a comparison section."""
    problem, params = section.get("problem"), section.get("parameters")
    verdicts = section.get("verdicts")
    if not (isinstance(problem, Mapping) and isinstance(params, list) and isinstance(verdicts, Mapping)):
        return
    shown = section.get("parameters_shown")
    complete = not (isinstance(shown, Mapping) and shown.get("complete") is False)
    if isinstance(problem.get("n_params"), int) and complete and len(params) != problem["n_params"]:
        out.append(f"{path}.parameters: {len(params)} rows for {problem['n_params']} parameters")
    if not complete and isinstance(shown, Mapping) and shown.get("rows") != len(params):
        out.append(f"{path}.parameters: {len(params)} rows, but parameters_shown says {shown.get('rows')}")
    judged = set(verdicts)
    for i, row in enumerate(params):
        if isinstance(row, Mapping) and isinstance(row.get("status"), Mapping) and set(row["status"]) != judged:
            out.append(f"{path}.parameters[{i}].status: sources {sorted(row['status'])} differ from the judged "
                       f"sources {sorted(judged)}")
            break


def validate(doc) -> list[str]:
    """Every problem that keeps ``doc`` from being a valid report document (empty: valid).

    A foreign or wrongly versioned document gets one clear message rather than a long list.
    """
    if not isinstance(doc, Mapping):
        return [f"$: a report document is a JSON object, got {type(doc).__name__}"]
    if "schema_version" not in doc or "kind" not in doc:
        missing = [k for k in ("schema_version", "kind") if k not in doc]
        return [f"$: missing required key {missing[0]!r}: this is not a gradverify report "
                "(one is written by gradverify verify --report)"]
    version = doc["schema_version"]
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+", version):
        return [f"$.schema_version: expected a version string MAJOR.MINOR such as {SCHEMA_VERSION!r}, got {_short(version)}"]
    if version.split(".")[0] != _MAJOR:
        return [f"$.schema_version: version {version} is not supported; this gradverify reads {_MAJOR}.x "
                f"(it writes {SCHEMA_VERSION}). Re-create the report with this version, or use the gradverify that wrote it"]
    out: list[str] = []
    _check(doc, SCHEMA, "$", out)
    if isinstance(doc.get("comparison"), Mapping):
        _consistency(doc["comparison"], "$.comparison", out)
    batch = doc.get("batch")
    if isinstance(batch, Mapping) and isinstance(batch.get("entries"), list):
        for i, entry in enumerate(batch["entries"]):
            if isinstance(entry, Mapping) and isinstance(entry.get("comparison"), Mapping):
                _consistency(entry["comparison"], f"$.batch.entries[{i}].comparison", out)
    return out
