"""``callable:package.module:function`` — any Python function as a candidate.

The function is called as ``fn(messages, params)`` where ``messages`` is the chat (with the
candidate's system prompt, if any, merged into its leading system message: see
:func:`~aliasgate.candidates.messages.merge_system_prompt`) and ``params`` is a
:class:`GenerationParams`; it returns the completion text or a full :class:`Generation`.
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Callable
from typing import Any

from aliasgate.candidates.base import (
    Candidate,
    CandidateError,
    Generation,
    GenerationParams,
    Message,
)
from aliasgate.candidates.messages import merge_system_prompt

GenerateFn = Callable[[list[Message], GenerationParams], "str | Generation"]


def _qualified_name(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qualname}"


def _coerce_params(params: GenerationParams | dict[str, Any] | None) -> GenerationParams:
    if params is None:
        return GenerationParams()
    if isinstance(params, GenerationParams):
        return params
    try:
        return GenerationParams.from_dict(params)
    except TypeError as exc:
        raise CandidateError(f"invalid generation params {params!r}: {exc}") from None


class CallableCandidate(Candidate):
    """A candidate backed by a plain Python function.

    The fingerprint is built from the function's qualified name, the user-supplied ``version``
    string and the system prompt — *not* from the function's code. If you change what the
    function does without changing ``version``, cached responses from the old behaviour are
    served as if they came from the new one (a stale cache): bump ``version`` on every
    behaviour change.
    """

    def __init__(
        self,
        fn: GenerateFn,
        *,
        name: str | None = None,
        params: GenerationParams | dict[str, Any] | None = None,
        system_prompt: str | None = None,
        max_concurrency: int = 8,
        version: str = "0",
    ) -> None:
        """Wrap ``fn``.

        Args:
            fn: ``fn(messages, params) -> str | Generation``; must be thread-safe when
                ``max_concurrency > 1``.
            name: The candidate URI shown in reports (default ``callable:<module>:<qualname>``).
            params: Default generation parameters (a :class:`GenerationParams` or a dict of its fields).
            system_prompt: Sent as the ``system`` message of every request (merged with a
                system message the suite sends, own prompt first).
            max_concurrency: How many calls may run at once.
            version: Identifies the function's behaviour in the fingerprint; change it whenever
                the behaviour changes, or the response cache goes stale.
        """
        if not callable(fn):
            raise CandidateError(f"callable candidate needs a callable, got {type(fn).__name__}")
        if max_concurrency < 1:
            raise CandidateError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.fn = fn
        self.qualified_name = _qualified_name(fn)
        self.uri = name or f"callable:{self.qualified_name}"
        self.params = _coerce_params(params)
        self.system_prompt = system_prompt
        self.max_concurrency = max_concurrency
        self.version = str(version)

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        full = merge_system_prompt(messages, self.system_prompt)
        start = time.perf_counter()
        result = self.fn(full, params)
        latency = time.perf_counter() - start
        if isinstance(result, Generation):
            return result
        if isinstance(result, str):
            return Generation(text=result, latency_s=latency, finish_reason="stop")
        raise CandidateError(
            f"{self.qualified_name} returned {type(result).__name__}; expected str or Generation"
        )

    def fingerprint(self) -> str:
        system = hashlib.sha256((self.system_prompt or "").encode()).hexdigest()[:16]
        return f"callable:{self.qualified_name}:v{self.version}:sys-{system}"

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "candidate.function": self.qualified_name,
            "candidate.version": self.version,
            "candidate.system_prompt": self.system_prompt or "",
            **{f"candidate.params.{k}": v for k, v in self.params.as_dict().items()},
        }


def load(uri: str, **options: Any) -> Candidate:
    """Import the function named by ``callable:package.module:function`` and wrap it.

    If the attribute is already a :class:`Candidate` instance it is returned as is (options are
    then not allowed).

    Args:
        uri: ``callable:package.module:function`` (``function`` may be dotted: ``Class.method``).
        **options: Keyword arguments of :class:`CallableCandidate` (``params``, ``system_prompt``,
            ``max_concurrency``, ``version``, ``name``).
    """
    _, _, target = uri.partition(":")
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise CandidateError(
            f"cannot load candidate {uri!r}: expected 'callable:package.module:function'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CandidateError(f"cannot load candidate {uri!r}: {exc}") from exc
    try:
        for part in attr_path.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise CandidateError(
            f"cannot load candidate {uri!r}: module {module_name!r} has no attribute {attr_path!r}"
        ) from None
    if isinstance(obj, Candidate):
        if options:
            raise CandidateError(
                f"{uri!r} is already a Candidate; options {sorted(options)} cannot be applied"
            )
        return obj
    options.setdefault("name", uri)
    return CallableCandidate(obj, **options)
