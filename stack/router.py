"""The model router: for each request, which model answers and which ones stand behind it.

Rules, in order:
1. only models the stack serves now (`available`); with an image, only vision models;
2. the user's model first when one is named;
3. otherwise the first model, in catalogue order, whose window holds the whole packed prompt;
4. the rest follow as fallbacks (tried when a model fails or times out), those that hold the
   prompt first;
5. when no window holds every passage, the largest one gets as many as fit, and a notice says so:
   the router never lets a prompt be cut silently.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from docstack.console import DocstackError
from docstack.stack.catalogue import ModelSpec
from docstack.stack.client import ModelFailed


class Packed(Protocol):
    """A prompt as the router sees it: how many passages it holds and how many did not fit."""

    hits: Sequence[Any]
    dropped: int


@dataclass
class Choice:
    spec: ModelSpec
    prompt: Any  # Packed: the prompt made for this model's window


@dataclass
class Route:
    choices: list[Choice]  # the first answers; the others are fallbacks, in order
    notices: list[str] = field(default_factory=list)


class Router:
    def __init__(self, specs: Sequence[ModelSpec], available: Collection[str]):
        self.specs = list(specs)
        self.available = set(available)

    def run(self, pack: Callable[[ModelSpec], Packed], requested: str | None = None, vision: bool = False) -> Route:
        """`pack(spec)`: the prompt made for that model's window (its own tokenizer and size)."""
        candidates = self._candidates(requested, vision)
        choices = [Choice(spec, pack(spec)) for spec in candidates]
        pinned = choices[:1] if requested else []
        rest = [c for c in choices if c not in pinned]
        # Those that hold the most passages first (all of them, where any window holds them all); a
        # stable sort keeps catalogue order among equals.
        rest.sort(key=lambda c: -len(c.prompt.hits))
        route = Route(pinned + rest)
        first = route.choices[0]
        if first.prompt.dropped:
            total = len(first.prompt.hits) + first.prompt.dropped
            route.notices.append(
                f"packed {len(first.prompt.hits)} of {total} passages: {first.spec.id}'s window of "
                f"{first.spec.context} tokens holds no more" + ("" if requested else " and no model's window is larger")
            )
        return route

    def pick(self, requested: str | None = None) -> ModelSpec:
        """The model that answers a request with no passages (a follow-up's rewriting, say)."""
        return self._candidates(requested, vision=False)[0]

    def _candidates(self, requested: str | None, vision: bool) -> list[ModelSpec]:
        serving = [s for s in self.specs if s.stack_id in self.available]
        if vision:
            serving = [s for s in serving if s.vision]
        if requested:
            named = [s for s in self.specs if requested in (s.id, s.stack_id)]
            if not named:
                known = ", ".join(s.id for s in self.specs) or "none"
                raise DocstackError(f"model '{requested}' is not in this profile's catalogue (models: {known})")
            if named[0] not in serving:
                why = "does not take images" if vision and not named[0].vision else "is not served by the stack now"
                raise DocstackError(f"model '{requested}' {why}; `docstack models` says what is usable")
            serving.remove(named[0])
            serving.insert(0, named[0])
        if not serving:
            kind = "vision model" if vision else "model"
            raise DocstackError(f"no {kind} of this profile is served by the stack now; `docstack models` says why")
        return serving


class Fallback:
    """Streams the answer of the route's first model that starts answering. A model that fails,
    times out or ends before its first word hands over to the next, and a notice on the route says
    so; so does an answer cut at its length limit. Whatever the model client, a reply without a
    word is a failure, never passed on as an empty answer (or an abstention)."""

    def __init__(self, route: Route, generate: Callable[[Choice], Iterable[str]]):
        self.route = route
        self.generate = generate
        self.choice: Choice | None = None

    def __iter__(self) -> Iterator[str]:
        failures: list[str] = []
        for i, choice in enumerate(self.route.choices):
            generation = self.generate(choice)
            deltas = iter(generation)
            try:
                opening = _opening(deltas, choice.spec.stack_id)
            except ModelFailed as exc:
                failures.append(str(exc))
                if i + 1 == len(self.route.choices):
                    raise ModelFailed("no model could answer: " + "; ".join(failures)) from exc
                self.route.notices.append(f"{exc}; {self.route.choices[i + 1].spec.id} answered instead")
                continue
            self.choice = choice
            yield from opening
            yield from deltas
            if getattr(generation, "finish_reason", None) == "length":
                self.route.notices.append(f"{choice.spec.id}'s answer reached the length limit and was cut "
                                          "(DOCSTACK_MAX_ANSWER_TOKENS)")
            return


def _opening(deltas: Iterator[str], model: str) -> list[str]:
    """The pieces of a reply up to its first word; ModelFailed if it ends before one."""
    pieces = []
    for delta in deltas:
        pieces.append(delta)
        if delta.strip():
            return pieces
    raise ModelFailed(f"{model} returned an empty answer")
