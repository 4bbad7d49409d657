"""JSON answers: the response parses as JSON, and optionally fits a JSON schema."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from tradeoff.evals.errors import UsageError
from tradeoff.evals.graders.base import Grader, Item, Score, register_grader

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def parse_json(response: str) -> tuple[Any, str | None]:
    """(value, None) if the response (or its ```json fence) parses, else (None, why)."""
    fenced = _FENCE.search(response)
    text = fenced.group(1) if fenced else response
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"


@register_grader("json_valid")
class JsonValidGrader(Grader):
    """1 if the response is valid JSON. Reference-free."""

    needs_reference = False

    def grade(self, response: str, item: Item) -> Score:
        _, why = parse_json(response)
        return Score(0.0, why) if why else Score(1.0)


@register_grader("json_schema")
class JsonSchemaGrader(Grader):
    """1 if the response is JSON valid against the schema (option `schema`, else the reference
    as JSON). The schema describes the item, not its answer, so this is reference-free."""

    needs_reference = False

    def check(self) -> None:
        schema = self.options.get("schema")
        if schema is not None:
            try:
                jsonschema.validators.validator_for(schema).check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise UsageError(f"grader json_schema: invalid schema: {exc.message}") from None

    def grade(self, response: str, item: Item) -> Score:
        schema = self.option(item, "schema")
        if schema is None and item.reference:
            schema, why = parse_json(item.reference)
            if why:
                return Score(0.0, f"reference is not a JSON schema ({why})")
        if not isinstance(schema, dict):
            return Score(0.0, "no JSON schema for this item")
        value, why = parse_json(response)
        if why:
            return Score(0.0, why)
        errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
        if errors:
            return Score(0.0, f"schema: {errors[0].message}")
        return Score(1.0)
