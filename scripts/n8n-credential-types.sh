#!/usr/bin/env bash
# Regenerates crates/n8n/credential-types/n8n-2.8.4.json: the credential types the platform
# uses, read from the pinned n8n's own type definitions (n8n-nodes-base's
# dist/types/credentials.json in the npm install that scripts/n8n-install.sh caches) and
# resolved the way n8n's CredentialsHelper.getCredentialsProperties resolves them: parents
# first (`extends`), a property of the same name overrides, `doNotInherit` properties are
# dropped, and OAuth roots gain `oauthTokenData`. The control plane shapes and checks tenant
# credentials with it, the fake n8n validates with it, and the real-n8n suite checks that
# the schema built from it equals what n8n answers at GET /credentials/schema/{type}.
#
#   scripts/n8n-credential-types.sh [N8N_INSTALL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.8.4
dir="${1:-$(scripts/n8n-install.sh)}"
out=crates/n8n/credential-types/n8n-$version.json
mkdir -p "$(dirname "$out")"
python3 - "$dir" "$version" "$out" <<'PY'
import json, sys
root, version, out = sys.argv[1:]
wanted = ["gmailOAuth2", "googleSheetsOAuth2Api", "httpHeaderAuth", "openAiApi", "postgres", "supabaseApi"]
types = {}
for pkg in ["n8n-nodes-base", "@n8n/n8n-nodes-langchain"]:
    try:
        with open(f"{root}/node_modules/{pkg}/dist/types/credentials.json") as f:
            for t in json.load(f):
                types.setdefault(t["name"], t)
    except FileNotFoundError:
        pass

def merge(into, props):
    for p in props:
        if p.get("doNotInherit"):
            continue
        for i, q in enumerate(into):
            if q["name"] == p["name"]:
                into[i] = p
                break
        else:
            into.append(p)

def resolve(name):
    t = types[name]
    if not t.get("extends"):
        props = list(t["properties"])
        if name in ("oAuth1Api", "oAuth2Api"):
            props.append({"displayName": "oauthTokenData", "name": "oauthTokenData",
                          "type": "json", "required": False, "default": {}})
        return props
    combined = []
    for parent in t["extends"]:
        merge(combined, resolve(parent))
    merge(combined, t["properties"])
    return combined

def slim(p):
    s = {"name": p["name"], "type": p["type"], "default": p.get("default")}
    if p.get("required"):
        s["required"] = True
    show = (p.get("displayOptions") or {}).get("show")
    if show:
        for values in show.values():
            if any(isinstance(v, dict) for v in values):
                sys.exit(f"{p['name']}: conditional display values (_cnd) are not supported")
        s["show"] = [[k, v] for k, v in show.items()]
    if p["type"] == "options":
        s["options"] = [o["value"] for o in p.get("options", [])]
    return s

doc = {
    "n8n": version,
    "source": "n8n-nodes-base/dist/types/credentials.json of the npm package, resolved as "
              "n8n's CredentialsHelper.getCredentialsProperties resolves it "
              "(scripts/n8n-credential-types.sh)",
    "types": [{"name": n, "properties": [slim(p) for p in resolve(n)]} for n in wanted],
}
# One property a line: reviewable in a diff when n8n is upgraded.
lines = ["{", f' "n8n": {json.dumps(doc["n8n"])},', f' "source": {json.dumps(doc["source"])},', ' "types": [']
for i, t in enumerate(doc["types"]):
    lines.append(f'  {{"name": {json.dumps(t["name"])}, "properties": [')
    props = [f"   {json.dumps(p)}" for p in t["properties"]]
    lines.append(",\n".join(props))
    lines.append("  ]}" + ("," if i + 1 < len(doc["types"]) else ""))
lines += [" ]", "}"]
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
json.load(open(out))
print(out)
PY
