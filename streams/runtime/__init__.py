"""Process runtimes: the only layer that wires inputs (cameras, sensors, Kafka), the rule
engine and the alert sinks together (embedded runner, Kafka ingest, scale-out worker)."""
