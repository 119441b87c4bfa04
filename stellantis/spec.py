"""The vendor's OpenAPI files as validators, for tests and tools (not used on the request path).

The files are YAML 1.1 in places where it matters: `on` and `No` read as booleans under
YAML 1.1 (that is why the `lights` member looks broken). We load them with YAML 1.2
booleans (only true/false), which is what the vendor meant.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml


class _Yaml12Loader(yaml.SafeLoader):
    pass


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

API_FILE = "api-b2b.yaml"
WEBHOOK_FILE = "api-b2b-webhook-template-v3.yaml"


def reference_dir() -> Path:
    from django.conf import settings

    return Path(settings.STELLANTIS_REFERENCE_DIR)


def available() -> bool:
    """Whether the vendor's files are here (they live beside the project, not in it)."""
    return (reference_dir() / API_FILE).exists() and (reference_dir() / WEBHOOK_FILE).exists()


@functools.cache
def load(filename: str) -> dict:
    with open(reference_dir() / filename, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def schema_errors(filename: str, schema_name: str, instance) -> list[str]:
    """Every way `instance` breaks `components.schemas[schema_name]` of the given file."""
    from openapi_schema_validator import OAS30Validator

    document = load(filename)
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    validator = OAS30Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(instance)]


def operation_response_schema(path: str, method: str, status: int) -> str | None:
    """The schema name of a documented response of the API file (following response refs)."""
    document = load(API_FILE)
    responses = document["paths"][path][method.lower()]["responses"]
    response = responses.get(status) or responses.get(str(status))
    if response is None:
        return None
    if "$ref" in response:
        response = _resolve(document, response["$ref"])
    content = response.get("content") or {}
    for media in content.values():
        schema = media.get("schema") or {}
        if "$ref" in schema:
            return schema["$ref"].rsplit("/", 1)[-1]
        if "allOf" in schema and len(schema["allOf"]) == 1 and "$ref" in schema["allOf"][0]:
            return schema["allOf"][0]["$ref"].rsplit("/", 1)[-1]
    return None


def _resolve(document: dict, ref: str) -> dict:
    node = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node
