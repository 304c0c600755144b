"""A JSON Schema (draft 2020-12) of an xAPI 1.0.3 statement as a client sends it, written for spinesim's tests
from the specification's text: ADL, "xAPI Specification 1.0.3", Part Two: Experience API Data (xAPI-Data.md,
github.com/adlnet/xAPI-Spec, tag xAPI-1.0.3; Apache-2.0). The section each rule comes from is named beside it.

It holds what the specification says an LRS MUST reject (Data §2.2: properties the specification does not
define, outside extensions; an Agent without exactly one inverse functional identifier; a score outside
its range; a duration or timestamp not in ISO 8601; language maps keyed by other than RFC 5646 tags; ids
that are not UUIDs or IRIs). The rules JSON Schema cannot say (raw within min and max; ``platform`` and
``revision`` only with an Activity object) are :func:`cross_field_errors`. SubStatements and attachments,
which spinesim never sends, are not allowed here.
"""

from __future__ import annotations

# An absolute IRI starts with its scheme (RFC 3987 §2.2, RFC 3986 §3.1); an IRL is one that resolves (http/s).
_IRI = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$"}
_IRL = {"type": "string", "pattern": r"^https?://\S+$"}
# RFC 4122 UUIDs, any version, the variant the specification requires (Data §4.5, "UUID").
_UUID = {"type": "string",
         "pattern": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"}
# ISO 8601 timestamps (Data §4.5, "ISO 8601 Timestamps", with a zone or Z) and durations (§4.6).
_TIMESTAMP = {"type": "string",
              "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"}
_DURATION = {"type": "string",
             "pattern": r"^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"}
# Language maps (Data §4.2): RFC 5646 tags to strings.
_LANGUAGE_TAG = r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"
_LANGUAGE_MAP = {"type": "object", "propertyNames": {"pattern": _LANGUAGE_TAG},
                 "additionalProperties": {"type": "string"}, "minProperties": 1}
# Extensions (Data §4.1): keys are IRIs, values any JSON.
_EXTENSIONS = {"type": "object", "propertyNames": {"pattern": _IRI["pattern"]}}

_ACCOUNT = {"type": "object", "required": ["homePage", "name"], "additionalProperties": False,
            "properties": {"homePage": _IRL, "name": {"type": "string", "minLength": 1}}}
_IDENTIFIERS = ("mbox", "mbox_sha1sum", "openid", "account")
# An Agent has exactly one inverse functional identifier (Data §2.4.2.1, §2.4.2.3).
_AGENT = {"type": "object", "additionalProperties": False,
          "properties": {"objectType": {"const": "Agent"}, "name": {"type": "string"},
                         "mbox": {"type": "string", "pattern": r"^mailto:\S+@\S+$"},
                         "mbox_sha1sum": {"type": "string", "pattern": r"^[0-9a-f]{40}$"},
                         "openid": _IRI, "account": _ACCOUNT},
          "oneOf": [{"required": [key]} for key in _IDENTIFIERS]}
# A Group (Data §2.4.2.2): anonymous (members, no identifier) or identified.
_GROUP = {"type": "object", "required": ["objectType"], "additionalProperties": False,
          "properties": {"objectType": {"const": "Group"}, "name": {"type": "string"},
                         "member": {"type": "array", "items": _AGENT},
                         "mbox": _AGENT["properties"]["mbox"], "mbox_sha1sum": _AGENT["properties"]["mbox_sha1sum"],
                         "openid": _IRI, "account": _ACCOUNT}}
_ACTOR = {"oneOf": [_AGENT, _GROUP]}
# Verbs (Data §2.4.3).
_VERB = {"type": "object", "required": ["id"], "additionalProperties": False,
         "properties": {"id": _IRI, "display": _LANGUAGE_MAP}}
# Activities (Data §2.4.4.1) and their definitions (§2.4.4.1, Activity Definition, interactions included).
_INTERACTION_COMPONENTS = {"type": "array", "items": {
    "type": "object", "required": ["id"], "additionalProperties": False,
    "properties": {"id": {"type": "string"}, "description": _LANGUAGE_MAP}}}
_DEFINITION = {"type": "object", "additionalProperties": False, "properties": {
    "name": _LANGUAGE_MAP, "description": _LANGUAGE_MAP, "type": _IRI, "moreInfo": _IRL, "extensions": _EXTENSIONS,
    "interactionType": {"enum": ["true-false", "choice", "fill-in", "long-fill-in", "matching", "performance",
                                 "sequencing", "likert", "numeric", "other"]},
    "correctResponsesPattern": {"type": "array", "items": {"type": "string"}},
    **{key: _INTERACTION_COMPONENTS for key in ("choices", "scale", "source", "target", "steps")}}}
_ACTIVITY = {"type": "object", "required": ["id"], "additionalProperties": False,
             "properties": {"objectType": {"const": "Activity"}, "id": _IRI, "definition": _DEFINITION}}
_STATEMENT_REF = {"type": "object", "required": ["objectType", "id"], "additionalProperties": False,
                  "properties": {"objectType": {"const": "StatementRef"}, "id": _UUID}}
_ACTIVITIES = {"oneOf": [_ACTIVITY, {"type": "array", "items": _ACTIVITY}]}
# Results (Data §2.4.5): the scaled score in -1..1, min < max.
_RESULT = {"type": "object", "additionalProperties": False, "properties": {
    "score": {"type": "object", "additionalProperties": False, "minProperties": 1,
              "properties": {"scaled": {"type": "number", "minimum": -1, "maximum": 1}, "raw": {"type": "number"},
                             "min": {"type": "number"}, "max": {"type": "number"}}},
    "success": {"type": "boolean"}, "completion": {"type": "boolean"}, "response": {"type": "string"},
    "duration": _DURATION, "extensions": _EXTENSIONS}}
# Context (Data §2.4.6).
_CONTEXT = {"type": "object", "additionalProperties": False, "properties": {
    "registration": _UUID, "instructor": _ACTOR, "team": _GROUP,
    "contextActivities": {"type": "object", "additionalProperties": False,
                          "properties": {key: _ACTIVITIES for key in ("parent", "grouping", "category", "other")}},
    "revision": {"type": "string"}, "platform": {"type": "string"},
    "language": {"type": "string", "pattern": _LANGUAGE_TAG}, "statement": _STATEMENT_REF,
    "extensions": _EXTENSIONS}}

STATEMENT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "xAPI 1.0.3 statement (Data §2.4), as a client sends it",
    "type": "object", "required": ["actor", "verb", "object"], "additionalProperties": False,
    "properties": {"id": _UUID, "actor": _ACTOR, "verb": _VERB,
                   "object": {"oneOf": [_ACTIVITY, _AGENT, _GROUP, _STATEMENT_REF]},
                   "result": _RESULT, "context": _CONTEXT, "timestamp": _TIMESTAMP, "stored": _TIMESTAMP,
                   "authority": _ACTOR,
                   # Data §2.4.10: a version starting "1.0." (or 1.0.0's "1.0").
                   "version": {"type": "string", "pattern": r"^1\.0(\.\d+)?$"}}}


def cross_field_errors(statement: dict) -> list[str]:
    """What the specification requires across fields, beyond the schema: a raw score within min and max
    and min below max (Data §2.4.5.1); ``revision`` and ``platform`` only when the object is an Activity
    (§2.4.6.1)."""
    errors = []
    score = statement.get("result", {}).get("score", {})
    low, high = score.get("min"), score.get("max")
    if low is not None and high is not None and not low < high:
        errors.append(f"score min {low} is not below max {high}")
    raw = score.get("raw")
    if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
        errors.append(f"raw score {raw} outside [{low}, {high}]")
    is_activity = statement.get("object", {}).get("objectType", "Activity") == "Activity"
    for key in ("revision", "platform"):
        if key in statement.get("context", {}) and not is_activity:
            errors.append(f"context.{key} with an object that is not an Activity")
    return errors
