"""What services import: `setup_logging` and friends (see logpipe/__init__.py for the public API).

config (EmitConfig) -> setup (wires stdlib logging + structlog) -> processors (caller thread:
capture an entry) -> queue -> handlers (writer thread: scrubbing (verdict-cached), render,
rotated files (files), console). context holds the request/user/workspace contextvar; formatter
renders the same records for handlers configured elsewhere (Django, dictConfig).
"""
