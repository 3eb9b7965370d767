"""fluentd/fluent.conf, read structurally with a small parser of Fluentd's config syntax
(`<directive arg>` ... `</directive>`, `key value`), checked for the settings the design needs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "fluentd" / "fluent.conf"
DOCKERFILE = ROOT / "fluentd" / "Dockerfile"


@dataclass
class Directive:
    name: str
    arg: str
    line: int
    params: dict[str, str] = field(default_factory=dict)
    children: list[Directive] = field(default_factory=list)

    def find(self, name: str, arg: str | None = None) -> list[Directive]:
        return [c for c in self.children if c.name == name and (arg is None or c.arg == arg)]

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


class ConfSyntaxError(ValueError):
    pass


_OPEN = re.compile(r"^<\s*([A-Za-z_][\w-]*)\s*(.*?)\s*>$")
_CLOSE = re.compile(r"^</\s*([A-Za-z_][\w-]*)\s*>$")
_PARAM = re.compile(r"^(@?[A-Za-z_][\w.-]*)(?:\s+(.*))?$")


def _strip_comment(text: str) -> str:
    """Drop a trailing ` # comment` that is outside double/single quotes."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == "\\":
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    if quote:
        raise ConfSyntaxError(f"unterminated quote in {text!r}")
    return text


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_conf(text: str) -> Directive:
    root = Directive("ROOT", "", 0)
    stack = [root]
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = _strip_comment(line)
        if m := _CLOSE.match(line):
            if len(stack) == 1 or stack[-1].name != m.group(1):
                raise ConfSyntaxError(f"line {n}: </{m.group(1)}> closes <{stack[-1].name}>")
            stack.pop()
        elif m := _OPEN.match(line):
            d = Directive(m.group(1), m.group(2), n)
            stack[-1].children.append(d)
            stack.append(d)
        elif m := _PARAM.match(line):
            if len(stack) == 1:
                raise ConfSyntaxError(f"line {n}: parameter outside any directive")
            key, value = m.group(1), _unquote((m.group(2) or "").strip())
            if key in stack[-1].params:
                raise ConfSyntaxError(f"line {n}: duplicate parameter {key}")
            stack[-1].params[key] = value
        else:
            raise ConfSyntaxError(f"line {n}: cannot parse {raw!r}")
    if len(stack) != 1:
        raise ConfSyntaxError(f"<{stack[-1].name}> opened on line {stack[-1].line} is never closed")
    return root


@pytest.fixture(scope="module")
def conf() -> Directive:
    return parse_conf(CONF.read_text(encoding="utf-8"))


def _label(conf: Directive, name: str) -> Directive:
    found = conf.find("label", name)
    assert len(found) == 1, f"label {name} defined {len(found)} times"
    return found[0]


def _typed(node: Directive, kind: str, typ: str) -> list[Directive]:
    return [d for d in node.walk() if d.name == kind and d.params.get("@type") == typ]


def test_parser_rejects_broken_syntax():
    with pytest.raises(ConfSyntaxError):
        parse_conf("<source>\n  @type forward\n")
    with pytest.raises(ConfSyntaxError):
        parse_conf("<source>\n</match>\n")
    with pytest.raises(ConfSyntaxError):
        parse_conf("<match **>\n  @type null\n  @type file\n</match>\n")
    parsed = parse_conf('<source>\n  a "x # not a comment" # a comment\n</source>\n')
    assert parsed.children[0].params == {"a": "x # not a comment"}


def test_forward_inputs_use_shared_key_and_tls(conf):
    forwards = conf.find("source")
    forwards = [s for s in forwards if s.params.get("@type") == "forward"]
    assert forwards and forwards[0].params["port"] == "24224"
    for src in forwards:
        (security,) = src.find("security")
        assert "ENV['FLUENTD_SHARED_KEY']" in security.params["shared_key"]
        assert security.params.get("self_hostname")
    tls = [s for s in forwards if s.find("transport", "tls")]
    assert tls, "no forward <source> with <transport tls>"
    (transport,) = tls[0].find("transport", "tls")
    assert transport.params.get("cert_path") and transport.params.get("private_key_path")
    assert transport.params.get("insecure", "false") == "false"


def test_record_transformer_adds_hostname_and_environment(conf):
    (rt,) = _typed(conf, "filter", "record_transformer")
    (record,) = rt.find("record")
    assert {"hostname", "environment"} <= record.params.keys()
    assert "${" not in record.params["environment"] or rt.params.get("enable_ruby") == "true"


def test_throttle_on_error_logs_by_workspace_with_safe_reset_rate(conf):
    (th,) = _typed(conf, "filter", "throttle")
    assert th.arg.endswith(".error") and th.arg.startswith("logpipe.")
    p = th.params
    assert p["group_key"] == "workspace_id"
    period, limit = int(p["group_bucket_period_s"]), int(p["group_bucket_limit"])
    assert "group_reset_rate_s" in p, "the plugin's integer default can round to 0"
    reset = int(p["group_reset_rate_s"])
    # the plugin refuses reset > limit / period (integer division), and 0 blocks forever
    assert reset == -1 or 1 <= reset <= limit // period


def test_elasticsearch_output(conf):
    (es,) = _typed(conf, "match", "elasticsearch")
    p = es.params
    assert p["logstash_format"] == "true" and p["logstash_prefix"] == "logpipe"
    assert p["id_key"] == "_id" and p["write_operation"] == "create"
    assert "_id" in [k.strip() for k in p["remove_keys"].split(",")]
    unrecoverable = json.loads(p["unrecoverable_error_types"])
    assert "es_rejected_execution_exception" not in unrecoverable
    (buf,) = es.find("buffer")
    assert buf.params["@type"] == "file" and buf.params["path"].startswith("/fluentd/buffer")
    assert buf.params.get("retry_type") == "exponential_backoff"
    assert "retry_forever" in buf.params or "retry_timeout" in buf.params
    assert "ENV['ES_HOST']" in p["host"]


def test_error_label_writes_dead_letter_file_and_labels_resolve(conf):
    err = _label(conf, "@ERROR")
    outputs = [m for m in err.find("match") if m.params.get("@type") == "file"]
    assert outputs and outputs[0].params["path"]
    defined = {d.arg for d in conf.find("label")}
    referenced = {d.params["@label"] for d in conf.walk() if "@label" in d.params}
    assert referenced, "sources should route into a label"
    assert referenced <= defined, f"undefined labels: {referenced - defined}"


def test_filters_precede_matches_in_every_label(conf):
    for label in conf.find("label"):
        kinds = [c.name for c in label.children if c.name in ("filter", "match")]
        if "match" in kinds:
            assert "filter" not in kinds[kinds.index("match"):], f"filter after match in {label.arg}"


def test_ids_unique_and_plugins_installed(conf):
    ids = [d.params["@id"] for d in conf.walk() if "@id" in d.params]
    assert len(ids) == len(set(ids))
    builtin = {"forward", "monitor_agent", "record_transformer", "relabel", "file", "secondary_file",
               "json", "null", "stdout"}
    from_gems = {"elasticsearch": "fluent-plugin-elasticsearch", "throttle": "fluent-plugin-throttle"}
    docker = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM fluent/fluentd:v1\.", docker, flags=re.M)
    for d in conf.walk():
        typ = d.params.get("@type")
        if typ is None or typ in builtin:
            continue
        assert typ in from_gems, f"unknown plugin @type {typ}"
        assert re.search(rf"gem install {from_gems[typ]}\b", docker), f"{from_gems[typ]} not installed"
