"""``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH`` — MLflow pyfunc models.

An alias is resolved to a version first, and that exact version is loaded (an alias may move
meanwhile: the candidate records the version it actually ran). A model registered by
:func:`aliasgate.registry.models.register_local_candidate` is unwrapped to its inner
:class:`~aliasgate.candidates.local.LocalLlamaCandidate`, so its fingerprint is the inner one
(versions with identical config share cache entries); one registered by
:func:`aliasgate.registry.models.register_openai_candidate` is likewise unwrapped to its inner
:class:`~aliasgate.candidates.openai_.OpenAICandidate` (:class:`MlflowHostedCandidate`); any other
pyfunc model becomes a :class:`PyfuncCandidate`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from aliasgate.candidates.base import (
    Candidate,
    CandidateError,
    GenerateFn,
    Generation,
    GenerationParams,
    InnerModel,
    Message,
)
from aliasgate.candidates.local import LocalLlamaCandidate
from aliasgate.defaults import ensure_store, quiet_environment

_ALIAS_RE = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)/?$")
_VERSION_RE = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)/?$")
_RUNS_RE = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class ModelRef:
    """What a model URI resolved to.

    Attributes:
        uri: The URI as given.
        load_uri: The URI actually loaded (an alias replaced by its version).
        name: Registered model name (None for ``runs:/``).
        version: Model version (None for ``runs:/``).
        alias: The alias given, if any.
        run_id: The run that logged the model.
        source: The version's artifact source.
    """

    uri: str
    load_uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    source: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "candidate.model_name": self.name or "",
            "candidate.model_version": self.version or "",
            "candidate.model_alias": self.alias or "",
            "candidate.run_id": self.run_id or "",
            "candidate.model_uri": self.load_uri,
        }


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "") or ""
    return (
        "RESOURCE_DOES_NOT_EXIST" in code
        or "INVALID_PARAMETER_VALUE" in code
        or "NOT_FOUND" in code
    )


def resolve(uri: str) -> ModelRef:
    """Resolve a ``models:/`` or ``runs:/`` URI against the configured tracking store.

    Raises:
        CandidateError: the registered model, alias or version does not exist (named).
    """
    quiet_environment()
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=ensure_store(mlflow.get_tracking_uri()))
    store = mlflow.get_tracking_uri()
    if m := _RUNS_RE.match(uri):
        return ModelRef(uri=uri, load_uri=uri, run_id=m["run_id"], source=uri)
    m = _ALIAS_RE.match(uri) or _VERSION_RE.match(uri)
    if m is None:
        raise CandidateError(
            f"cannot load candidate {uri!r}: expected models:/NAME@ALIAS, models:/NAME/VERSION "
            f"or runs:/RUN_ID/PATH"
        )
    name = m["name"]
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if _is_missing(exc):
            raise CandidateError(
                f"cannot load candidate {uri!r}: registered model {name!r} does not exist "
                f"in tracking store {store}"
            ) from None
        raise CandidateError(f"cannot load candidate {uri!r}: {exc}") from exc
    alias = m.groupdict().get("alias")
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, m["version"])
    except MlflowException as exc:
        if not _is_missing(exc):
            raise CandidateError(f"cannot load candidate {uri!r}: {exc}") from exc
        if alias is not None:
            known = ", ".join(f"@{a}" for a in sorted(registered.aliases or {})) or "none"
            raise CandidateError(
                f"cannot load candidate {uri!r}: alias {alias!r} is not set on registered model "
                f"{name!r} (aliases: {known}; store {store})"
            ) from None
        raise CandidateError(
            f"cannot load candidate {uri!r}: registered model {name!r} has no version "
            f"{m['version']} (store {store})"
        ) from None
    return ModelRef(
        uri=uri,
        load_uri=f"models:/{name}/{mv.version}",
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        source=mv.source,
    )


class MlflowLocalCandidate(Candidate):
    """A registered :class:`LocalLlamaCandidate`: calls go straight to the inner adapter.

    Attributes:
        local: The inner adapter (built by the model's ``load_context``).
        ref: Which model version this is.
    """

    max_concurrency = 1

    def __init__(self, local: LocalLlamaCandidate, ref: ModelRef, pyfunc_model: Any = None) -> None:
        self.local = local
        self.ref = ref
        self.uri = ref.uri
        self.params = local.params
        self._pyfunc_model = pyfunc_model  # keeps the loaded model alive

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        return self.local.generate(messages, params)

    def fingerprint(self) -> str:
        return self.local.fingerprint()

    def inner_model(self) -> InnerModel | None:
        return self.local.inner_model()

    def generate_via(
        self, inner: GenerateFn, messages: list[Message], params: GenerationParams
    ) -> Generation:
        return self.local.generate_via(inner, messages, params)

    def describe(self) -> dict[str, Any]:
        inner = self.local.describe()
        inner.pop("candidate.uri", None)
        return {**super().describe(), **self.ref.describe(), **inner}

    def close(self) -> None:
        self.local.close()


class MlflowHostedCandidate(Candidate):
    """A registered hosted model (``register_openai_candidate``): calls go straight to the inner
    :class:`~aliasgate.candidates.openai_.OpenAICandidate` (same fingerprint, same concurrency).

    Attributes:
        inner: The inner adapter (built by the model's ``load_context``; key read from the env).
        ref: Which model version this is.
    """

    def __init__(self, inner: Candidate, ref: ModelRef, pyfunc_model: Any = None) -> None:
        self.inner = inner
        self.ref = ref
        self.uri = ref.uri
        self.params = inner.params
        self.max_concurrency = inner.max_concurrency
        self._pyfunc_model = pyfunc_model  # keeps the loaded model alive

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        return self.inner.generate(messages, params)

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def inner_model(self) -> InnerModel | None:
        return self.inner.inner_model()

    def generate_via(
        self, inner: GenerateFn, messages: list[Message], params: GenerationParams
    ) -> Generation:
        return self.inner.generate_via(inner, messages, params)

    def describe(self) -> dict[str, Any]:
        inner = self.inner.describe()
        inner.pop("candidate.uri", None)
        return {**super().describe(), **self.ref.describe(), **inner}

    def close(self) -> None:
        self.inner.close()


def first_text(output: Any) -> str:
    """The first element of a pyfunc prediction as text (str, or dict with ``text``/``content``).

    Raises:
        CandidateError: empty output or an element of another shape.
    """
    if hasattr(output, "iloc"):  # pandas DataFrame / Series
        if len(output) == 0:
            raise CandidateError("pyfunc model returned an empty prediction")
        row = output.iloc[0]
        if hasattr(row, "to_dict"):  # DataFrame row
            row = row.to_dict()
            for key in ("text", "content"):
                if key in row:
                    return _as_text(row[key])
            if len(row) == 1:
                return _as_text(next(iter(row.values())))
            raise CandidateError(f"pyfunc model returned columns {sorted(row)}; expected 'text'")
        return _as_text(row)
    if isinstance(output, str | dict):
        return _as_text(output)
    try:
        items = list(output)
    except TypeError:
        raise CandidateError(
            f"pyfunc model returned {type(output).__name__}; expected a list of strings"
        ) from None
    if not items:
        raise CandidateError("pyfunc model returned an empty prediction")
    return _as_text(items[0])


def _as_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("text", "content"):
            if isinstance(item.get(key), str):
                return item[key]
    raise CandidateError(
        f"pyfunc model returned {item!r}; expected a string or a dict with 'text' or 'content'"
    )


class PyfuncCandidate(Candidate):
    """Any other MLflow pyfunc model, called as ``predict([user_prompt])``.

    With ``input_format="messages"`` it is called as ``predict([{"messages": messages}])``
    instead, which allows multi-turn chats and system messages (a suite with a ``system`` prefix
    needs it: in ``text`` format such a request is an error, never silently stripped).
    Generation parameters are passed as ``params`` only when the model's signature declares them
    (filtered to the declared names).
    """

    def __init__(
        self,
        model: Any,
        ref: ModelRef,
        *,
        params: GenerationParams | dict[str, Any] | None = None,
        input_format: str = "text",
        max_concurrency: int = 1,
    ) -> None:
        """Wrap a loaded pyfunc model.

        Args:
            model: The ``mlflow.pyfunc.PyFuncModel``.
            ref: The resolved model reference.
            params: Default generation parameters.
            input_format: ``text`` (one user prompt string) or ``messages``.
            max_concurrency: Calls in flight at once (only raise it if ``predict`` is thread-safe).
        """
        if input_format not in ("text", "messages"):
            raise CandidateError(f"input_format must be 'text' or 'messages', got {input_format!r}")
        self.model = model
        self.ref = ref
        self.uri = ref.uri
        self.input_format = input_format
        self.max_concurrency = max_concurrency
        if isinstance(params, dict):
            params = GenerationParams.from_dict(params)
        self.params = params or GenerationParams()
        schema = None
        try:
            schema = model.metadata.get_params_schema()
        except Exception:  # noqa: BLE001 - no signature: no params
            schema = None
        self._param_names = {p.name for p in schema.params} if schema is not None else set()

    def _input(self, messages: list[Message]) -> list[Any]:
        if self.input_format == "messages":
            return [{"messages": list(messages)}]
        # A system message (a suite's system prefix, e.g. a canary) cannot be passed as text:
        # dropping it would silently change what is tested, so it is an error (case unmeasured).
        if len(messages) != 1 or messages[0].get("role") != "user":
            raise CandidateError(
                f"{self.uri} takes one user prompt (input_format='text'); got "
                f"{[m.get('role') for m in messages]} — load it with input_format='messages'"
            )
        return [messages[0]["content"]]

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        model_input = self._input(messages)
        call_params = {k: v for k, v in params.as_dict().items() if k in self._param_names}
        start = time.perf_counter()
        if call_params:
            output = self.model.predict(model_input, params=call_params)
        else:
            output = self.model.predict(model_input)
        latency = time.perf_counter() - start
        return Generation(text=first_text(output), latency_s=latency)

    def fingerprint(self) -> str:
        if self.ref.name is not None:
            return f"mlflow:{self.ref.name}/{self.ref.version}:{self.ref.run_id}:{self.ref.source}"
        return f"mlflow:{self.ref.load_uri}"

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            **self.ref.describe(),
            "candidate.input_format": self.input_format,
        }


def load(uri: str, **options: Any) -> Candidate:
    """Load an MLflow pyfunc model as a candidate.

    Args:
        uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/RUN_ID/PATH``.
        **options: For a registered local model: ``n_threads`` (overrides the machine default).
            For other pyfunc models: ``params``, ``input_format``, ``max_concurrency``
            (see :class:`PyfuncCandidate`).
    """
    ref = resolve(uri)
    quiet_environment()
    import mlflow.pyfunc

    model_config = {"n_threads": options.pop("n_threads")} if "n_threads" in options else None
    try:
        model = mlflow.pyfunc.load_model(ref.load_uri, model_config=model_config)
    except CandidateError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the URI
        cause = exc
        while cause.__cause__ is not None and not isinstance(cause, CandidateError):
            cause = cause.__cause__
        if isinstance(cause, CandidateError):
            raise CandidateError(f"cannot load candidate {uri!r}: {cause}") from exc
        raise CandidateError(f"cannot load candidate {uri!r} ({ref.load_uri}): {exc}") from exc
    try:
        python_model = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 - not a PythonModel (sklearn, transformers...)
        python_model = None
    inner = getattr(python_model, "candidate", None)
    if getattr(python_model, "aliasgate_kind", None) == "aliasgate.local" and isinstance(
        inner, LocalLlamaCandidate
    ):
        if options:
            raise CandidateError(f"unknown options for {uri!r}: {sorted(options)}")
        inner.uri = uri
        return MlflowLocalCandidate(inner, ref, model)
    if getattr(python_model, "aliasgate_kind", None) == "aliasgate.openai" and isinstance(
        inner, Candidate
    ):
        if options:
            raise CandidateError(f"unknown options for {uri!r}: {sorted(options)}")
        inner.uri = uri
        return MlflowHostedCandidate(inner, ref, model)
    return PyfuncCandidate(model, ref, **options)
