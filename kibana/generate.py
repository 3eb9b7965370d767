"""Generate kibana/logpipe.ndjson: the data view, saved searches, visualizations and dashboard.

Kibana stores most of a saved object as JSON strings inside JSON (visState, panelsJSON,
searchSourceJSON); writing those by hand drifts and breaks quietly. This script is the
source of truth, and tests/test_compose_kibana.py checks the committed .ndjson matches it:

    python kibana/generate.py            # rewrite kibana/logpipe.ndjson
    python kibana/generate.py --check    # exit 1 when the file is stale

The objects use the legacy aggregation-based visualization types, which every Kibana 8.x
imports and migrates. Import: POST /api/saved_objects/_import?overwrite=true (compose does it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, not installed
from logpipe import fields as F  # noqa: E402 - field names come from the schema, so panels cannot drift

#: The data view and saved searches that `logpipe es setup` documents live in elasticsearch/;
#: they are copied in unchanged (same ids), so this file is self-contained and importing it
#: after elasticsearch/kibana-objects.ndjson overwrites rather than duplicates.
BASE_OBJECTS = Path(__file__).resolve().parent.parent / "elasticsearch" / "kibana-objects.ndjson"
DATA_VIEW_ID = "logpipe"
DATA_VIEW_TITLE = "logpipe-*"
ERRORS_SEARCH_ID = "logpipe-errors"
OUT = Path(__file__).with_name("logpipe.ndjson")

ACCESS = f"{F.STATUS}:* and {F.METHOD}:*"
METRIC = f'{F.EVENT_KIND}:"{F.KIND_METRIC}"'
ALERT = f'{F.EVENT_KIND}:"{F.KIND_ALERT}"'
ERRORS = "level:(error or critical) or status >= 500"  # only used when elasticsearch/ has no errors search

_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def _search_source(kql: str, with_index: bool = True) -> dict[str, str]:
    source: dict[str, Any] = {"query": {"query": kql, "language": "kuery"}, "filter": []}
    if with_index:
        source["indexRefName"] = _INDEX_REF
    return {"searchSourceJSON": _dumps(source)}


def _index_ref() -> list[dict[str, str]]:
    return [{"name": _INDEX_REF, "type": "index-pattern", "id": DATA_VIEW_ID}]


def base_objects() -> list[dict[str, Any]]:
    """elasticsearch/'s data view and saved searches; a minimal data view if that file is absent."""
    if BASE_OBJECTS.exists():
        lines = BASE_OBJECTS.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    return [data_view()]


def data_view() -> dict[str, Any]:
    return {
        "id": DATA_VIEW_ID,
        "type": "index-pattern",
        "attributes": {"title": DATA_VIEW_TITLE, "name": "logpipe", "timeFieldName": "@timestamp"},
        "references": [],
    }


def saved_search(obj_id: str, title: str, kql: str, columns: list[str]) -> dict[str, Any]:
    return {
        "id": obj_id,
        "type": "search",
        "attributes": {
            "title": title,
            "description": "",
            "columns": columns,
            "sort": [["@timestamp", "desc"]],
            "kibanaSavedObjectMeta": _search_source(kql),
        },
        "references": _index_ref(),
    }


def _vis(obj_id: str, title: str, kql: str, vis_state: dict[str, Any], description: str) -> dict[str, Any]:
    vis_state = {"title": title, **vis_state}
    uses_index = vis_state["type"] != "timelion"
    return {
        "id": obj_id,
        "type": "visualization",
        "attributes": {
            "title": title,
            "description": description,
            "uiStateJSON": "{}",
            "version": 1,
            "visState": _dumps(vis_state),
            "kibanaSavedObjectMeta": _search_source(kql, with_index=uses_index),
        },
        "references": _index_ref() if uses_index else [],
    }


def _agg(agg_id: str, agg_type: str, schema: str, **params: Any) -> dict[str, Any]:
    return {"id": agg_id, "enabled": True, "type": agg_type, "schema": schema, "params": params}


def _date_histogram(agg_id: str = "2") -> dict[str, Any]:
    return _agg(agg_id, "date_histogram", "segment", field="@timestamp", interval="auto",
                min_doc_count=1, extended_bounds={})


def _line_params(y_title: str) -> dict[str, Any]:
    return {
        "type": "line",
        "addLegend": True,
        "legendPosition": "right",
        "addTooltip": True,
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
                          "scale": {"type": "linear"}, "labels": {"show": True, "truncate": 100},
                          "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left",
                       "show": True, "scale": {"type": "linear", "mode": "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": y_title}}],
        "seriesParams": [{"show": True, "type": "line", "mode": "normal", "data": {"id": "1", "label": y_title},
                          "valueAxis": "ValueAxis-1", "drawLinesBetweenPoints": True, "showCircles": True,
                          "interpolate": "linear"}],
        "grid": {"categoryLines": False},
        "times": [],
        "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full", "color": "#E7664C"},
    }


def visualizations() -> list[dict[str, Any]]:
    requests = _vis(
        "logpipe-requests-per-minute", "logpipe: requests per minute", ACCESS,
        {"type": "line", "params": _line_params("requests"),
         "aggs": [_agg("1", "count", "metric"),
                  _agg("2", "date_histogram", "segment", field="@timestamp", interval="m",
                       min_doc_count=1, extended_bounds={}),
                  _agg("3", "terms", "group", field=F.SERVICE, size=10, order="desc", orderBy="1")]},
        "Access records per minute, one line per service.",
    )
    expr = (
        ".es(index=logpipe-*, timefield=@timestamp, q='status:>=500')"
        ".divide(.es(index=logpipe-*, timefield=@timestamp, q='status:* AND method:*'))"
        ".multiply(100).label('5xx %').lines(fill=1)"
    )
    error_rate = _vis(
        "logpipe-5xx-rate", "logpipe: 5xx rate (%)", "",
        {"type": "timelion", "params": {"expression": expr, "interval": "1m"}, "aggs": []},
        "Share of access records with status >= 500, per minute.",
    )
    p95 = _vis(
        "logpipe-p95-by-route", "logpipe: p95 latency by route (metric records)", METRIC,
        {"type": "line", "params": _line_params("p95 ms"),
         "aggs": [_agg("1", "max", "metric", field=F.METRIC_P95),
                  _date_histogram(),
                  _agg("3", "terms", "group", field=F.ROUTE, size=10, order="desc", orderBy="1")]},
        "p95_ms from the sidecar's per-route metric records (event.kind: metric), top 10 routes.",
    )
    routes = _vis(
        "logpipe-routes-table", "logpipe: routes (metric records)", METRIC,
        {"type": "table", "params": {"perPage": 20, "showPartialRows": False, "showMetricsAtAllLevels": False,
                                     "showTotal": False, "totalFunc": "sum", "percentageCol": ""},
         "aggs": [_agg("1", "sum", "metric", field=F.METRIC_COUNT),
                  _agg("2", "max", "metric", field=F.METRIC_P95),
                  _agg("3", "avg", "metric", field=F.METRIC_ERROR_RATE),
                  _agg("4", "terms", "bucket", field=F.ROUTE, size=50, order="desc", orderBy="1")]},
        "Requests, worst p95 and mean error rate per route over the time range.",
    )
    top_errors = _vis(
        "logpipe-top-errors", "logpipe: top errors", "level:(error or critical)",
        {"type": "table", "params": {"perPage": 10, "showPartialRows": False, "showMetricsAtAllLevels": False,
                                     "showTotal": True, "totalFunc": "sum", "percentageCol": ""},
         "aggs": [_agg("1", "count", "metric"),
                  _agg("2", "terms", "bucket", field=f"{F.EXCEPTION}.type", size=10, order="desc", orderBy="1",
                       missingBucket=True, missingBucketLabel="(no exception)"),
                  _agg("3", "terms", "bucket", field=F.SERVICE, size=5, order="desc", orderBy="1")]},
        "Error records by exception type and service.",
    )
    return [requests, error_rate, p95, routes, top_errors]


def searches(base: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dashboard's saved searches: elasticsearch/'s errors search (or ours), and alerts."""
    errors = next((o for o in base if o["type"] == "search" and o["id"] == ERRORS_SEARCH_ID), None)
    found = [] if errors else [saved_search(ERRORS_SEARCH_ID, "logpipe: errors", ERRORS,
                                            ["level", "service", "message", "route", "status", "request_id"])]
    found.append(saved_search("logpipe-alerts", "logpipe: alerts", ALERT,
                              [F.ALERT_NAME, F.ALERT_STATE, F.ALERT_SEVERITY, F.ALERT_VALUE, F.ALERT_THRESHOLD,
                               F.MESSAGE]))
    return found


def _panel_searches(base: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {o["id"]: o for o in [*base, *ours] if o["type"] == "search"}
    return [by_id[ERRORS_SEARCH_ID], by_id["logpipe-alerts"]]


def dashboard(panels: list[dict[str, Any]]) -> dict[str, Any]:
    layout = [(0, 0, 24, 12), (24, 0, 24, 12), (0, 12, 24, 15), (24, 12, 24, 15),
              (0, 27, 24, 15), (24, 27, 24, 15), (0, 42, 48, 12)]
    panels_json: list[dict[str, Any]] = []
    refs: list[dict[str, str]] = []
    for i, (obj, (x, y, w, h)) in enumerate(zip(panels, layout, strict=True)):
        ref = f"panel_{i}"
        panels_json.append({"version": "8.8.0", "type": obj["type"], "panelIndex": str(i + 1),
                            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i + 1)},
                            "embeddableConfig": {}, "panelRefName": ref})
        refs.append({"name": ref, "type": obj["type"], "id": obj["id"]})
    return {
        "id": "logpipe-overview",
        "type": "dashboard",
        "attributes": {
            "title": "logpipe: service overview",
            "description": "Requests/min, 5xx rate, p95 by route (metric records), top errors, alerts.",
            "panelsJSON": _dumps(panels_json),
            "optionsJSON": _dumps({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-1h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 30000},
            "version": 1,
            "kibanaSavedObjectMeta": _search_source("", with_index=False),
        },
        "references": refs,
    }


def objects() -> list[dict[str, Any]]:
    """Every saved object, referenced objects before the ones that use them."""
    base = base_objects()
    vis = visualizations()
    found = searches(base)
    return [*base, *found, *vis, dashboard([*vis, *_panel_searches(base, found)])]


def render() -> str:
    return "".join(_dumps(obj) + "\n" for obj in objects())


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale: run python kibana/generate.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text.splitlines())} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
