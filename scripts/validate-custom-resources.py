#!/usr/bin/env python3
"""Validate custom resources against the openAPIV3Schema of their CRDs.

kubernetes-validate knows only the built-in Kubernetes kinds; this checks the objects of CRD
kinds the way the API server would, strictly: every object must match a served version of a CRD
given with --crds, and its body must match that version's schema, where `nullable` is honoured,
and an unknown field is an error (the API server would prune it silently; meshplane would lose
it), except under `x-kubernetes-preserve-unknown-fields`. apiVersion, kind and metadata.name
are checked at the root. Uses the jsonschema package (a dependency of kubernetes-validate).

usage: validate-custom-resources.py --crds CRDS.yaml [--crds ...] [--skip KIND ...] FILE...
Exit 0 when every object passed (or was skipped by kind), 1 otherwise.
"""

import argparse
import sys

import jsonschema
import yaml


def strict(schema):
    """The CRD schema as JSON Schema: nullable → null allowed; closed objects."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: strict(v) for k, v in value.items()}
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue
        else:
            out[key] = strict(value)
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = out["enum"] + [None]
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crds", action="append", required=True)
    parser.add_argument("--skip", action="append", default=[])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    schemas = {}
    for path in args.crds:
        for crd in load_documents(path):
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                key = (spec["group"] + "/" + version["name"], spec["names"]["kind"])
                schemas[key] = (crd["metadata"]["name"], version["schema"]["openAPIV3Schema"])

    passed = failed = skipped = 0
    for path in args.files:
        for obj in load_documents(path):
            api_version, kind = obj.get("apiVersion"), obj.get("kind")
            name = (obj.get("metadata") or {}).get("name")
            label = f"{path}: {kind} {name}"
            if kind in args.skip:
                print(f"SKIP {label}: no schema for {api_version} {kind} here")
                skipped += 1
                continue
            if (api_version, kind) not in schemas:
                print(f"ERROR {label}: no CRD serves {api_version} {kind}")
                failed += 1
                continue
            crd_name, schema = schemas[(api_version, kind)]
            errors = []
            if not isinstance(name, str) or not name:
                errors.append("metadata.name: required")
            body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            validator = jsonschema.Draft7Validator(strict(schema))
            for error in sorted(validator.iter_errors(body), key=lambda e: list(e.path)):
                where = ".".join(str(p) for p in error.path) or "(root)"
                errors.append(f"{where}: {error.message}")
            if errors:
                failed += 1
                for e in errors:
                    print(f"ERROR {label} against {crd_name}: {e}")
            else:
                passed += 1
                print(f"INFO {label} passed against {crd_name}")
    print(f"custom resources valid: {passed}; invalid: {failed}; skipped: {skipped}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
