"""Judge configuration for LLM-as-a-judge scorers: which endpoint, how requests are shaped.

A :class:`JudgeConfig` names the judge: the embedded local model (default), OpenAI, Azure
OpenAI or any OpenAI-compatible server. It holds the *name* of the environment variable with the
API key, never the key. :meth:`JudgeConfig.describe` gives the ``judge.*`` params to log so that
a run can be replayed.

For ``provider="local"``, :func:`ensure_local_server` starts one judge server per process on a
free 127.0.0.1 port (stopped at exit): ``python -m llama_cpp.server`` when its extra
dependencies are installed, otherwise the minimal built-in server of this module (same
``Llama.create_chat_completion`` underneath, stdlib HTTP, one request at a time). Requests to a
local judge are serialised by :func:`endpoint_lock`: a client timeout does not cancel a
generation already running on the server (see PITFALLS).

Judge output is constrained to JSON where the server supports it
(:func:`response_format_for`): llama.cpp's ``{"type": "json_object", "schema": ...}`` form, with
``enum`` for score scales (llama.cpp ignores integer minimum/maximum), ``maxItems`` on lists and
no extra properties (:func:`constrain_schema`).

Run ``python -m aliasgate.scorers.judge_config --model FILE.gguf --port N`` to start the built-in
server by hand.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import importlib.util
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aliasgate.redact import redact_uri

#: Hard upper bound of ``max_tokens`` (small judges loop until the cap: always cap).
MAX_TOKENS_CAP = 4096
#: Longest string a constrained judge may write in one JSON field (None: no ``maxLength``; a
#: llama.cpp grammar with ``maxLength: 400`` made each token ~3x slower here, and ``max_tokens``
#: bounds the answer anyway).
SCHEMA_MAX_STRING: int | None = None
#: Longest list a constrained judge may write (statements, verdicts...).
SCHEMA_MAX_ITEMS = 12
#: Seconds to wait for a local judge server to answer ``/v1/models``.
LOCAL_SERVER_START_TIMEOUT_S = 120.0
#: Request field of the built-in local server: seconds after which it stops generating (a
#: client timeout alone would leave the server busy with an answer nobody reads).
DEADLINE_FIELD = "aliasgate_deadline_s"
#: The calibration set shipped with aliasgate, as package data of ``aliasgate.data``.
CALIBRATION_FILE = "judge_calibration.jsonl"
CALIBRATION_PACKAGE = "aliasgate.data"

Provider = Literal["local", "openai", "azure", "compatible"]
ResponseFormat = Literal["auto", "llama_cpp", "json_schema", "json_object", "none"]

_DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "azure": "AZURE_OPENAI_API_KEY"}
_NO_KEY = "not-needed"  # local and most compatible servers accept any key


class JudgeError(RuntimeError):
    """The judge could not be configured, started or called, or its output is unusable."""


class JudgeOutputError(JudgeError):
    """The judge answered, but its output cannot be used (not JSON, wrong schema, echo...)."""


_EXTRACTED: dict[str, Path] = {}


def default_calibration_path() -> Path:
    """The shipped calibration set: ``aliasgate/data/judge_calibration.jsonl``, package data
    found through :mod:`importlib.resources` (so it is there in any installed wheel, whatever
    the current directory). From a zipped install it is extracted once per process.
    """
    from importlib import resources

    resource = resources.files(CALIBRATION_PACKAGE) / CALIBRATION_FILE
    if isinstance(resource, Path):
        return resource
    with _SERVERS_LOCK:
        path = _EXTRACTED.get(CALIBRATION_FILE)
        if path is None or not path.is_file():
            import contextlib

            stack = contextlib.ExitStack()
            path = stack.enter_context(resources.as_file(resource))
            atexit.register(stack.close)
            _EXTRACTED[CALIBRATION_FILE] = path
        return path


def redact_url(url: str | None) -> str | None:
    """``url`` without credentials, query string or fragment (API keys are sometimes passed as
    ``?api-key=...``): :func:`aliasgate.redact.redact_uri`."""
    return redact_uri(url, query=False) if url else url


class JudgeConfig(BaseModel):
    """Which judge to ask and how.

    Attributes:
        provider: ``local`` (the embedded SmolLM2 GGUF, or ``model_path``, served on 127.0.0.1),
            ``openai``, ``azure`` (Azure OpenAI: ``base_url`` is the resource endpoint, ``model``
            the deployment) or ``compatible`` (any OpenAI-compatible server at ``base_url``).
        base_url: The endpoint (``http://host:port/v1``); unset for ``local`` (started here).
        model: Model (Azure: deployment) name; ``local`` uses the GGUF file name.
        api_key_env: Name of the environment variable holding the API key (default
            ``OPENAI_API_KEY`` / ``AZURE_OPENAI_API_KEY``; none for local/compatible).
        api_version: Azure API version (required for ``azure``).
        timeout_s: Client timeout of one judge request.
        max_tokens: Cap on each judge answer (always sent; at most ``MAX_TOKENS_CAP``).
        temperature: Sampling temperature (0 = greedy; judges should be deterministic).
        seed: Sampling seed sent with every request.
        response_format: How JSON output is requested: ``llama_cpp`` (``json_object`` with the
            schema, grammar-constrained), ``json_schema`` (OpenAI structured outputs),
            ``json_object`` (JSON mode, no schema), ``none``; ``auto`` picks ``llama_cpp`` for
            local, ``json_schema`` for openai/azure and ``json_object`` for compatible servers.
        calibration: Calibration set (JSONL); unset = the shipped ``judge_calibration.jsonl``.
        calibration_limit: Use at most this many calibration items per metric (balanced
            between known-good and known-bad); unset = all.
        agreement_floor: A judge agreeing with fewer known verdicts than this is not trusted.
        calibration_early_stop: Stop calibrating as soon as the floor can no longer be reached
            (saves judge calls on a bad judge; the result says where it stopped).
        max_unmeasured_rate: A judge failing on more calibration items than this is degenerate.
        verdict_threshold: A score at or above it counts as a "pass" verdict in calibration.
        model_path: ``local`` only: the GGUF file (unset = the embedded SmolLM2).
        n_ctx: ``local`` only: context window of the judge server.
        n_threads: ``local`` only: CPU threads (unset = all cores).
        local_server: ``local`` only: ``llama_cpp`` (``python -m llama_cpp.server``, needs
            ``llama-cpp-python[server]``), ``builtin`` (this module's server) or ``auto``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    provider: Provider = "local"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    api_version: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    max_tokens: int = Field(default=384, ge=1, le=MAX_TOKENS_CAP)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int = 0
    response_format: ResponseFormat = "auto"
    calibration: str | None = None
    calibration_limit: int | None = Field(default=None, ge=2)
    agreement_floor: float = Field(default=0.8, ge=0.0, le=1.0)
    calibration_early_stop: bool = True
    max_unmeasured_rate: float = Field(default=0.2, ge=0.0, le=1.0)
    verdict_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    model_path: str | None = None
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    local_server: Literal["auto", "llama_cpp", "builtin"] = "auto"

    @model_validator(mode="after")
    def _check_provider(self) -> JudgeConfig:
        if self.api_key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (letters, digits, _), "
                "not the key itself"
            )
        if self.provider in ("azure", "compatible") and not self.base_url:
            raise ValueError(f"provider {self.provider!r} needs base_url")
        if self.provider in ("openai", "azure", "compatible") and not self.model:
            raise ValueError(f"provider {self.provider!r} needs model")
        if self.provider == "azure" and not self.api_version:
            raise ValueError("provider 'azure' needs api_version")
        return self

    # -- derived values --------------------------------------------------------------------
    @property
    def key_env(self) -> str | None:
        """The environment variable read for the API key (None: no key needed)."""
        return self.api_key_env or _DEFAULT_KEY_ENV.get(self.provider)

    def api_key(self) -> str:
        """The API key from :attr:`key_env` (a placeholder for servers that need none).

        Raises:
            JudgeError: the provider needs a key and the variable is unset.
        """
        name = self.key_env
        if name is None:
            return _NO_KEY
        value = os.environ.get(name)
        if not value:
            if self.provider in ("openai", "azure"):
                raise JudgeError(f"judge provider {self.provider!r}: environment variable {name} is not set")
            return _NO_KEY
        return value

    @property
    def resolved_response_format(self) -> str:
        if self.response_format != "auto":
            return self.response_format
        return {"local": "llama_cpp", "openai": "json_schema", "azure": "json_schema"}.get(
            self.provider, "json_object"
        )

    def model_name(self) -> str:
        """The model name sent with each request."""
        if self.model:
            return self.model
        return self.gguf_path().name if self.provider == "local" else "judge"

    def gguf_path(self) -> Path:
        """``local`` only: the GGUF file the judge server loads."""
        if self.model_path:
            return Path(self.model_path).expanduser()
        from aliasgate.candidates.local import find_smollm2_gguf

        return find_smollm2_gguf()

    def threads(self) -> int:
        return self.n_threads or os.cpu_count() or 2

    def calibration_path(self) -> Path:
        return Path(self.calibration).expanduser() if self.calibration else default_calibration_path()

    def key(self) -> str:
        """sha256 of the settings that change judge answers or trust (calibration cache key)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def base_url_resolved(self) -> str | None:
        """The endpoint to call: the configured one, or the local server (started if needed)."""
        if self.provider == "local":
            return ensure_local_server(self)
        return self.base_url

    def describe(self) -> dict[str, Any]:
        """``judge.*`` params to log: enough to replay the judge, never a secret (the API key's
        variable name only; the endpoint without user info, query string or fragment)."""
        d: dict[str, Any] = {
            "judge.provider": self.provider,
            "judge.endpoint": redact_url(self.base_url) or (
                "127.0.0.1 (started by aliasgate)" if self.provider == "local" else None),
            "judge.model": self.model_name() if self.provider != "local" or self.model else None,
            "judge.api_key_env": self.key_env,
            "judge.api_version": self.api_version,
            "judge.timeout_s": self.timeout_s,
            "judge.max_tokens": self.max_tokens,
            "judge.temperature": self.temperature,
            "judge.seed": self.seed,
            "judge.response_format": self.resolved_response_format,
            "judge.agreement_floor": self.agreement_floor,
            "judge.max_unmeasured_rate": self.max_unmeasured_rate,
            "judge.verdict_threshold": self.verdict_threshold,
            "judge.calibration": str(self.calibration_path()),
            "judge.calibration_limit": self.calibration_limit,
            "judge.config_sha256": self.key(),
        }
        path = self.calibration_path()
        if path.is_file():
            d["judge.calibration_sha256"] = sha256_file(path)
        if self.provider == "local":
            from aliasgate.candidates.local import file_sha256, llama_cpp_version

            try:
                gguf = self.gguf_path()
                d["judge.model"] = gguf.name
                d["judge.gguf_sha256"] = file_sha256(gguf)
            except Exception as exc:  # noqa: BLE001 - described, not fatal
                d["judge.gguf_error"] = f"{type(exc).__name__}: {exc}"
            d["judge.n_ctx"] = self.n_ctx
            d["judge.n_threads"] = self.threads()
            d["judge.llama_cpp"] = llama_cpp_version()
            d["judge.local_server"] = _local_impl(self)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_env(cls) -> JudgeConfig:
        """The default judge: ``$ALIASGATE_JUDGE_CONFIG`` (a JSON or YAML file) if set, with any
        ``ALIASGATE_JUDGE_<FIELD>`` variable (``ALIASGATE_JUDGE_PROVIDER=openai``...) on top;
        otherwise the local model.

        Raises:
            JudgeError: the file or a variable is invalid.
        """
        data: dict[str, Any] = {}
        path = os.environ.get("ALIASGATE_JUDGE_CONFIG")
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
                if path.endswith((".yaml", ".yml")):
                    import yaml

                    loaded = yaml.safe_load(text)
                else:
                    loaded = json.loads(text)
            except (OSError, ValueError) as exc:
                raise JudgeError(f"ALIASGATE_JUDGE_CONFIG={path}: {exc}") from exc
            if not isinstance(loaded, dict):
                raise JudgeError(f"ALIASGATE_JUDGE_CONFIG={path}: expected a mapping")
            data.update(loaded)
        for name in cls.model_fields:
            value = os.environ.get(f"ALIASGATE_JUDGE_{name.upper()}")
            if value is not None:
                data[name] = value
        return coerce_config(data)


def coerce_config(judge: JudgeConfig | Mapping[str, Any] | None) -> JudgeConfig:
    """A :class:`JudgeConfig` from a config, a mapping of its fields, or None (:meth:`JudgeConfig.from_env`).

    Args:
        judge: The judge settings.

    Raises:
        JudgeError: invalid settings (the message lists the fields).
    """
    if judge is None:
        return JudgeConfig.from_env()
    if isinstance(judge, JudgeConfig):
        return judge
    try:
        return JudgeConfig.model_validate(dict(judge))
    except ValidationError as exc:
        raise JudgeError(f"invalid judge settings: {exc}") from exc


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- clients -------------------------------------------------------------------------------


def is_loopback_url(url: str | None) -> bool:
    """True for ``http(s)://127.x.x.x``, ``localhost`` and ``[::1]`` URLs."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_clients(url: str | None, timeout: float) -> tuple[Any, Any]:
    """httpx clients that ignore proxy variables for loopback URLs (a proxy never sees local traffic)."""
    import httpx

    trust_env = not is_loopback_url(url)
    return (httpx.Client(trust_env=trust_env, timeout=timeout),
            httpx.AsyncClient(trust_env=trust_env, timeout=timeout))


def openai_client(config: JudgeConfig) -> Any:
    """An ``openai`` client for the judge (no retries: a failure is recorded, not hidden)."""
    import openai

    url = config.base_url_resolved()
    http, _ = _http_clients(url, config.timeout_s)
    if config.provider == "azure":
        return openai.AzureOpenAI(
            azure_endpoint=url, api_version=config.api_version, api_key=config.api_key(),
            timeout=config.timeout_s, max_retries=0, http_client=http,
        )
    return openai.OpenAI(base_url=url, api_key=config.api_key(), timeout=config.timeout_s,
                         max_retries=0, http_client=http)


def langchain_chat(config: JudgeConfig) -> Any:
    """A LangChain chat model for the judge (ragas uses it).

    LangChain sends ``max_completion_tokens``, which llama_cpp.server ignores, so local and
    compatible judges also get ``max_tokens`` in ``extra_body`` (see PITFALLS).
    """
    url = config.base_url_resolved()
    http, ahttp = _http_clients(url, config.timeout_s)
    common: dict[str, Any] = {
        "temperature": config.temperature, "max_tokens": config.max_tokens,
        "timeout": config.timeout_s, "max_retries": 0, "seed": config.seed,
        "http_client": http, "http_async_client": ahttp,
    }
    if config.provider == "azure":
        from langchain_openai import AzureChatOpenAI

        return AzureChatOpenAI(azure_endpoint=url, azure_deployment=config.model,
                               api_version=config.api_version, api_key=config.api_key(), **common)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=url, model=config.model_name(), api_key=config.api_key(),
                      extra_body=extra_body(config), **common)


def extra_body(config: JudgeConfig, response_format: dict[str, Any] | None = None) -> dict[str, Any]:
    """Non-standard request fields: ``max_tokens`` for local and compatible servers;
    ``repeat_penalty`` 1.0 and (built-in server) the generation deadline for the local judge; the
    llama.cpp-style ``response_format`` when given."""
    body: dict[str, Any] = {}
    if config.provider in ("local", "compatible"):
        body["max_tokens"] = config.max_tokens
    if config.provider == "local":
        body["repeat_penalty"] = 1.0  # llama_cpp.server defaults to 1.1
        if _local_impl(config) == "builtin":  # stop generating when the client gives up
            body[DEADLINE_FIELD] = max(1.0, config.timeout_s - 2.0)
    if response_format is not None:
        body["response_format"] = response_format
    return body


def chat_request(config: JudgeConfig, prompt: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    """Keyword arguments of ``client.chat.completions.create`` for one judge prompt."""
    kwargs: dict[str, Any] = {
        "model": config.model_name(),
        "messages": [{"role": "user", "content": prompt}],
        "temperature": config.temperature,
        "seed": config.seed,
    }
    if config.provider in ("openai", "azure"):
        kwargs["max_completion_tokens"] = config.max_tokens
    else:
        kwargs["max_tokens"] = config.max_tokens
    rf = response_format_for(config, schema)
    if rf is not None:
        kwargs["response_format"] = rf
    body = extra_body(config)
    body.pop("max_tokens", None)
    if body:
        kwargs["extra_body"] = body
    return kwargs


def response_format_for(config: JudgeConfig, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``schema`` (already constrained), per
    :attr:`JudgeConfig.response_format`."""
    mode = config.resolved_response_format
    if mode == "none":
        return None
    if schema is None or mode == "json_object":
        return {"type": "json_object"} if schema is not None else None
    if mode == "llama_cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema",
            "json_schema": {"name": str(schema.get("title") or "judge_output"), "schema": schema,
                            "strict": False}}


# -- constrained output --------------------------------------------------------------------


def constrain_schema(
    schema: dict[str, Any],
    *,
    score_enum: list[int] | None = None,
    verdict_enum: list[int] | None = None,
    max_string: int | None = SCHEMA_MAX_STRING,
    max_items: int = SCHEMA_MAX_ITEMS,
) -> dict[str, Any]:
    """A copy of a pydantic JSON schema a grammar-constrained server can enforce tightly.

    ``$ref`` are inlined; objects get ``additionalProperties: false``; strings ``maxLength``
    (when ``max_string`` is set); arrays ``maxItems``; a numeric ``score`` property becomes ``enum: score_enum`` and an integer
    ``verdict`` property ``enum: verdict_enum`` (llama.cpp ignores numeric minimum/maximum).

    Args:
        schema: ``Model.model_json_schema()``.
        score_enum: Allowed values of ``score`` fields (e.g. 0..10 for GEval).
        verdict_enum: Allowed values of integer ``verdict`` fields (e.g. [0, 1]).
        max_string: ``maxLength`` of every string (None: none).
        max_items: ``maxItems`` of every array.
    """
    defs = schema.get("$defs", {})

    def walk(node: Any, name: str | None = None, depth: int = 0) -> Any:
        if depth > 20 or not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            return walk(copy.deepcopy(defs.get(ref, {})), name, depth + 1)
        out = {k: v for k, v in node.items() if k not in ("$defs", "title", "default")}
        if "anyOf" in out:
            out["anyOf"] = [walk(n, name, depth + 1) for n in out["anyOf"]]
        kind = out.get("type")
        if name == "score" and score_enum is not None and kind in ("number", "integer"):
            return {"enum": list(score_enum)}
        if name == "verdict" and verdict_enum is not None and kind == "integer":
            return {"enum": list(verdict_enum)}
        if kind == "object" or "properties" in out:
            out["properties"] = {k: walk(v, k, depth + 1) for k, v in out.get("properties", {}).items()}
            out["additionalProperties"] = False
        elif kind == "array":
            out["items"] = walk(out.get("items", {}), None, depth + 1)
            out["maxItems"] = min(int(out.get("maxItems", max_items)), max_items)
        elif kind == "string" and "enum" not in out and max_string is not None:
            out["maxLength"] = min(int(out.get("maxLength", max_string)), max_string)
        return out

    return walk(schema)


def parse_json_object(text: str | None) -> dict[str, Any]:
    """The JSON object in a judge's answer (a fenced block or the outermost ``{...}``).

    Raises:
        JudgeOutputError: no JSON object could be read.
    """
    if not text or not text.strip():
        raise JudgeOutputError("judge returned an empty answer")
    s = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", s, flags=re.S)
    if fence:
        s = fence.group(1).strip()
    start, end = s.find("{"), s.rfind("}")
    if start == -1 or end <= start:
        raise JudgeOutputError(f"judge answer is not JSON: {_snippet(text)}")
    try:
        data = json.loads(s[start : end + 1])
    except json.JSONDecodeError as exc:
        raise JudgeOutputError(f"judge answer is not valid JSON ({exc.msg}): {_snippet(text)}") from None
    if not isinstance(data, dict):
        raise JudgeOutputError(f"judge answer is not a JSON object: {_snippet(text)}")
    return data


#: Template placeholders that a judge must never hand back as its own words.
PLACEHOLDERS = (
    "your concise and informative reason here",
    "your_reason",
    "<explanation_for",
    "<list_of_strings>",
)
_ANGLE_PLACEHOLDER = re.compile(r"<[a-z]+(?:_[a-z]+)+>")


def placeholder_in(text: str | None) -> str | None:
    """The template placeholder that ``text`` echoes (``<your_reason>``...), or None."""
    if not text:
        return None
    low = text.lower()
    for p in PLACEHOLDERS:
        if p in low:
            return p
    m = _ANGLE_PLACEHOLDER.search(low)
    return m.group(0) if m else None


def strings_in(data: Any) -> list[str]:
    """Every string value in a parsed JSON document."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in strings_in(v)]
    if isinstance(data, list):
        return [s for v in data for s in strings_in(v)]
    return []


def _snippet(text: str | None, n: int = 160) -> str:
    t = " ".join((text or "").split())
    return repr(t if len(t) <= n else t[:n] + "...")


# -- local judge server --------------------------------------------------------------------

_SERVERS: dict[tuple[str, int, int, str], _LocalServer] = {}
_SERVERS_LOCK = threading.Lock()
_ENDPOINT_LOCKS: dict[str, threading.Lock] = {}


def endpoint_lock(url: str | None) -> threading.Lock:
    """One lock per judge endpoint: hold it around each request to a local/loopback judge."""
    with _SERVERS_LOCK:
        return _ENDPOINT_LOCKS.setdefault(url or "", threading.Lock())


def _server_deps_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("sse_starlette", "starlette_context", "fastapi", "uvicorn"))


def _local_impl(config: JudgeConfig) -> str:
    if config.local_server != "auto":
        return config.local_server
    return "llama_cpp" if _server_deps_installed() else "builtin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _LocalServer:
    """A judge server process on 127.0.0.1 (stopped at interpreter exit)."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.impl = _local_impl(config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log_path = Path(tempfile.mkstemp(prefix="aliasgate-judge-", suffix=".log")[1])

    def start(self) -> str:
        if importlib.util.find_spec("llama_cpp") is None:
            raise JudgeError("the local judge needs llama-cpp-python: pip install 'aliasgate[local]'")
        if self.impl == "llama_cpp" and not _server_deps_installed():
            raise JudgeError("llama_cpp.server needs its extras: pip install 'llama-cpp-python[server]' "
                             "(or set local_server='builtin')")
        gguf = self.config.gguf_path()
        if not gguf.is_file():
            raise JudgeError(f"judge GGUF not found: {gguf}")
        port = _free_port()
        threads = str(self.config.threads())
        if self.impl == "llama_cpp":
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
                   "--model_alias", gguf.name, "--host", "127.0.0.1", "--port", str(port),
                   "--n_ctx", str(self.config.n_ctx), "--n_threads", threads,
                   "--n_threads_batch", threads, "--interrupt_requests", "False"]
        else:
            cmd = [sys.executable, "-m", "aliasgate.scorers.judge_config", "--model", str(gguf),
                   "--port", str(port), "--n_ctx", str(self.config.n_ctx), "--n_threads", threads,
                   "--max_tokens_cap", str(MAX_TOKENS_CAP)]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=log, env=env)
        self.url = f"http://127.0.0.1:{port}/v1"
        atexit.register(self.stop)
        deadline = time.monotonic() + LOCAL_SERVER_START_TIMEOUT_S
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            if self.proc.poll() is not None:
                raise JudgeError(f"local judge server exited with code {self.proc.returncode}: {self._tail()}")
            try:
                with opener.open(f"{self.url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return self.url
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise JudgeError(f"local judge server did not answer within "
                                 f"{LOCAL_SERVER_START_TIMEOUT_S:g} s: {self._tail()}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:]) or "(no output)"
        except OSError:
            return "(no output)"


def ensure_local_server(config: JudgeConfig) -> str:
    """The base URL of the local judge server for ``config`` (started once per process).

    Args:
        config: A ``provider="local"`` config.

    Raises:
        JudgeError: llama-cpp-python or the GGUF is missing, or the server did not start.
    """
    key = (str(config.gguf_path()), config.n_ctx, config.threads(), _local_impl(config))
    with _SERVERS_LOCK:
        server = _SERVERS.get(key)
        if server is not None and server.alive():
            return server.url
        server = _LocalServer(config)
        _SERVERS[key] = server
    try:
        return server.start()
    except BaseException:
        with _SERVERS_LOCK:
            _SERVERS.pop(key, None)
        server.stop()
        raise


def stop_local_servers() -> None:
    """Stop every local judge server this process started."""
    with _SERVERS_LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for s in servers:
        s.stop()


# -- the built-in server (used when llama_cpp.server's extras are not installed) ------------


def _serve(argv: list[str] | None = None) -> None:
    """A minimal OpenAI-compatible chat-completions server over ``llama_cpp.Llama``.

    Non-streaming only; one request at a time; ``llm.reset()`` before each (reproducible greedy
    output); ``max_tokens`` (or ``max_completion_tokens``) capped by ``--max_tokens_cap``;
    ``response_format`` passed to llama.cpp (``json_object`` + ``schema`` → grammar; the OpenAI
    ``json_schema`` form is mapped to it). Exits when its standard input closes (parent gone).
    """
    import argparse
    from http.server import BaseHTTPRequestHandler, HTTPServer

    parser = argparse.ArgumentParser(description=_serve.__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n_ctx", type=int, default=4096)
    parser.add_argument("--n_threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--max_tokens_cap", type=int, default=MAX_TOKENS_CAP)
    args = parser.parse_args(argv)

    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=args.n_ctx, n_threads=args.n_threads,
                n_threads_batch=args.n_threads, verbose=False)
    alias = Path(args.model).name

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self.path.rstrip("/") in ("/v1/models", "/models", "/health"):
                self._send(200, {"object": "list", "data": [{"id": alias, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if req.get("stream"):
                    raise ValueError("streaming is not supported by this server")
                rf = req.get("response_format")
                if isinstance(rf, dict) and rf.get("type") == "json_schema":
                    rf = {"type": "json_object", "schema": (rf.get("json_schema") or {}).get("schema", {})}
                cap = int(req.get("max_tokens") or req.get("max_completion_tokens") or 256)
                budget = float(req.get(DEADLINE_FIELD) or 0)
                deadline = time.monotonic() + budget if budget > 0 else None
                llm.reset()
                chunks = llm.create_chat_completion(
                    messages=req["messages"], temperature=float(req.get("temperature", 0.0)),
                    top_p=float(req.get("top_p", 1.0)), top_k=int(req.get("top_k", 0)),
                    max_tokens=max(1, min(cap, args.max_tokens_cap)),
                    seed=int(req.get("seed", 0)), stop=req.get("stop") or [],
                    repeat_penalty=float(req.get("repeat_penalty", 1.0)), response_format=rf,
                    stream=True,
                )
                parts: list[str] = []
                finish = None
                for chunk in chunks:  # streamed internally so that a deadline can stop it
                    choice = chunk["choices"][0]
                    parts.append(choice["delta"].get("content") or "")
                    finish = choice.get("finish_reason") or finish
                    if deadline is not None and time.monotonic() > deadline:
                        chunks.close()
                        self._send(504, {"error": {"message": f"generation stopped after "
                                                   f"{budget:g} s (the client's deadline)"}})
                        return
                out = {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion",
                       "created": int(time.time()),
                       "choices": [{"index": 0, "finish_reason": finish,
                                    "message": {"role": "assistant", "content": "".join(parts)}}],
                       "usage": {"prompt_tokens": 0, "completion_tokens": len(parts),
                                 "total_tokens": len(parts)}}
            except (ValueError, KeyError, TypeError) as exc:
                self._send(400, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                return
            except Exception as exc:  # noqa: BLE001 - reported to the client
                self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                return
            out["model"] = alias
            self._send(200, out)

    server = HTTPServer(("127.0.0.1", args.port), Handler)

    def watch_stdin() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    _serve()
