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
    assert forwards and "24224" in forwards[0].params["port"]
    for src in forwards:
        (security,) = src.find("security")
        assert "ENV['FLUENTD_SHARED_KEY']" in security.params["shared_key"]
        assert security.params.get("self_hostname")
    tls = [s for s in forwards if s.find("transport", "tls")]
    assert tls, "no forward <source> with <transport tls>"
    (transport,) = tls[0].find("transport", "tls")
    assert transport.params.get("cert_path") and transport.params.get("private_key_path")
    assert transport.params.get("insecure", "false") == "false"


def test_tls_version_bounds_come_in_pairs(conf):
    """Fluentd exits at start ("When you set min_version, must set max_version together")."""
    for transport in (d for d in conf.walk() if d.name == "transport" and d.arg == "tls"):
        assert ("min_version" in transport.params) == ("max_version" in transport.params)


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


def _tag_matches(pattern: str, tag: str) -> bool:
    """Fluentd match patterns: `*` one tag part, `**` zero or more parts, space = alternatives."""
    def one(p: str) -> bool:
        rx = re.escape(p).replace(r"\.\*\*", r"(?:\.[^.]+)*").replace(r"\*\*", ".*").replace(r"\*", "[^.]+")
        return re.fullmatch(rx, tag) is not None
    return any(one(p) for p in pattern.split())


def test_tag_matcher():
    assert _tag_matches("logpipe.**", "logpipe.api.error") and _tag_matches("logpipe.**", "logpipe")
    assert _tag_matches("logpipe.*.error", "logpipe.api.error")
    assert not _tag_matches("logpipe.*.error", "logpipe.retry")


def _outputs(conf: Directive) -> list[Directive]:
    return _typed(conf, "match", "elasticsearch")


def _id_field(es: Directive) -> str:
    """The record field an output reads the document id from ($['a.b'] or a plain key)."""
    key = es.params["id_key"]
    m = re.fullmatch(r"\$\['([^']+)'\]", key)
    return m.group(1) if m else key


def _filters_for(conf: Directive, tag: str, typ: str) -> list[Directive]:
    return [f for f in _typed(conf, "filter", typ) if _tag_matches(f.arg, tag)]


def test_every_kind_has_one_output_and_one_id_move(conf):
    for kind in ("access", "error", "app", "metric", "alert"):
        tag = f"logpipe.api.{kind}"
        outputs = [es for es in _outputs(conf) if _tag_matches(es.arg, tag)]
        assert len(outputs) == 1, tag
        (rt,) = _filters_for(conf, tag, "record_transformer")
        (record,) = rt.find("record")
        # the sidecar's `_id` moves to the field the output uses as id_key, and `_id` leaves
        # the document (Elasticsearch refuses it in a body)
        assert 'record["_id"]' in record.params[_id_field(outputs[0])]
        assert rt.params.get("remove_keys") == "_id"
        assert "hostname" in record.params


def test_log_records_take_no_per_record_ruby(conf):
    """enable_ruby evaluates Ruby source per record and field: the volume path must not."""
    for kind in ("access", "error", "app"):
        (rt,) = _filters_for(conf, f"logpipe.api.{kind}", "record_transformer")
        assert rt.params.get("enable_ruby", "false") == "false"


def test_indices_are_the_direct_roads(conf):
    (logs,) = [es for es in _outputs(conf) if _tag_matches(es.arg, "logpipe.api.access")]
    p = logs.params
    assert p["logstash_format"] == "true" and p["logstash_prefix"] == "logpipe-${service}"
    assert p["logstash_dateformat"] == "%Y.%m.%d" and p.get("utc_index", "true") == "true"
    (buf,) = logs.find("buffer")
    assert "service" in [k.strip() for k in buf.arg.split(",")]
    # the sidecar's @timestamp shape, parsed with strptime
    assert p["time_key_format"] == "%Y-%m-%dT%H:%M:%S.%N%z"
    (derived,) = [es for es in _outputs(conf) if _tag_matches(es.arg, "logpipe.api.metric")]
    (rt,) = _filters_for(conf, "logpipe.api.metric", "record_transformer")
    (record,) = rt.find("record")
    index_expr = record.params[derived.params["target_index_key"]]
    for part in ('record["@timestamp"]', "%Y.%m.%d", ".utc", '"s-"', "tag.split"):
        assert part in index_expr, part


def test_elasticsearch_outputs_keep_ids_for_rejected_items(conf):
    """The plugin rebuilds a bulk from the records as they were after remove_keys when items are
    refused; without the id there `create` skips them: no dead letter for 400s, 429s dropped."""
    (th,) = _typed(conf, "filter", "throttle")
    for es in _outputs(conf):
        p = es.params
        assert p["write_operation"] == "create"
        removed = [k.strip() for k in p.get("remove_keys", "").split(",") if k.strip()]
        assert _id_field(es) not in removed and _id_field(es) != "_id"
        unrecoverable = json.loads(p["unrecoverable_error_types"])
        assert "es_rejected_execution_exception" not in unrecoverable
        if "retry_tag" in p:
            # 429-refused items come back with retry_tag: this output takes them again, and no
            # filter sees them (the id was moved already; a retry costs no throttle credit)
            assert _tag_matches(es.arg, p["retry_tag"])
            assert not [f for f in conf.walk() if f.name == "filter" and _tag_matches(f.arg, p["retry_tag"])]
        else:
            # retried with their own tag: back through their filter, which must keep the id
            tag = "logpipe.api." + es.arg.split()[0].rsplit(".", 1)[-1]
            for f in _filters_for(conf, tag, "record_transformer"):
                (record,) = f.find("record")
                assert 'record["event.id"]' in record.params[_id_field(es)]
            assert not _tag_matches(th.arg, tag)
        (buf,) = es.find("buffer")
        assert buf.params["@type"] == "file" and "/fluentd/buffer" in buf.params["path"]
        assert buf.params.get("retry_type") == "exponential_backoff"
        assert "retry_forever" in buf.params or "retry_timeout" in buf.params
        assert "ENV['ES_HOST']" in p["host"]
        assert p.get("verify_es_version_at_startup") == "false" and p.get("default_elasticsearch_version") == "8"


def test_tuned_so_the_aggregator_is_not_the_bottleneck(conf):
    (system,) = conf.find("system")
    assert "2" in system.params.get("workers", "1")
    (logs,) = [es for es in _outputs(conf) if _tag_matches(es.arg, "logpipe.api.access")]
    (buf,) = logs.find("buffer")
    assert int(buf.params["flush_thread_count"]) >= 4
    assert buf.params["flush_interval"] in ("1s", "1")


def test_labels_resolve_and_nothing_relabels_to_error(conf):
    """Fluentd builds @ERROR after every other label: `@label @ERROR` anywhere fails at start
    with "@ERROR label not found"."""
    defined = {d.arg for d in conf.find("label")}
    referenced = {d.params["@label"] for d in conf.walk() if "@label" in d.params}
    assert referenced, "sources should route into a label"
    assert "@ERROR" not in referenced
    assert referenced <= defined, f"undefined labels: {referenced - defined}"


def test_error_label_reaches_the_dead_letter_file(conf):
    err = _label(conf, "@ERROR")
    (relabel,) = err.find("match")
    target = _label(conf, relabel.params["@label"])
    outputs = [m for m in target.find("match") if m.params.get("@type") == "file"]
    assert outputs and "deadletter" in outputs[0].params["path"]


def test_chunks_out_of_retries_after_a_day_go_to_the_retries_exhausted_directory(conf):
    """README: chunks still failing after `retry_timeout` (24 h) land in
    deadletter/retries-exhausted/. Checked here as configuration; the expiry itself is not run."""
    for es in _outputs(conf):
        (buf,) = es.find("buffer")
        assert buf.params.get("retry_timeout") == "24h" and "retry_forever" not in buf.params, es.arg
        (secondary,) = es.find("secondary")
        assert secondary.params["@type"] == "secondary_file", es.arg
        assert secondary.params["directory"].endswith("/buffer'}/deadletter/retries-exhausted"), es.arg


def test_dead_letters_are_one_json_lines_file_per_tag_and_day(conf):
    """README: refused records land in deadletter/<tag>/ as JSON lines, one file per day."""
    (out,) = [m for m in _label(conf, "@DEADLETTER").find("match") if m.params.get("@type") == "file"]
    assert out.params["path"].endswith("/deadletter/${tag}/%Y%m%d") and out.params["append"] == "true"
    (fmt,) = out.find("format")
    assert fmt.params["@type"] == "json"
    (buf,) = out.find("buffer")
    assert [k.strip() for k in buf.arg.split(",")] == ["tag", "time"] and buf.params["timekey"] == "1d"


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
    for d in conf.walk():
        typ = d.params.get("@type")
        if typ is None or typ in builtin:
            continue
        assert typ in from_gems, f"unknown plugin @type {typ}"
        assert re.search(rf"gem install {from_gems[typ]}\b", docker), f"{from_gems[typ]} not installed"


# What tests/test_real_fluentd.py was run against (Fluentd from its tags, the plugins and the
# Elasticsearch Ruby client from theirs); the Dockerfile must pin among these.
RAN_FLUENTD = {"1.16.11", "1.17.1", "1.18.0"}
RAN_GEMS = {"fluent-plugin-elasticsearch": {"5.4.3"}, "fluent-plugin-throttle": {"0.0.5"},
            "elasticsearch": {"8.19.3"}}


def test_dockerfile_pins_versions_that_were_run():
    docker = DOCKERFILE.read_text(encoding="utf-8")
    image = re.search(r"^FROM fluent/fluentd:v(\d+\.\d+\.\d+)-debian-[\d.]+$", docker, flags=re.M)
    assert image, "the image must be pinned to an exact Fluentd version"
    assert image.group(1) in RAN_FLUENTD
    pins = dict(re.findall(r"gem install ([\w-]+) -v ([\d.]+) ", docker))
    assert pins.keys() == RAN_GEMS.keys(), pins
    for gem, version in pins.items():
        assert version in RAN_GEMS[gem], f"{gem} {version} was not run"
