"""Where `logpipe query` and `logpipe es setup` get their cluster and credentials from.

One rule for both commands: command-line flag > LOGPIPE_* environment variable > the
`[sink]` of a `--config` file (when that sink is Elasticsearch) > the default URL. The
sidecar's own sink follows the same order through `logpipe.config.apply_env`.
"""

from __future__ import annotations

import os
from dataclasses import replace

from logpipe.config import ES_URL_ENV, is_es_url, load_config
from logpipe.es.client import EsOptions

DEFAULT_URL = "http://localhost:9200"


def command_options(url_flag: str | None, *, ca_file_flag: str = "", insecure: bool = False,
                    config_file: str | None = None, request_timeout_s: float = 30.0) -> EsOptions:
    """The connection options, URL as chosen (`.resolved()` fills credentials from the URL and
    the environment and strips them from the URL; show the URL with `mask_url`).

    Raises ConfigError for a bad config file. A config whose sink is not Elasticsearch
    (forward://, file:) contributes nothing: its credentials are for another server."""
    base = EsOptions(url=DEFAULT_URL)
    if config_file:
        cfg = load_config(config_file)  # the environment is applied over the file here
        if cfg.sink.urls and all(is_es_url(u) for u in cfg.sink.urls):  # the nodes of one cluster
            base = replace(EsOptions.from_sink_config(cfg.sink), url=",".join(cfg.sink.urls))
        elif is_es_url(cfg.sink.url):
            base = EsOptions.from_sink_config(cfg.sink)
    url = url_flag or os.environ.get(ES_URL_ENV) or base.url
    return EsOptions(
        url=url, username=base.username, password=base.password, api_key=base.api_key,
        ca_file=ca_file_flag or base.ca_file, cert_file=base.cert_file, key_file=base.key_file,
        insecure=insecure or base.insecure, request_timeout_s=request_timeout_s,
    )
