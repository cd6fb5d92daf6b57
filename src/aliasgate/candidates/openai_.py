"""``openai:MODEL``, ``azure:DEPLOYMENT``, ``openai-compatible:MODEL@BASE_URL`` — hosted chat models.

One adapter over the official ``openai`` client (imported on first use) for OpenAI, Azure OpenAI
and any server speaking ``/v1/chat/completions`` (vLLM, Ollama, llama.cpp's server, Databricks
serving endpoints...).

Secrets: the config holds ``api_key_env`` — the *name* of the environment variable with the key —
never the key. The key is read when the candidate is built and lives only inside the client
object; :meth:`OpenAICandidate.describe` and :meth:`OpenAICandidate.fingerprint` never contain it
(nor any header). Compatible servers never receive ``OPENAI_API_KEY``: they get the key named by
``api_key_env`` (default ``OPENAI_COMPATIBLE_API_KEY``) or the placeholder ``no-key``.

Failures: the client retries 408/409/429/5xx, timeouts and connection errors ``max_retries``
times with its own backoff (honouring ``Retry-After``/``retry-after-ms`` up to 60 s). What still
fails — and a malformed or choice-less response, or an empty answer blocked by a content filter —
raises :class:`CandidateError` naming the status code and request id; the runner records the case
as ``unmeasured``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aliasgate.candidates.base import (
    Candidate,
    CandidateError,
    Generation,
    GenerationParams,
    Message,
)
from aliasgate.candidates.messages import merge_system_prompt
from aliasgate.redact import redact_uri

Provider = Literal["openai", "azure", "compatible"]

#: Environment variable holding the key when ``api_key_env`` is not set.
DEFAULT_KEY_ENV: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "compatible": "OPENAI_COMPATIBLE_API_KEY",
}
#: Sent as the bearer token to a compatible server when no key is configured (most need none).
NO_KEY = "no-key"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: URI scheme of each provider.
SCHEME_OF: dict[str, str] = {"openai": "openai", "azure": "azure", "compatible": "openai-compatible"}
_PROVIDER_OF = {v: k for k, v in SCHEME_OF.items()}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RETRIED_STATUS = (408, 409, 429)
_LIST_OPTIONS = ("stop", "omit_params")


class OpenAIConfig(BaseModel):
    """How to reach one hosted chat model. Holds no secret.

    Attributes:
        provider: ``openai``, ``azure`` or ``compatible`` (any OpenAI-compatible server).
        model: Model name (``gpt-4o-mini-2024-07-18``; for a compatible server, what it serves).
        deployment: Azure deployment name (``azure`` only; default ``model``).
        base_url: API base (``http://127.0.0.1:8080/v1``); ``openai`` defaults to
            ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``; required for ``compatible``.
        azure_endpoint: ``https://NAME.openai.azure.com`` (default ``$AZURE_OPENAI_ENDPOINT``).
        api_version: Azure API version (default ``$OPENAI_API_VERSION``).
        api_key_env: NAME of the environment variable holding the key (default per provider:
            ``OPENAI_API_KEY``, ``AZURE_OPENAI_API_KEY``, ``OPENAI_COMPATIBLE_API_KEY``).
        system_prompt: Sent as the ``system`` message of every request (merged with a system
            message the suite sends, own prompt first).
        params: Default generation parameters (a suite may override some).
        timeout_s: Client timeout per attempt (httpx: connect, read, write and pool each).
        max_retries: Retries of the client after the first attempt (429/5xx/timeouts).
        max_concurrency: Requests in flight at once (``--concurrency`` overrides it).
        extra_body: Extra request fields, merged last (``{"repeat_penalty": 1.0}``...).
        sampler_extras: ``compatible`` only: send ``params.top_k`` and ``params.repeat_penalty`` in
            the body (llama.cpp and vLLM read them); turn off for servers rejecting unknown fields.
        max_tokens_param: Request field for ``params.max_tokens`` (default
            ``max_completion_tokens`` for ``openai``, ``max_tokens`` otherwise — llama.cpp's
            server ignores ``max_completion_tokens``).
        omit_params: Request fields not to send (``["temperature", "top_p"]`` for reasoning
            models that reject them).
        cost_per_1k_input: Price per 1,000 prompt tokens (adds ``cost_usd`` to each generation).
        cost_per_1k_output: Price per 1,000 completion tokens.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    provider: Provider = "openai"
    model: str | None = None
    deployment: str | None = None
    base_url: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    api_key_env: str | None = None
    system_prompt: str | None = None
    params: GenerationParams = Field(default_factory=GenerationParams)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    max_concurrency: int = Field(default=8, ge=1)
    extra_body: dict[str, Any] = Field(default_factory=dict)
    sampler_extras: bool = True
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None
    omit_params: list[str] = Field(default_factory=list)
    cost_per_1k_input: float | None = Field(default=None, ge=0)
    cost_per_1k_output: float | None = Field(default=None, ge=0)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(
                "api_key_env is the NAME of an environment variable (like OPENAI_API_KEY), "
                "not the key itself"
            )
        return v

    def resolved(self, env: Mapping[str, str] | None = None) -> OpenAIConfig:
        """A copy with every environment-derived default made explicit, checked for completeness.

        Args:
            env: Where to read ``OPENAI_BASE_URL``, ``AZURE_OPENAI_ENDPOINT``,
                ``OPENAI_API_VERSION`` (default ``os.environ``). Keys are never read here.

        Raises:
            CandidateError: a required setting is missing (names the option and the variable).
        """
        env = os.environ if env is None else env
        u: dict[str, Any] = {
            "api_key_env": self.api_key_env or DEFAULT_KEY_ENV[self.provider],
            "max_tokens_param": self.max_tokens_param
            or ("max_completion_tokens" if self.provider == "openai" else "max_tokens"),
        }
        if self.provider == "openai":
            if not self.model:
                raise CandidateError("openai candidate needs a model (openai:MODEL)")
            u["base_url"] = self.base_url or env.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL
        elif self.provider == "compatible":
            if not self.model:
                raise CandidateError("openai-compatible candidate needs a model (MODEL@BASE_URL)")
            if not self.base_url:
                raise CandidateError(
                    "openai-compatible candidate needs a base_url "
                    "(openai-compatible:MODEL@http://127.0.0.1:8080/v1)"
                )
        else:
            deployment = self.deployment or self.model
            if not deployment:
                raise CandidateError("azure candidate needs a deployment (azure:DEPLOYMENT)")
            endpoint = self.azure_endpoint or env.get("AZURE_OPENAI_ENDPOINT")
            if not endpoint:
                raise CandidateError(
                    "azure candidate needs azure_endpoint or $AZURE_OPENAI_ENDPOINT "
                    "(https://NAME.openai.azure.com)"
                )
            version = self.api_version or env.get("OPENAI_API_VERSION")
            if not version:
                raise CandidateError(
                    "azure candidate needs api_version or $OPENAI_API_VERSION (e.g. 2024-10-21)"
                )
            u.update(deployment=deployment, model=self.model or deployment,
                     azure_endpoint=endpoint, api_version=version)
        return self.model_copy(update=u)


def redact_url(url: str | None) -> str:
    """``url`` without credentials (:func:`aliasgate.redact.redact_uri`, which copes with a
    password holding ``@`` or ``/``) and without its query string, which may carry tokens."""
    return redact_uri(url, query=False)


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            code = inner.get("code") or inner.get("type")
            return f"{inner['message']}" + (f" ({code})" if code else "")
    return str(getattr(exc, "message", "") or exc)[:500]


class OpenAICandidate(Candidate):
    """A hosted chat model reached through the official ``openai`` client (thread-safe).

    Args:
        config: Where and how to call it (see :class:`OpenAIConfig`); env defaults are resolved now.
        uri: Name shown in reports (default ``openai:MODEL``, ``azure:DEPLOYMENT`` or
            ``openai-compatible:MODEL@BASE_URL``).

    Raises:
        CandidateError: incomplete config, the key's environment variable is not set, or the
            ``openai`` package is missing.
    """

    def __init__(self, config: OpenAIConfig, *, uri: str | None = None) -> None:
        self.config = config.resolved()
        c = self.config
        self.uri = uri or _default_uri(c)
        self.params = c.params
        self.max_concurrency = c.max_concurrency
        self.where = redact_url(c.azure_endpoint if c.provider == "azure" else c.base_url)
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise CandidateError(f"hosted candidates need the openai package ({exc})") from exc
        self._openai = openai
        import httpx

        self._httpx_response = httpx.Response
        key = _read_key(c)
        common = {"api_key": key, "timeout": c.timeout_s, "max_retries": c.max_retries}
        if c.provider == "azure":
            # AzureOpenAI sends the key as ``api-key`` *and* as ``Authorization: Bearer``
            # (openai 1.109); Azure needs only the former: send it once.
            self._client = openai.AzureOpenAI(
                azure_endpoint=c.azure_endpoint, azure_deployment=c.deployment,
                api_version=c.api_version, default_headers={"Authorization": openai.Omit()},
                **common,
            )
        elif c.provider == "compatible":
            # $OPENAI_ORG_ID / $OPENAI_PROJECT_ID name an OpenAI account: not for other servers.
            no_account = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
            self._client = openai.OpenAI(base_url=c.base_url, default_headers=no_account, **common)
        else:
            self._client = openai.OpenAI(base_url=c.base_url, **common)

    # -- request -----------------------------------------------------------------------------
    def request_body(self, messages: list[Message], params: GenerationParams) -> dict[str, Any]:
        """The JSON body of one ``/chat/completions`` request (``extra_body`` merged last).

        Raises:
            CandidateError: ``top_k``/``repeat_penalty`` set but the provider cannot take them.
        """
        c = self.config
        extras_ok = c.provider == "compatible" and c.sampler_extras
        if not extras_ok and (params.top_k != 0 or params.repeat_penalty != 1.0):
            raise CandidateError(
                f"{self.uri}: {c.provider} has no top_k/repeat_penalty (got top_k={params.top_k}, "
                f"repeat_penalty={params.repeat_penalty}); leave them at 0 / 1.0"
            )
        body: dict[str, Any] = {
            "model": c.deployment if c.provider == "azure" else c.model,
            "messages": merge_system_prompt(messages, c.system_prompt),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            str(c.max_tokens_param): params.max_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        for name in c.omit_params:
            body.pop(name, None)
        if extras_ok:
            body.update(top_k=params.top_k, repeat_penalty=params.repeat_penalty)
        body.update(c.extra_body)
        return body

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        """One chat completion. Transport, auth, retries with backoff (``Retry-After``), timeouts
        and Azure's deployment URLs are the ``openai`` client's (``client.post``, its documented
        way to send a raw request); the JSON body is ours and the reply is parsed here: the
        typed ``chat.completions.create`` costs ~0.3 ms more CPU per call (its request transform
        and response model), which caps throughput at high concurrency (bench/latency_bound.py).
        """
        body = self.request_body(messages, params)
        oa = self._openai
        tries = self.config.max_retries + 1
        start = time.perf_counter()
        try:
            response = self._client.post("/chat/completions", body=body, cast_to=self._httpx_response)
        except oa.APITimeoutError as exc:
            raise CandidateError(
                f"{self.uri}: no answer from {self.where} within {self.config.timeout_s:g} s "
                f"({tries} attempts)"
            ) from exc
        except oa.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise CandidateError(
                f"{self.uri}: cannot connect to {self.where} ({tries} attempts): "
                f"{type(cause).__name__}: {cause}"
            ) from exc
        except oa.APIStatusError as exc:
            code = exc.status_code
            retried = code in _RETRIED_STATUS or code >= 500
            raise CandidateError(
                f"{self.uri}: HTTP {code} from {self.where} (request id {exc.request_id or 'none'}"
                f"{f', after {tries} attempts' if retried else ''}): {_error_detail(exc)}"
            ) from exc
        except oa.OpenAIError as exc:
            raise CandidateError(f"{self.uri}: {type(exc).__name__}: {exc}") from exc
        latency = time.perf_counter() - start
        return self._generation(response, latency)

    def _generation(self, response: Any, latency: float) -> Generation:
        """A :class:`Generation` from the final HTTP response, or :class:`CandidateError`."""
        headers = response.headers
        request_id = headers.get("x-request-id") or headers.get("apim-request-id")
        rid = request_id or "none"
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            raise CandidateError(
                f"{self.uri}: malformed response from {self.where} (HTTP {response.status_code}, "
                f"request id {rid}): {type(exc).__name__}: {exc}"
            ) from exc
        choices = data.get("choices") if isinstance(data, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            error = data.get("error") if isinstance(data, dict) else None
            shown = f"error: {error}" if error else repr(response.text[:200])
            raise CandidateError(
                f"{self.uri}: response from {self.where} has no choices[0].message "
                f"(request id {rid}): {shown}"
            )
        content = message.get("content")
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        try:
            retries = int(response.request.headers.get("x-stainless-retry-count", 0))
        except (RuntimeError, ValueError):
            retries = 0
        extra: dict[str, Any] = {"request_id": request_id, "retries": retries,
                                 "response_model": data.get("model")}
        if data.get("system_fingerprint"):
            extra["system_fingerprint"] = data["system_fingerprint"]
        if not content and finish == "content_filter":
            raise CandidateError(
                f"{self.uri}: answer blocked by the provider's content filter "
                f"(finish_reason=content_filter, request id {rid})"
            )
        if content is None and isinstance(message.get("refusal"), str):
            content = message["refusal"]
            extra["refusal"] = True
        if not isinstance(content, str):
            raise CandidateError(
                f"{self.uri}: response message has no text content (finish_reason={finish}, "
                f"request id {rid})"
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        prompt_tokens = prompt_tokens if isinstance(prompt_tokens, int) else None
        completion_tokens = completion_tokens if isinstance(completion_tokens, int) else None
        cost = self.cost(prompt_tokens, completion_tokens)
        if cost is not None:
            extra["cost_usd"] = cost
        return Generation(
            text=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=latency,
            finish_reason=finish,
            extra=extra,
        )

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """Price of one call from the configured per-1k prices (None if a price or count is missing)."""
        c = self.config
        if c.cost_per_1k_input is None or c.cost_per_1k_output is None:
            return None
        if prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * c.cost_per_1k_input + completion_tokens * c.cost_per_1k_output) / 1000

    # -- identity ----------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """See :func:`config_fingerprint`. Never contains the key."""
        return config_fingerprint(self.config)

    def describe(self) -> dict[str, Any]:
        """Loggable description: the key's variable NAME, never the key or any header."""
        return {**super().describe(), **describe_config(self.config)}

    def model_config_dict(self) -> dict[str, Any]:
        """The resolved config as JSON (what a registered model version stores; no key)."""
        return {"aliasgate_config_version": 1, **self.config.model_dump(mode="json")}

    @classmethod
    def from_model_config(
        cls, model_config: Mapping[str, Any], *, uri: str | None = None
    ) -> OpenAICandidate:
        """Rebuild from :meth:`model_config_dict` output (the key is read from the env now)."""
        fields = {k: v for k, v in model_config.items() if k != "aliasgate_config_version"}
        try:
            config = OpenAIConfig.model_validate(fields)
        except ValidationError as exc:
            raise CandidateError(f"invalid hosted-model config: {exc}") from exc
        return cls(config, uri=uri)

    def close(self) -> None:
        self._client.close()


def config_fingerprint(config: OpenAIConfig) -> str:
    """Provider, endpoint, model/deployment, API version, system prompt and the request-shaping
    options (``extra_body``...) of a :meth:`~OpenAIConfig.resolved` config. Never the key.

    A moving model name (``gpt-4o``) cannot be pinned from here: use dated snapshots, or the
    response cache serves the old model's answers for the new one.
    """
    c = config
    parts = {
        "provider": c.provider,
        "endpoint": redact_url(c.azure_endpoint if c.provider == "azure" else c.base_url),
        "model": c.deployment if c.provider == "azure" else c.model,
        "api_version": c.api_version,
        "system_prompt": c.system_prompt,
        "extra_body": c.extra_body,
        "sampler_extras": c.sampler_extras and c.provider == "compatible",
        "max_tokens_param": c.max_tokens_param,
        "omit_params": sorted(c.omit_params),
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return f"openai:{c.provider}:{parts['model']}:" + hashlib.sha256(blob).hexdigest()


def describe_config(config: OpenAIConfig) -> dict[str, Any]:
    """MLflow params of a :meth:`~OpenAIConfig.resolved` config: the key's variable NAME only."""
    c = config
    d: dict[str, Any] = {
        "candidate.provider": c.provider,
        "candidate.model": c.model or "",
        "candidate.endpoint": redact_url(c.azure_endpoint if c.provider == "azure" else c.base_url),
        "candidate.api_key_env": c.api_key_env,
        "candidate.system_prompt": c.system_prompt or "",
        "candidate.timeout_s": c.timeout_s,
        "candidate.max_retries": c.max_retries,
        "candidate.max_concurrency": c.max_concurrency,
        "candidate.openai_client": _openai_version(),
    }
    if c.provider == "azure":
        d["candidate.deployment"] = c.deployment
        d["candidate.api_version"] = c.api_version
    if c.extra_body:
        d["candidate.extra_body"] = json.dumps(c.extra_body, sort_keys=True, default=str)
    if c.cost_per_1k_input is not None:
        d["candidate.cost_per_1k_input"] = c.cost_per_1k_input
    if c.cost_per_1k_output is not None:
        d["candidate.cost_per_1k_output"] = c.cost_per_1k_output
    d.update({f"candidate.params.{k}": v for k, v in c.params.as_dict().items()})
    return d


def _openai_version() -> str:
    try:
        return _dist_version("openai")
    except PackageNotFoundError:  # pragma: no cover - a core dependency
        return "not-installed"


def _read_key(c: OpenAIConfig) -> str:
    name = str(c.api_key_env)
    key = os.environ.get(name)
    if key:
        return key
    if c.provider == "compatible" and name == DEFAULT_KEY_ENV["compatible"]:
        return NO_KEY
    raise CandidateError(
        f"{c.provider} candidate needs an API key: environment variable {name} is not set"
    )


def _default_uri(c: OpenAIConfig) -> str:
    if c.provider == "azure":
        return f"azure:{c.deployment}"
    if c.provider == "compatible":
        return f"openai-compatible:{c.model}@{redact_url(c.base_url)}"
    return f"openai:{c.model}"


def build_config(**options: Any) -> OpenAIConfig:
    """An :class:`OpenAIConfig` from keyword options; generation-parameter names (``max_tokens``...)
    given at top level are merged into ``params``.

    Args:
        **options: :class:`OpenAIConfig` fields and/or :class:`GenerationParams` fields.

    Raises:
        CandidateError: unknown or invalid options (``api_key`` is refused: use ``api_key_env``).
    """
    fields = dict(options)
    if "api_key" in fields:
        raise CandidateError(
            "api_key is not accepted (it would be logged): put the key in an environment "
            "variable and pass its name as api_key_env"
        )
    params = dict(fields.pop("params", None) or {})
    for key in list(fields):
        if key in GenerationParams.__dataclass_fields__:
            params[key] = fields.pop(key)
    try:
        return OpenAIConfig.model_validate({**fields, "params": params})
    except ValidationError as exc:
        raise CandidateError(f"invalid hosted-model options: {exc}") from exc


def load(uri: str, **options: Any) -> Candidate:
    """``openai:MODEL``, ``azure:DEPLOYMENT`` or ``openai-compatible:MODEL@BASE_URL``.

    Scalar options may also follow a ``?`` (``openai:gpt-4o-mini?timeout_s=30&max_retries=5``);
    a compatible server's base URL then cannot carry its own query (pass ``base_url=`` instead).

    Args:
        uri: The candidate URI.
        **options: :class:`OpenAIConfig` fields or single generation parameters.
    """
    scheme, _, rest = uri.partition(":")
    provider = _PROVIDER_OF.get(scheme)
    if provider is None:
        raise CandidateError(f"not a hosted-model URI: {uri!r}")
    target, _, query = rest.partition("?")
    from_uri: dict[str, Any] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        if k in options:
            raise CandidateError(f"{uri!r}: option {k!r} given twice (URI and keyword)")
        if k in _LIST_OPTIONS:  # repeat the key for several values: ?stop=a&stop=b
            from_uri.setdefault(k, []).append(v)
        else:
            from_uri[k] = v
    options.update(from_uri)
    if provider == "compatible":
        model, sep, base_url = target.partition("@")
        if sep:
            if "base_url" in options:
                raise CandidateError(f"{uri!r}: base_url given twice (URI and keyword)")
            options["base_url"] = base_url
    elif provider == "azure":
        model, options["deployment"] = None, target
    else:
        model = target
    if not target or (provider == "compatible" and not model):
        raise CandidateError(f"cannot load candidate {uri!r}: the model name is empty")
    if model:
        options.setdefault("model", model)
    config = build_config(provider=provider, **options)
    if provider == "compatible" and "@" in target:  # never show user:password of the URL
        uri = f"{scheme}:{model}@{redact_url(options['base_url'])}" + (f"?{query}" if query else "")
    return OpenAICandidate(config, uri=uri)
