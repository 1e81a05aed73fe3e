"""The model catalogue: one YAML list of every model docstack can use, per profile.

Profiles register their models from it and the router reads context windows and modality from it.
Within a profile, catalogue order is preference order: the router tries the first model that
fits the prompt, and falls back down the list."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from docstack.console import DocstackError

CATALOGUE = Path(__file__).with_name("catalogue.yaml")


class ModelSpec(BaseModel):
    id: str
    profile: str
    provider: str
    provider_model_id: str
    pull: str | None = None
    parameters_b: float
    context: int = Field(gt=0)
    quantized: bool
    vision: bool
    tokenizer: Literal["gguf", "llama3", "approx"]
    cost: float = 0.0
    speed: float = 1.0
    role: Literal["answer", "shield"] = "answer"

    @property
    def stack_id(self) -> str:
        """The id the Llama Stack server lists and routes: `provider/provider's model id`."""
        return f"{self.provider}/{self.provider_model_id}"

    def with_context(self, context: int) -> ModelSpec:
        return self.model_copy(update={"context": context})


class Catalogue(BaseModel):
    models: list[ModelSpec]

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        return _load(str(path or CATALOGUE))

    def profile(self, name: str, role: str = "answer") -> list[ModelSpec]:
        return [m for m in self.models if m.profile == name and m.role == role]

    def profiles(self) -> list[str]:
        return list(dict.fromkeys(m.profile for m in self.models))


@lru_cache(maxsize=4)
def _load(path: str) -> Catalogue:
    try:
        data = yaml.safe_load(Path(path).read_text())
        catalogue = Catalogue.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise DocstackError(f"model catalogue {path} cannot be read: {exc}") from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise DocstackError(f"model catalogue {path}: {where}: {error['msg']}") from exc
    seen: set[tuple[str, str]] = set()
    for m in catalogue.models:
        if (m.profile, m.id) in seen:
            raise DocstackError(f"model catalogue {path}: model '{m.id}' is listed twice in profile '{m.profile}'")
        seen.add((m.profile, m.id))
    return catalogue
