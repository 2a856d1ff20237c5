#!/usr/bin/env python3
"""Adds path items from DigitalOcean's OpenAPI repository to the fleet subset.

Usage: add-paths.py <digitalocean/openapi checkout> <subset.yaml> /v2/path [/v2/path ...]

Each path item is read from specification/DigitalOcean-public.v2.yaml, every `$ref` to another
file is inlined (recursively, relative to the file that holds it), code samples are dropped,
and the result is inserted before `components:`. Nothing else in the subset changes.
"""
import os
import sys

import yaml


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def pointer(doc, frag):
    for part in [p for p in frag.lstrip("/").split("/") if p]:
        doc = doc[part.replace("~1", "/").replace("~0", "~")]
    return doc


def inline(node, base):
    if isinstance(node, dict):
        if "$ref" in node and len(node) == 1:
            ref = node["$ref"]
            file, _, frag = ref.partition("#")
            target = os.path.normpath(os.path.join(os.path.dirname(base), file)) if file else base
            value = pointer(load(target), frag) if frag else load(target)
            return inline(value, target)
        return {k: inline(v, base) for k, v in node.items() if k != "x-codeSamples"}
    if isinstance(node, list):
        return [inline(v, base) for v in node]
    return node


def main():
    repo, subset, *paths = sys.argv[1:]
    root = os.path.join(repo, "specification", "DigitalOcean-public.v2.yaml")
    spec = load(root)
    items = {p: inline(spec["paths"][p], root) for p in paths}
    text = yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=100)
    block = "".join("  " + line if line.strip() else line for line in text.splitlines(True))
    with open(subset) as f:
        current = f.read()
    for p in paths:
        if f"\n  {p}:\n" in current:
            sys.exit(f"{p} is already in {subset}")
    at = current.index("\ncomponents:\n") + 1
    with open(subset, "w") as f:
        f.write(current[:at] + block + current[at:])


if __name__ == "__main__":
    main()
