"""Check documents against the CRDs' schemas the way the API server does, offline.

usage: check.py CRDS.yaml FILE... -> first {"rules": N, "uncompiled": [...]} (every CEL rule of
every CRD compiled), then one JSON line per document:
  {"file", "index", "kind", "name", "expect": "valid"|"invalid"|null, "err": Istio's `_err`,
   "refused": [reasons]}   (empty list: the API server would admit it)

What runs: the OpenAPI v3 schema of the document's version with `jsonschema` (Draft 4, the
dialect of Kubernetes' structural schemas), after pruning fields the schema does not name, as the
API server prunes them; then every `x-kubernetes-validations` CEL rule on every value present,
with `cel-python` (an independent CEL implementation). Kubernetes' CEL library functions the rules
use (`url(...).getScheme()`) are provided here the way Kubernetes defines them.
"""

import json
import sys
import urllib.parse

import celpy
import jsonschema
import yaml

CEL = celpy.Environment()
PROGRAMS = {}


def k8s_url(s):
    u = urllib.parse.urlsplit(str(s))
    if not u.scheme or not (u.netloc or u.path.startswith("/")):
        raise ValueError(f"URL parse error during conversion from string: {s}")
    return u


def get_scheme(u):
    return celpy.celtypes.StringType(u.scheme)


def substring(s, start, end):
    return celpy.celtypes.StringType(str(s)[int(start):int(end)])


FUNCTIONS = {"url": k8s_url, "getScheme": get_scheme, "substring": substring}


def program(rule):
    if rule not in PROGRAMS:
        PROGRAMS[rule] = CEL.program(CEL.compile(rule), functions=FUNCTIONS)
    return PROGRAMS[rule]


def prune(schema, value):
    """Drop fields the schema does not name (the API server's pruning)."""
    if not isinstance(schema, dict):
        return value
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            return {k: prune(props[k], v) for k, v in value.items() if k in props}
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return {k: prune(extra, v) for k, v in value.items()}
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(schema["items"], v) for v in value]
    return value


def go_yaml_strings(value):
    """Read a flow-sequence scalar ending in `:` (`[001:db8::]`) as Go's YAML (and so
    kubectl) reads it: a string, not a one-key map."""
    if isinstance(value, dict):
        return {k: go_yaml_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [f"{next(iter(v))}:" if isinstance(v, dict) and len(v) == 1 and None in v.values()
                else go_yaml_strings(v) for v in value]
    return value


def list_errors(schema, value, path):
    """`x-kubernetes-list-type` map and set: the API server refuses duplicate keys."""
    errs = []
    if not isinstance(schema, dict):
        return errs
    kind = schema.get("x-kubernetes-list-type")
    if isinstance(value, list) and kind in ("map", "set"):
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen = set()
        for i, item in enumerate(value):
            k = json.dumps([item.get(x) for x in keys] if kind == "map" else item, sort_keys=True)
            if k in seen:
                errs.append(f"{path}[{i}]: Duplicate value: {k}")
            seen.add(k)
    if isinstance(value, dict):
        for k, v in value.items():
            sub = (schema.get("properties") or {}).get(k, schema.get("additionalProperties"))
            errs += list_errors(sub, v, f"{path}.{k}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            errs += list_errors(schema.get("items"), v, f"{path}[{i}]")
    return errs


def cel_errors(schema, value, path):
    errs = []
    if not isinstance(schema, dict) or value is None:
        return errs
    for r in schema.get("x-kubernetes-validations", []):
        try:
            ok = program(r["rule"]).evaluate({"self": celpy.json_to_cel(value)})
            if isinstance(ok, Exception):
                raise ok
        except Exception as e:  # an evaluation error refuses the object too
            errs.append(f"{path}: {r.get('message', r['rule'])} (evaluation error: {e})")
            continue
        if not bool(ok):
            errs.append(f"{path}: Invalid value: {r.get('message', r['rule'])}")
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            for k, v in value.items():
                if k in props:
                    errs += cel_errors(props[k], v, f"{path}.{k}")
        elif isinstance(schema.get("additionalProperties"), dict):
            for k, v in value.items():
                errs += cel_errors(schema["additionalProperties"], v, f"{path}[{k}]")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errs += cel_errors(schema["items"], v, f"{path}[{i}]")
    return errs


def schemas(crds_file):
    out = {}
    for d in yaml.safe_load_all(open(crds_file)):
        if not d or d.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = d["spec"]["group"], d["spec"]["names"]["kind"]
        for v in d["spec"]["versions"]:
            out[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    return out


def rules(schema):
    if isinstance(schema, dict):
        for r in schema.get("x-kubernetes-validations", []):
            yield r["rule"]
        for k, v in schema.items():
            if k != "x-kubernetes-validations":
                yield from rules(v)
    elif isinstance(schema, list):
        for v in schema:
            yield from rules(v)


def main():
    table = schemas(sys.argv[1])
    every = sorted({r for s in table.values() for r in rules(s)})
    uncompiled = []
    for r in every:
        try:
            program(r)
        except Exception as e:
            uncompiled.append(f"{r}: {e}")
    print(json.dumps({"rules": len(every), "uncompiled": uncompiled}))
    for f in sys.argv[2:]:
        expect = "invalid" if f.endswith("-invalid.yaml") else "valid" if f.endswith("-valid.yaml") else None
        for i, doc in enumerate(yaml.safe_load_all(open(f))):
            if not isinstance(doc, dict):
                continue
            err = doc.pop("_err", None)
            key = (doc.get("apiVersion"), doc.get("kind"))
            name = (doc.get("metadata") or {}).get("name")
            line = {"file": f, "index": i, "kind": doc.get("kind"), "api": doc.get("apiVersion"), "name": name,
                    "expect": expect, "err": err}
            if key not in table:
                line["refused"] = None  # not a kind of these CRDs
                print(json.dumps(line))
                continue
            schema = table[key]
            body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
            body = prune(schema, go_yaml_strings(body))
            refused = [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                       for e in jsonschema.Draft4Validator(schema).iter_errors(body)]
            refused += list_errors(schema, body, "<root>")
            if not refused:
                refused = cel_errors(schema, body, "<root>")
            line["refused"] = refused
            print(json.dumps(line))


if __name__ == "__main__":
    main()
