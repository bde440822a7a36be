#!/usr/bin/env python3
"""Checks what a running console answered against the committed OpenAPI document.

Usage: check_openapi.py OPENAPI.json OBSERVATIONS.json
OBSERVATIONS is a list of {"method", "path" (the document's template), "status", "content_type", "body"}
that a test recorded while it called every operation of the running server. Each answer must be
an operation of the document, with a status the document lists for it, and a body that validates
(JSON Schema 2020-12, Debian's python3-jsonschema) against the schema of that status. Every
operation of the document must have been called at least once. Exit status 0 when all holds;
otherwise one line per failure on stderr and status 1. Uses nothing of the project's code.
"""
import json
import sys
import warnings

import jsonschema

warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    document = json.load(open(sys.argv[1]))
    observations = json.load(open(sys.argv[2]))
    failures = []
    resolver = jsonschema.RefResolver.from_schema(document)
    components = document.get("components", {}).get("responses", {})
    seen = set()
    for item in observations:
        label = f'{item["method"].upper()} {item["path"]} -> {item["status"]}'
        operation = document["paths"].get(item["path"], {}).get(item["method"])
        if operation is None:
            failures.append(f"{label}: not an operation of the document")
            continue
        seen.add((item["method"], item["path"]))
        response = operation["responses"].get(str(item["status"]))
        if response is None:
            failures.append(f"{label}: status not listed (listed: {sorted(operation['responses'])})")
            continue
        if "$ref" in response:
            response = components[response["$ref"].rsplit("/", 1)[-1]]
        content = response.get("content", {})
        if not content:
            continue
        media = item["content_type"].split(";")[0].strip()
        if media not in content:
            failures.append(f"{label}: content type {media} not listed ({sorted(content)})")
            continue
        schema = content[media]["schema"]
        try:
            body = json.loads(item["body"])
        except ValueError:
            failures.append(f"{label}: the body is not JSON")
            continue
        validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
        for error in validator.iter_errors(body):
            where = "/".join(str(part) for part in error.absolute_path)
            failures.append(f"{label}: at /{where}: {error.message[:200]}")
    for path, operations in document["paths"].items():
        for method in operations:
            if method in ("get", "post", "put", "patch", "delete") and (method, path) not in seen:
                failures.append(f"{method.upper()} {path}: documented but never called by the test")
    for failure in failures:
        print("FAILED: " + failure, file=sys.stderr)
    print(f"{len(observations)} answers checked against {sys.argv[1]}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
