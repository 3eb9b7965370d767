"""Elasticsearch support: client construction, setup of templates/ILM, queries."""
