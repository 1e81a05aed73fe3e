"""The safety policy: what happens to each category of finding at each stage, per profile and per
collection. The default lives in safety/policy.yaml; DOCSTACK_SAFETY_POLICY points at another."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from docstack.safety.base import STAGES

from docstack.console import DocstackError

DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")
ACTIONS = ("block", "redact", "drop", "strip", "quote", "warn", "allow")
# Bump when a shield's rules change: stored chunk verdicts made under another version are re-checked.
RULES_VERSION = "1"
# Severity, to report the strongest action when several findings disagree.
SEVERITY = {"block": 6, "drop": 5, "strip": 4, "redact": 3, "quote": 2, "warn": 1, "allow": 0}


@dataclass(frozen=True)
class Policy:
    source: str
    stages: dict[str, dict[str, str]]
    thresholds: dict[str, float]
    shields: dict[str, bool]
    version: str

    def action(self, stage: str, category: str) -> str:
        return self.stages.get(stage, {}).get(category, "warn")  # an unknown category is logged, not lost

    @classmethod
    def load(cls, path: Path | None = None, profile: str | None = None, collection: str | None = None) -> Policy:
        path = Path(path or DEFAULT_POLICY)
        try:
            raw = path.read_bytes()
            data = yaml.safe_load(raw) or {}
        except OSError as exc:
            raise DocstackError(f"safety policy {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise DocstackError(f"safety policy {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise DocstackError(f"safety policy {path}: expected a mapping at the top level")
        stages = copy.deepcopy(data.get("stages") or {})
        for key, name in (("profiles", profile), ("collections", collection)):
            override = (data.get(key) or {}).get(name) if name else None
            for stage, actions in (override or {}).items():
                stages.setdefault(stage, {}).update(actions or {})
        _validate(path, stages)
        thresholds = {k: float(v) for k, v in (data.get("thresholds") or {}).items()}
        shields = {k: bool(v) for k, v in (data.get("shields") or {}).items()}
        # The version covers what decides a chunk's stored verdict: the rules and the whole file.
        version = hashlib.sha256(RULES_VERSION.encode() + raw).hexdigest()[:12]
        return cls(str(path), stages, thresholds, shields, version)


def _validate(path: Path, stages: dict) -> None:
    for stage, actions in stages.items():
        if stage not in STAGES:
            raise DocstackError(f"safety policy {path}: unknown stage '{stage}' (use {', '.join(STAGES)})")
        if not isinstance(actions, dict):
            raise DocstackError(f"safety policy {path}: stages.{stage} must map categories to actions")
        for category, action in actions.items():
            if action not in ACTIONS:
                raise DocstackError(f"safety policy {path}: stages.{stage}.{category} is '{action}', "
                                    f"not one of {', '.join(ACTIONS)}")
