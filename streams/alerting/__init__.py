"""Alert delivery: console, JSONL, Alertmanager, webhook and Grafana annotations.

Sinks take :class:`~crowdwatch.events.Alert` objects and import only the foundation.
"""
