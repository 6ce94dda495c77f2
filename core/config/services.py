"""The process's own services: dead letters, console, metrics endpoint and engine."""

from __future__ import annotations

from pydantic import Field, StrictInt

from crowdwatch.config.fields import Seconds, Strict


class DeadLetterConfig(Strict):
    path: str = Field("crowdwatch-deadletter.jsonl", description="Embedded mode: rejected "
                      "messages are appended here (created on the first one) with the reason.")
    max_raw_bytes: int = Field(4096, ge=64, description="Raw message kept up to this size.")


class ConsoleConfig(Strict):
    """The web console served by the process (operators' live page)."""

    host: str = Field("127.0.0.1", description="Bind address. Beyond loopback the console "
                      "refuses to start unless the token variable holds a token.")
    port: StrictInt = Field(8080, ge=0, le=65535, description="0 disables the console.")
    token_env: str = Field("CROWDWATCH_CONSOLE_TOKEN", description="Environment variable "
                           "with the access token (required beyond loopback; optional on it).")
    admin_token_env: str = Field("CROWDWATCH_CONSOLE_ADMIN_TOKEN", description="Environment "
                                 "variable with the admin token: camera setup needs it once "
                                 "any token is set.")
    audit_log: str | None = Field(None, description="Also append each setup action (who, "
                                  "when, which camera; never pixels) to this JSONL file.")
    recordings: str | None = Field(None, description="Folder of recorded feeds (CSV, JSONL) "
                                   "the tuning page may replay; none: no tuning page.")
    history: Seconds = Field(1800.0, gt=0, le=86400, description="Sparkline span per zone.")
    push_every: Seconds = Field(1.0, gt=0, le=60, description="Live updates this often.")
    login_attempts: int = Field(5, ge=1, le=1000, description="Failed logins per client "
                                "per minute before it must wait.")


class MetricsConfig(Strict):
    host: str = Field("127.0.0.1", description="Bind address of the /metrics endpoint.")
    port: StrictInt = Field(9108, ge=0, le=65535, description="0 disables the endpoint.")



class EngineConfig(Strict):
    tick: Seconds = Field(1.0, gt=0, description="How often time-based rules are evaluated.")
    queue_size: int = Field(10000, ge=10, description="Events buffered between stages.")
    state_file: str | None = Field(
        None, description="Embedded mode: what rules learn over weeks (seasonal, unusual) is "
        "kept here and loaded at start; `replay --learn` writes it. None: relearned after "
        "every restart.")
    save_every: Seconds = Field(300.0, gt=0, description="Save the state file this often "
                                "(and at exit).")

