"""The hosted-model adapter against the REAL `python -m llama_cpp.server` serving the embedded
SmolLM2 GGUF on 127.0.0.1: greedy answers equal the in-process local candidate's for the same
prompts and parameters (server flags and request fields as ../shared/PITFALLS.md says)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aliasgate.candidates.base import GenerationParams

pytestmark = [pytest.mark.model, pytest.mark.integration]

REPO = Path(__file__).resolve().parent.parent
N_THREADS = 2
N_CTX = 2048
START_TIMEOUT_S = 120.0
#: What `python -m llama_cpp.server` imports beyond llama_cpp (the `server` extra).
SERVER_DEPS = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def _missing_server_deps() -> list[str]:
    return [m for m in SERVER_DEPS if importlib.util.find_spec(m) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def llama_server(tmp_path: Path) -> Iterator[str]:
    """`python -m llama_cpp.server` on the embedded GGUF; yields its base URL (``.../v1``)."""
    pytest.importorskip("llama_cpp")
    missing = _missing_server_deps()
    if missing:
        pytest.skip(f"llama_cpp.server's dependencies are not installed ({', '.join(missing)}): "
                    "pip install 'llama-cpp-python[server]'")
    from aliasgate.candidates.local import find_smollm2_gguf

    port = _free_port()
    log = tmp_path / "llama-server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(find_smollm2_gguf()),
           "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--n_threads", str(N_THREADS), "--n_threads_batch", str(N_THREADS),
           "--n_ctx", str(N_CTX), "--interrupt_requests", "False"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}):\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S:g} s:"
                                   f"\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.25)
        yield base_url
    finally:
        _stop(proc)


def test_server_answers_equal_in_process_answers(llama_server: str) -> None:
    from aliasgate.candidates.local import LocalConfig, LocalLlamaCandidate
    from aliasgate.candidates.openai_ import OpenAICandidate, OpenAIConfig

    rows = [json.loads(line) for line in
            (REPO / "datasets" / "golden_qa.jsonl").read_text().splitlines()[:5]]
    prompts = [f"Answer the question with a short phrase only.\nQuestion: {r['question']}"
               for r in rows]
    params = GenerationParams(max_tokens=32)  # greedy, repeat_penalty 1.0, top_k 0
    remote = OpenAICandidate(OpenAIConfig(
        provider="compatible", model="smollm2", base_url=llama_server, params=params,
        extra_body={"repeat_penalty": 1.0}, timeout_s=120, max_retries=0))
    local = LocalLlamaCandidate(LocalConfig(n_threads=N_THREADS, n_ctx=N_CTX,
                                            params=params.as_dict()))
    served = [remote.generate([{"role": "user", "content": p}], params) for p in prompts]
    in_process = [local.generate([{"role": "user", "content": p}], params) for p in prompts]
    assert [g.text for g in served] == [g.text for g in in_process]
    assert all(g.text for g in served)
    assert [g.completion_tokens for g in served] == [g.completion_tokens for g in in_process]
