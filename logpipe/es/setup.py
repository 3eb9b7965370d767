"""Install the index template and ILM policy (`logpipe/assets/elasticsearch/`) idempotently.

The files ship inside the package so an installed `logpipe es setup` finds them; the
repository's `elasticsearch/` is a symlink to that directory (one copy, nothing to drift).

Each installed object carries a hash of the file's canonical JSON in its `_meta`, so a second
run compares hashes and reports "unchanged" instead of rewriting (and without depending on how
the server normalises settings). Servers without ILM (OSS-like builds, the integ-test
distribution) get the template minus its `index.lifecycle.*` settings, and we say so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

TEMPLATE_NAME = "logpipe"
POLICY_NAME = "logpipe"
TEMPLATE_FILE = "index-template.json"
POLICY_FILE = "ilm-policy.json"
KIBANA_FILE = "kibana-objects.ndjson"
HASH_KEY = "logpipe_hash"


class SetupError(RuntimeError):
    """A setup step failed; the message names the file or object."""


@dataclass
class Assets:
    template: dict[str, Any]
    policy: dict[str, Any]
    kibana_objects: int
    directory: Path


@dataclass
class Step:
    """What happened to one object: created | updated | unchanged | skipped."""

    kind: str
    name: str
    status: str
    detail: str = ""


def default_assets_dir() -> Path:
    """The template files shipped in the package (package data, also in a wheel)."""
    return Path(__file__).resolve().parents[1] / "assets" / "elasticsearch"


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"{path}: file not found (pass --dir with a directory holding {TEMPLATE_FILE} and {POLICY_FILE})") from None
    except json.JSONDecodeError as exc:
        raise SetupError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise SetupError(f"{path}: expected a JSON object")
    return data


def load_assets(directory: str | Path | None = None) -> Assets:
    """Read and validate every file before touching the server (bad JSON names the file)."""
    d = Path(directory) if directory else default_assets_dir()
    template = _load_json(d / TEMPLATE_FILE)
    policy = _load_json(d / POLICY_FILE)
    kibana = d / KIBANA_FILE
    count = 0
    if kibana.exists():
        for lineno, line in enumerate(kibana.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError as exc:
                raise SetupError(f"{kibana}: invalid JSON on line {lineno}: {exc.msg}") from None
            count += 1
    if "index_patterns" not in template:
        raise SetupError(f"{d / TEMPLATE_FILE}: missing 'index_patterns'")
    if "phases" not in policy:
        raise SetupError(f"{d / POLICY_FILE}: missing 'phases'")
    return Assets(template, policy, count, d)


def content_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def ilm_available(client: Elasticsearch) -> bool:
    """True when the server has the ILM API (a 404 for a missing policy still means yes)."""
    try:
        client.ilm.get_lifecycle(name=POLICY_NAME)
        return True
    except NotFoundError as exc:
        err = exc.body.get("error") if isinstance(exc.body, dict) else None
        return isinstance(err, dict) and err.get("type") == "resource_not_found_exception"
    except ApiError as exc:
        if exc.status_code in (400, 404, 405, 410, 501):
            return False
        raise


def template_for_server(template: dict[str, Any], with_ilm: bool) -> dict[str, Any]:
    """The template to install: without `index.lifecycle.*` when the server has no ILM."""
    out = json.loads(json.dumps(template))
    if not with_ilm:
        settings = out.get("template", {}).get("settings", {})
        for key in [k for k in settings if k.startswith("index.lifecycle.") or k.startswith("lifecycle.")]:
            del settings[key]
        index = settings.get("index")
        if isinstance(index, dict):
            index.pop("lifecycle", None)
    return out


def sized_template(template: dict[str, Any], shards: int = 0, replicas: int = -1) -> dict[str, Any]:
    """The template with `shards` primaries (0 = as in the file) and `replicas` replicas
    (-1 = as in the file: `auto_expand_replicas 0-1`, green on one node, one copy on more)."""
    out = json.loads(json.dumps(template))
    settings = out.setdefault("template", {}).setdefault("settings", {})
    if shards > 0:
        settings["index.number_of_shards"] = shards
    if replicas >= 0:
        settings.pop("index.auto_expand_replicas", None)
        settings["index.number_of_replicas"] = replicas
    return out


def _with_hash(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    digest = content_hash(body)
    out = dict(body)
    out["_meta"] = {**body.get("_meta", {}), HASH_KEY: digest}
    return out, digest


def install_policy(client: Elasticsearch, policy: dict[str, Any]) -> Step:
    body, digest = _with_hash(policy)
    try:
        current = client.ilm.get_lifecycle(name=POLICY_NAME).body.get(POLICY_NAME, {})
        existing = current.get("policy", {}).get("_meta", {}).get(HASH_KEY)
    except NotFoundError:
        current, existing = None, None
    if existing == digest:
        return Step("ilm policy", POLICY_NAME, "unchanged")
    client.ilm.put_lifecycle(name=POLICY_NAME, policy=body)
    return Step("ilm policy", POLICY_NAME, "updated" if current else "created")


def install_template(client: Elasticsearch, template: dict[str, Any]) -> Step:
    body, digest = _with_hash(template)
    try:
        found = client.indices.get_index_template(name=TEMPLATE_NAME).body.get("index_templates", [])
    except NotFoundError:
        found = []
    existing = found[0]["index_template"].get("_meta", {}).get(HASH_KEY) if found else None
    if existing == digest:
        return Step("index template", TEMPLATE_NAME, "unchanged")
    client.perform_request("PUT", f"/_index_template/{TEMPLATE_NAME}", body=body,
                           headers={"content-type": "application/json", "accept": "application/json"})
    return Step("index template", TEMPLATE_NAME, "updated" if found else "created")


def run_setup(client: Elasticsearch, assets: Assets, shards: int = 0, replicas: int = -1) -> list[Step]:
    """Install the ILM policy (when available) and the index template (sized by `shards` and
    `replicas`, see `sized_template`); return what changed."""
    steps: list[Step] = []
    with_ilm = ilm_available(client)
    if with_ilm:
        steps.append(install_policy(client, assets.policy))
    else:
        steps.append(Step("ilm policy", POLICY_NAME, "skipped",
                          "ILM is not available on this server: the template is installed without a "
                          "lifecycle; delete old daily indices yourself"))
    template = sized_template(assets.template, shards, replicas)
    steps.append(install_template(client, template_for_server(template, with_ilm)))
    if assets.kibana_objects:
        steps.append(Step("kibana objects", KIBANA_FILE, "skipped",
                          f"{assets.kibana_objects} objects (data view + saved searches): import "
                          f"{assets.directory / KIBANA_FILE} in Kibana > Stack Management > Saved objects"))
    return steps
