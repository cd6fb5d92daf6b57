"""The candidate interface: messages + generation parameters → :class:`Generation`."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

Message = dict[str, str]
"""A chat message: ``{"role": "user"|"system"|"assistant", "content": "..."}``."""


class CandidateError(RuntimeError):
    """A candidate could not be loaded or a call failed. Callers record the case as ``unmeasured``."""


@dataclass(frozen=True)
class GenerationParams:
    """Generation parameters, always explicit so results are reproducible and cache keys exact.

    Attributes:
        temperature: 0 means greedy.
        top_p: Nucleus sampling mass.
        top_k: Top-k sampling (0 = disabled).
        max_tokens: Hard cap on generated tokens (small models loop: always cap).
        seed: Sampling seed.
        repeat_penalty: 1.0 = none (llama.cpp's server defaults to 1.1: we never rely on defaults).
        stop: Stop sequences.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 64
    seed: int = 0
    repeat_penalty: float = 1.0
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        # field by field rather than dataclasses.asdict (a recursive deep copy): this runs once
        # per case, inside every cache key
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["stop"] = list(self.stop)
        return d

    def merged(self, overrides: dict[str, Any] | None) -> GenerationParams:
        """A copy with ``overrides`` applied (unknown keys raise ``TypeError``)."""
        if not overrides:
            return self
        clean = dict(overrides)
        if "stop" in clean:
            clean["stop"] = tuple(clean["stop"])
        return replace(self, **clean)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> GenerationParams:
        return cls().merged(d)


@dataclass(frozen=True)
class Generation:
    """What one call produced.

    Attributes:
        text: The completion text.
        prompt_tokens: Tokens in the prompt (None if the backend does not say).
        completion_tokens: Tokens generated (None if unknown).
        latency_s: Wall time of the original call (kept when served from cache).
        finish_reason: ``stop``, ``length``... as the backend reports it.
        cached: True when served from the response cache (no model call made).
    """

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    finish_reason: str | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


#: A model's generate function: ``(messages, params) -> Generation``.
GenerateFn = Callable[[list[Message], GenerationParams], Generation]


@dataclass(frozen=True)
class InnerModel:
    """The model inside a wrapping candidate (:meth:`Candidate.inner_model`).

    Attributes:
        fingerprint: The inner model's fingerprint (what its cached answers are keyed by).
        generate: Its generate function, without the wrapper.
    """

    fingerprint: str
    generate: GenerateFn


class Candidate(abc.ABC):
    """A model under evaluation.

    Subclasses set ``uri`` and ``params`` and implement :meth:`generate` and :meth:`fingerprint`.
    A candidate owns its system prompt: callers send only the suite's messages.
    """

    #: How it was named (``models:/aliasgate-demo@challenger``, ``local:smollm2``...).
    uri: str = ""
    #: Default generation parameters (a suite may override some).
    params: GenerationParams = GenerationParams()
    #: How many calls may be in flight at once (1 for an in-process model).
    max_concurrency: int = 1

    @abc.abstractmethod
    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        """Run one request. Raise :class:`CandidateError` (or anything) on failure."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A stable string identifying everything but the request that determines the output
        (weights digest, system prompt, backend version). Equal fingerprints share cache entries."""

    def describe(self) -> dict[str, Any]:
        """Loggable description (never secrets): logged as MLflow params."""
        return {"candidate.uri": self.uri, "candidate.fingerprint": self.fingerprint()}

    def inner_model(self) -> InnerModel | None:
        """The model whose answers this candidate's answers are a deterministic function of.

        A wrapper (a guard's filters around a model) returns the wrapped model here, so the
        runner can cache the wrapped model's answers under *its* fingerprint: two candidates
        around the same model then share the model's answers (a guarded variant reuses the
        plain variant's cached calls), and the wrapper's filters run again on every answer.
        Default: None (nothing inside to share).
        """
        return None

    def generate_via(
        self, inner: GenerateFn, messages: list[Message], params: GenerationParams
    ) -> Generation:
        """:meth:`generate`, with ``inner`` called instead of :meth:`inner_model`'s generate."""
        return self.generate(messages, params)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
