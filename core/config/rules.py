"""What every rule's config shares, and the registry rule-kind plug-ins add theirs to."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from crowdwatch.config.fields import Identifier, Loc, Strict
from crowdwatch.kinds import KindRegistry

if TYPE_CHECKING:
    from crowdwatch.config.model import CrowdwatchConfig

RuleSource = Literal["auto", "camera", "sensor"]
RULE_PLUGIN_GROUP = "crowdwatch.rules"


class RuleConfig(Strict):
    """What every rule's config shares. Each kind subclasses it in its own module of the
    rule core (``crowdwatch.streams.rules.kinds``) and registers itself; this layer only
    knows the base, so the foundation never imports the rules."""

    kind: str
    id: Identifier | None = Field(
        None, description="Stable rule id (state, alerts); default: derived from the kind, "
        "what it watches and its settings, so reordering rules never changes it.")

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        """References that do not resolve against the rest of the site (field path, message)."""
        return []

    # Fields that define what the rule is, beside its kind and target: they make the
    # derived id. Others (timers, windows) are settings: changing one keeps the id and
    # starts the rule's state fresh.
    IDENTITY: ClassVar[tuple[str, ...]] = ("severity",)

    def target(self) -> str:
        """What the rule watches, for its derived id (a zone, camera or sensor id)."""
        for name in ("zone", "camera", "sensor"):
            value = getattr(self, name, None)
            if isinstance(value, str):
                return value
        return "all"

    def rule_id(self) -> str:
        """The given id, or ``kind:target:digest`` of what defines the rule, so reordering
        rules or retuning a timer never changes it."""
        if self.id:
            return self.id
        identity = {name: getattr(self, name, None) for name in self.IDENTITY}
        body = json.dumps(identity, sort_keys=True, default=str)
        return f"{self.kind}:{self.target()}:{hashlib.sha256(body.encode()).hexdigest()[:6]}"

    def settings_digest(self) -> str:
        """Digest of every setting: a stored state made under other settings is not reused."""
        body = json.dumps(self.model_dump(mode="json", by_alias=True, exclude={"id"}),
                          sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:8]


RULES: KindRegistry[RuleConfig] = KindRegistry(RULE_PLUGIN_GROUP)
register_rule_model = RULES.register
rule_models = RULES.models
