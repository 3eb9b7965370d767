"""A small FastAPI service that shows logpipe end to end (see demo/app.py, demo/traffic.py)."""
