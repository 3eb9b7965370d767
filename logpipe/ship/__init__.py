"""Sinks and the stages just before them (throttle, batching)."""
