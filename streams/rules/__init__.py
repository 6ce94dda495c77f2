"""The rule core: pure state transitions on event time, one module per rule kind.

It imports only the foundation (events, config): the embedded runner, the Kafka worker
and the offline tools all drive the same :class:`~crowdwatch.streams.rules.engine.RuleEngine`.
"""
