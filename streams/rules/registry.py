"""Rule kinds by name, and the rules a site's config builds.

Kinds register their config model with :func:`rule_kind`; config validation, the
engine, metrics and tuning all ask here instead of listing kinds.
"""

from __future__ import annotations

from typing import Any, TypeVar

from crowdwatch.config import CrowdwatchConfig, register_rule_model, rule_models
from crowdwatch.streams.rules.base import Rule, RuleSeries, RuleSpec

SpecT = TypeVar("SpecT", bound=type[RuleSpec])


def rule_kind(model: SpecT) -> SpecT:
    """Class decorator for a kind's config model: makes the kind known everywhere."""
    register_rule_model(model)
    return model


def kinds() -> dict[str, type[RuleSpec]]:
    """Every registered kind (built-in kinds load on first use)."""
    return {name: model for name, model in rule_models().items() if issubclass(model, RuleSpec)}


def specs(config: CrowdwatchConfig) -> list[RuleSpec]:
    """The config's rules as specs (every rule model the registry gives is one)."""
    out = []
    for rule in config.rules:
        if not isinstance(rule, RuleSpec):
            raise TypeError(f"rule {rule.kind!r} is not a rule-core spec")
        out.append(rule)
    return out


def build_rules(config: CrowdwatchConfig) -> list[Rule[Any]]:
    """Every rule instance of the site, in config order."""
    return [rule for spec in specs(config) for rule in spec.build(config)]


def learns_over_weeks(config: CrowdwatchConfig) -> bool:
    """Whether any of the site's rules learns its zone's usual (a persistent state)."""
    return any(rule.persistent for rule in build_rules(config))


def rule_series(config: CrowdwatchConfig) -> list[RuleSeries]:
    """Every (rule, zone, severity, threshold) label set the site's rules can raise."""
    return [series for rule in build_rules(config) for series in rule.labelled_series()]
