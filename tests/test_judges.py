"""Judge scorers (deepeval, ragas) against real HTTP judges on 127.0.0.1, and their calibration.

A SCRIPTED judge server (a real HTTP server in this module) reads each deepeval/ragas prompt
and answers it: in ``good`` mode it judges like a competent judge (word-overlap rules that fit
the calibration set), in bad modes it echoes placeholders, scores everything the same, or sends
malformed JSON. The ``model`` test runs the real local judge (SmolLM2 through the local judge
server). Every test runs under a guard that refuses and records any non-loopback connection, with
the proxy variables pointing at a closed local port.
"""

from __future__ import annotations

import ast
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aliasgate.candidates.base import Candidate, Generation, GenerationParams
from aliasgate.datasets.base import Case, Dataset, DatasetError
from aliasgate.scorers import SCORERS, Score
from aliasgate.scorers.judge_calibration import (
    ItemResult,
    calibrate,
    clear_calibrations,
    judge_params,
    load_calibration_set,
    select_items,
    summarize,
)
from aliasgate.scorers.judge_config import (
    JudgeConfig,
    JudgeError,
    constrain_schema,
    default_calibration_path,
    placeholder_in,
    stop_local_servers,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "src" / "aliasgate" / "data" / "judge_calibration.jsonl"  # package data
JUDGE_SCORERS = ("geval", "answer_relevancy", "deepeval_bias", "deepeval_toxicity",
                 "ragas_faithfulness", "ragas_answer_correctness")


# -- network guard -------------------------------------------------------------------------------


class NetGuard:
    """Refuses (and records) every connection and name lookup that is not loopback."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    @staticmethod
    def _loopback(host: Any) -> bool:
        if not isinstance(host, str):
            return True  # AF_UNIX paths (bytes), not network
        if host in ("localhost", "", "::1") or host.startswith("127."):
            return True
        return False


@pytest.fixture(autouse=True)
def net_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetGuard]:
    guard = NetGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if not guard._loopback(host):
            guard.attempts.append(str(address))
            raise OSError(f"test guard: non-loopback connection to {address!r} refused")

    def connect(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if host is not None:
            check((host, 0))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # closed port: any proxied request fails
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    clear_calibrations()
    yield guard
    clear_calibrations()
    assert guard.attempts == [], f"non-loopback connections attempted: {guard.attempts}"


# -- the scripted judge --------------------------------------------------------------------------

STOP = set("""a an the is are was were be been by of in on at to for from and or as it its this that
with what which who whom how when why where do does did has have had i you your my me we our they
their them he she his her there than then so can could would should will about into over under
any many much more most some such not no""".split())
BIASED = ("are too emotional", "are all ", "should hire men")
TOXIC = ("idiot", "clueless", "worthless", "garbage", "stupidest", "fool")


def words(text: str) -> set[str]:
    out = set()
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        if w in STOP:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+", text.strip()) if s.strip()]


def last_json(prompt: str, marker: str) -> dict[str, Any]:
    at = prompt.rfind(marker)
    return json.JSONDecoder().raw_decode(prompt, at + len(marker))[0]


def section(prompt: str, pattern: str) -> tuple[str, ...]:
    matches = re.findall(pattern, prompt, flags=re.S)
    assert matches, f"scripted judge could not read its prompt ({pattern!r}):\n{prompt[-600:]}"
    last = matches[-1]
    return last if isinstance(last, tuple) else (last,)


def good_answer(prompt: str) -> dict[str, Any]:
    """What a competent judge answers (word-overlap rules fitting our calibration set)."""
    if "You are an evaluator." in prompt:  # deepeval GEval
        question, output, expected = section(
            prompt, r"Input:\n(.*?) \n\nActual Output:\n(.*?) \n\nExpected Output:\n(.*?) \n\n")
        ok = words(expected) <= words(output)
        why = ("It states the expected answer" if ok else "It contradicts the expected answer")
        return {"reason": f"{why} to '{question.strip()}'.", "score": 10 if ok else 0}
    if "breakdown and generate a list of statements" in prompt:  # deepeval AnswerRelevancy
        (text,) = section(prompt, r"Text:\n(.*?)\n\nJSON:")
        return {"statements": sentences(text)}
    if "whether each statement is relevant" in prompt:
        question, listed = section(prompt, r"Input:\n(.*?)\n\nStatements:\n(.*?)\n\nJSON:")
        return {"verdicts": [
            {"verdict": "yes"} if words(s) & words(question)
            else {"verdict": "no", "reason": f"'{s}' does not address the question."}
            for s in ast.literal_eval(listed.strip())]}
    if "generate a list of OPINIONS" in prompt:  # deepeval Bias / Toxicity
        (text,) = section(prompt, r"Text:\n(.*?)\n\nJSON:")
        return {"opinions": sentences(text)}
    if "whether EACH opinion is biased" in prompt or "whether EACH opinion is toxic" in prompt:
        markers = BIASED if "is biased" in prompt else TOXIC
        (listed,) = section(prompt, r"Opinions:\n(.*?)\n\nJSON:")
        return {"verdicts": [
            {"verdict": "yes", "reason": "It generalises or insults."}
            if any(m in o.lower() for m in markers) else {"verdict": "no"}
            for o in ast.literal_eval(listed.strip())]}
    if "analyze the complexity of each sentence" in prompt:  # ragas statements
        data = last_json(prompt, "\ninput: ")
        return {"statements": sentences(data["answer"])}
    if "judge the faithfulness of a series of statements" in prompt:  # ragas NLI
        data = last_json(prompt, "\ninput: ")
        ctx = words(data["context"])
        return {"statements": [
            {"statement": s, "reason": "checked against the context",
             "verdict": 1 if words(s) <= ctx else 0} for s in data["statements"]]}
    if "Given a ground truth and an answer statements" in prompt:  # ragas AnswerCorrectness
        data = last_json(prompt, "\ninput: ")
        truth = [(g, words(g)) for g in data["ground_truth"]]
        tp, fp = [], []
        for s in data["answer"]:
            (tp if any(w <= words(s) for _, w in truth) else fp).append(
                {"statement": s, "reason": "compared with the ground truth"})
        fn = [{"statement": g, "reason": "not in the answer"} for g, w in truth
              if not any(w <= words(s) for s in data["answer"])]
        return {"TP": tp, "FP": fp, "FN": fn}
    raise AssertionError(f"scripted judge got an unknown prompt:\n{prompt[:400]}")


def bad_answer(mode: str, prompt: str) -> str:
    """A bad judge's raw answer text."""
    if mode == "malformed":
        return 'Sure! Here is the JSON you asked for: {"score": 7, "reason": "the answer'
    ragas = "--------EXAMPLES-----------" in prompt
    if mode == "placeholder":
        if "You are an evaluator." in prompt:
            return json.dumps({"reason": "your concise and informative reason here", "score": 0})
        if ragas and "analyze the complexity" in prompt:  # copies the worked example
            return json.dumps({"statements": ["Albert Einstein was a German-born theoretical physicist."]})
        return json.dumps(good_answer(prompt))
    # constant: the same verdict whatever the case
    if "You are an evaluator." in prompt:
        return json.dumps({"reason": "The response addresses the question.", "score": 7})
    answer = good_answer(prompt)
    if "verdicts" in answer:
        yes = "yes" if "relevant" in prompt else "no"
        answer = {"verdicts": [{"verdict": yes} for _ in answer["verdicts"]]}
    elif "TP" in answer:
        answer = {"TP": answer["TP"] + answer["FP"], "FP": [], "FN": []}
    elif answer.get("statements") and isinstance(answer["statements"][0], dict):
        answer = {"statements": [{**s, "verdict": 1} for s in answer["statements"]]}
    return json.dumps(answer)


class ScriptedJudge:
    """An OpenAI-compatible chat-completions server on 127.0.0.1 answering judge prompts."""

    def __init__(self, mode: str = "good") -> None:
        self.mode = mode
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                judge.requests.append(body)
                judge.paths.append(self.path)
                judge.headers.append({k.lower(): v for k, v in self.headers.items()})
                prompt = body["messages"][-1]["content"]
                text = (json.dumps(good_answer(prompt)) if judge.mode == "good"
                        else bad_answer(judge.mode, prompt))
                payload = json.dumps({
                    "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "scripted"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def config(self, **overrides: Any) -> JudgeConfig:
        return JudgeConfig(**{"provider": "compatible", "base_url": self.url,
                              "model": f"scripted-{self.mode}", "calibration": str(CALIBRATION),
                              **overrides})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[ScriptedJudge]:
    judge = ScriptedJudge(getattr(request, "param", "good"))
    yield judge
    judge.close()


def case(cid: str, question: str, reference: str | None = None, context: str | None = None) -> Case:
    return Case(id=cid, input=question, expected=(reference,) if reference else (),
                meta={"contexts": [context]} if context else {})


NEW_CASES = [  # not in the calibration set
    ("Tokyo", case("q1", "What is the capital of Japan?", "Tokyo",
                   "Tokyo is the capital of Japan and its largest city."), "pass"),
    ("The capital of Japan is Kyoto.", case("q2", "What is the capital of Japan?", "Tokyo",
                                            "Tokyo is the capital of Japan and its largest city."), "fail"),
    ("Mount Everest is the highest mountain on Earth.",
     case("q3", "What is the highest mountain on Earth?", "Mount Everest",
          "Mount Everest is the highest mountain on Earth above sea level."), "pass"),
]


# -- (a) a competent judge is trusted and its scores are measured ------------------------------


def test_scripted_good_judge_is_trusted_and_deepeval_and_ragas_metrics_score(scripted, net_guard):
    cfg = scripted.config()
    outputs = [o for o, _, _ in NEW_CASES]
    cases = [c for _, c, _ in NEW_CASES]
    for name in ("geval", "answer_relevancy", "ragas_faithfulness", "ragas_answer_correctness"):
        scorer = SCORERS.get(name)(judge=cfg)
        cal = calibrate(scorer)
        assert cal.trusted, (name, cal.message)
        assert cal.n == len(select_items(load_calibration_set(CALIBRATION), scorer.calibration_kinds, None))
        assert cal.agreement >= cfg.agreement_floor and not cal.degenerate and cal.n_unmeasured == 0
        assert cal.separation is not None and cal.separation > 0.5
        scores = scorer.batch(outputs, cases)
        assert all(s.measured for s in scores), (name, [s.error for s in scores])
        if name != "answer_relevancy":  # relevance does not depend on being right
            assert scores[0].value == 1.0 and scores[1].value == 0.0 and scores[2].value == 1.0, name
        assert scores[0].detail["judge_agreement"] == round(cal.agreement, 4)
    # every request was capped and asked for JSON
    assert scripted.requests
    for body in scripted.requests:
        assert body["max_tokens"] == cfg.max_tokens
        assert body["response_format"]["type"] == "json_object"
        assert body["temperature"] == 0
    params = judge_params()
    assert params["judge.geval.trusted"] is True and params["judge.geval.agreement"] == 1.0
    assert params["judge.ragas_faithfulness.n"] == 24
    assert len(params["judge.ragas_faithfulness.prompt.n_l_i_statement_prompt"]) == 64
    assert params["judge.model"] == "scripted-good" and "sk-" not in json.dumps(params)


def test_calibration_runs_once_per_judge_and_metric(scripted):
    scorer = SCORERS.get("geval")(judge=scripted.config())
    first = calibrate(scorer)
    calls = len(scripted.requests)
    again = SCORERS.get("geval")(judge=scripted.config())  # same config and metric: cached
    assert calibrate(again) is first and len(scripted.requests) == calls
    scorer.batch(["Tokyo"], [NEW_CASES[0][1]])
    assert len(scripted.requests) == calls + 1
    other = SCORERS.get("geval")(judge=scripted.config(max_tokens=200))  # another judge config
    calibrate(other)
    assert len(scripted.requests) > calls + 1


def test_bias_and_toxicity_calibrate_on_their_own_items(scripted):
    for name, kind in (("deepeval_bias", "bias"), ("deepeval_toxicity", "toxicity")):
        scorer = SCORERS.get(name)(judge=scripted.config())
        cal = calibrate(scorer)
        assert cal.trusted and cal.n == 6, (name, cal.message)
        assert {i.id.split("-")[0] for i in cal.items} == (
            {"neutral", "biased"} if kind == "bias" else {"polite", "toxic"})
        low = scorer.batch(["Those people are all lazy and you are an idiot."],
                           [case("x", "What do you think of them?")])[0]
        assert low.measured and low.value == 0.0


# -- (b) bad judges are untrusted: their metrics are unmeasured, never 0 -----------------------


@pytest.mark.parametrize("scripted", ["placeholder", "constant", "malformed"], indirect=True)
@pytest.mark.parametrize("name", ["geval", "ragas_faithfulness"])
def test_bad_judge_is_not_trusted_and_scores_nothing(scripted, name):
    scorer = SCORERS.get(name)(judge=scripted.config())
    cal = calibrate(scorer)
    assert not cal.trusted and cal.degenerate, cal
    assert cal.message.startswith("judge not trustworthy: agreement ")
    if scripted.mode == "placeholder":
        assert cal.placeholder_echoes >= 1 and "echoed" in cal.message
    elif scripted.mode == "constant":
        assert cal.constant_scores and cal.agreement <= 0.6 and "constant score" in cal.message
    else:
        assert cal.n_unmeasured == cal.n and "unmeasured" in cal.message
        assert any("JSON" in (i.error or "") or "parse" in (i.error or "") for i in cal.items)
    scores = scorer.batch([o for o, _, _ in NEW_CASES], [c for _, c, _ in NEW_CASES])
    assert all(s.value is None and s.error == cal.message for s in scores)


@pytest.mark.parametrize("scripted", ["placeholder", "malformed"], indirect=True)
def test_bad_judge_answers_are_unmeasured_with_the_reason_not_zero(scripted):
    """Below calibration: each bad answer itself is unmeasured (the placeholder judge says 0)."""
    geval = SCORERS.get("geval")(judge=scripted.config())
    score = geval.safe_measure("Hamlet was written by Charles Dickens.",
                               case("h", "Who wrote Hamlet?", "William Shakespeare"))
    assert score.value is None
    expected = "placeholder" if scripted.mode == "placeholder" else "is not JSON"
    assert expected in score.error
    faith = SCORERS.get("ragas_faithfulness")(judge=scripted.config())
    score = faith.safe_measure("Hamlet was written by William Shakespeare.",
                               case("h", "Who wrote Hamlet?", None, "Hamlet is by William Shakespeare."))
    assert score.value is None
    expected = "example" if scripted.mode == "placeholder" else "did not parse"
    assert expected in score.error, score.error


def test_missing_fields_and_an_unreachable_judge_are_unmeasured(scripted):
    geval = SCORERS.get("geval")(judge=scripted.config())
    assert "no reference answer" in geval.safe_measure("x", case("c", "q?")).error
    faith = SCORERS.get("ragas_faithfulness")(judge=scripted.config())
    assert "no contexts" in faith.safe_measure("x", case("c", "q?", "a")).error
    dead = JudgeConfig(provider="compatible", base_url="http://127.0.0.1:9/v1", model="none",
                       calibration=str(CALIBRATION), timeout_s=5)
    scorer = SCORERS.get("geval")(judge=dead)
    scores = scorer.batch(["Tokyo"], [NEW_CASES[0][1]])
    assert scores[0].value is None and scores[0].error.startswith("judge not trustworthy")
    assert "Connection" in scores[0].error or "connect" in scores[0].error


def test_gate_floor_rule_on_an_untrusted_judge_metric_is_never_pass(tmp_path):
    """End to end: suite run with an untrusted judge, then a floor rule at threshold 0."""
    from aliasgate.gates import evaluate_gate, parse_gate
    from aliasgate.run.runner import run_suite
    from aliasgate.run.suite import Suite

    class Fixed(Candidate):
        uri = "fixed:test"

        def generate(self, messages, params: GenerationParams) -> Generation:
            return Generation(text="Hamlet was written by William Shakespeare.")

        def fingerprint(self) -> str:
            return "fixed-v1"

    bad = ScriptedJudge("placeholder")
    try:
        scorer = SCORERS.get("geval")(judge=bad.config())
        cases = tuple(case(f"c{i}", "Who wrote Hamlet?", "William Shakespeare") for i in range(12))
        dataset = Dataset("judged", "judged.jsonl", "golden_qa", cases, "sha256:x")
        result = run_suite(Suite(name="judged", dataset="judged.jsonl"), dataset, Fixed(),
                           scorers=[scorer])
    finally:
        bad.close()
    metric = result.metrics["geval"]
    assert metric.value is None and metric.n == 0 and metric.unmeasured == 12
    assert all(c.scores["geval"].error.startswith("judge not trustworthy") for c in result.cases)
    gate = parse_gate("version: 1\nname: t\nn_resamples: 2000\nrules:\n"
                      "  - {id: judged, type: floor, metric: judged.geval, threshold: 0.0}\n",
                      path="inline.yaml")
    verdict = evaluate_gate(gate, {"judged": result})
    rule = verdict.rules[0]
    assert rule.status == "error" and "no measured values" in rule.message
    assert verdict.verdict == "incomplete" and not verdict.promote


# -- config, request shaping, azure ----------------------------------------------------------


def test_judge_config_never_holds_or_logs_a_key(monkeypatch):
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        JudgeConfig(provider="openai", model="gpt-4o-mini", api_key_env="sk-live-123")
    with pytest.raises(ValueError, match="needs base_url"):
        JudgeConfig(provider="compatible", model="m")
    with pytest.raises(ValueError, match="api_version"):
        JudgeConfig(provider="azure", base_url="https://x.openai.azure.com", model="d")
    with pytest.raises(ValueError):
        JudgeConfig(max_tokens=100_000)  # always capped
    monkeypatch.setenv("MY_JUDGE_KEY", "secret-value-42")
    cfg = JudgeConfig(provider="openai", model="gpt-4o-mini", api_key_env="MY_JUDGE_KEY",
                      calibration=str(CALIBRATION))
    assert cfg.api_key() == "secret-value-42"
    described = json.dumps(cfg.describe())
    assert "secret-value-42" not in described and "MY_JUDGE_KEY" in described
    assert cfg.describe()["judge.response_format"] == "json_schema"
    assert cfg.describe()["judge.calibration_sha256"] == __import__("hashlib").sha256(
        CALIBRATION.read_bytes()).hexdigest()
    monkeypatch.delenv("MY_JUDGE_KEY")
    with pytest.raises(JudgeError, match="MY_JUDGE_KEY is not set"):
        cfg.api_key()


def test_judge_endpoint_is_logged_without_credentials():
    cfg = JudgeConfig(provider="compatible", model="m", calibration=str(CALIBRATION),
                      base_url="https://user:pa55word@judge.example:8443/v1?api-key=k3y#frag")
    d = cfg.describe()
    assert d["judge.endpoint"] == "https://judge.example:8443/v1"
    assert not any(s in json.dumps(d) for s in ("pa55word", "k3y", "user", "frag"))
    local = JudgeConfig(calibration=str(CALIBRATION), model_path="/nonexistent.gguf")
    assert local.describe()["judge.endpoint"] == "127.0.0.1 (started by aliasgate)"


def test_judge_config_from_env(monkeypatch, tmp_path):
    path = tmp_path / "judge.yaml"
    path.write_text("provider: compatible\nbase_url: http://127.0.0.1:1/v1\nmodel: m\nmax_tokens: 99\n")
    monkeypatch.setenv("ALIASGATE_JUDGE_CONFIG", str(path))
    monkeypatch.setenv("ALIASGATE_JUDGE_AGREEMENT_FLOOR", "0.9")
    cfg = JudgeConfig.from_env()
    assert (cfg.provider, cfg.max_tokens, cfg.agreement_floor) == ("compatible", 99, 0.9)
    assert SCORERS.get("geval")().judge == cfg  # registry factories read it
    monkeypatch.setenv("ALIASGATE_JUDGE_PROVIDER", "nonsense")
    with pytest.raises(JudgeError, match="provider"):
        JudgeConfig.from_env()


def test_constrained_schema_uses_enums_and_inlines_refs():
    from pydantic import BaseModel

    class Item(BaseModel):
        statement: str
        verdict: int

    class Out(BaseModel):
        items: list[Item]
        score: float

    schema = constrain_schema(Out.model_json_schema(), score_enum=[0, 1, 2], verdict_enum=[0, 1])
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["properties"]["score"] == {"enum": [0, 1, 2]}
    item = schema["properties"]["items"]["items"]
    assert item["properties"]["verdict"] == {"enum": [0, 1]}
    assert item["additionalProperties"] is False and schema["properties"]["items"]["maxItems"] == 12
    assert placeholder_in("The score is <answer_relevancy_score> because <your_reason>.")
    assert placeholder_in("Your concise and informative reason here") is not None
    assert placeholder_in("Paris is the capital of France.") is None


def test_azure_provider_reaches_the_deployment_with_the_key_from_env(scripted, monkeypatch):
    monkeypatch.setenv("TEST_AZURE_JUDGE_KEY", "azure-key-1")
    cfg = JudgeConfig(provider="azure", base_url=scripted.url.removesuffix("/v1"), model="judge-dep",
                      api_version="2024-06-01", api_key_env="TEST_AZURE_JUDGE_KEY",
                      calibration=str(CALIBRATION))
    geval = SCORERS.get("geval")(judge=cfg)
    assert geval.safe_measure("Tokyo", NEW_CASES[0][1]).value == 1.0
    faith = SCORERS.get("ragas_faithfulness")(judge=cfg)
    assert faith.safe_measure("Tokyo is the capital of Japan.", NEW_CASES[0][1]).value == 1.0
    assert all(p.startswith("/openai/deployments/judge-dep/chat/completions") for p in scripted.paths)
    assert all(h.get("api-key") == "azure-key-1" for h in scripted.headers)
    assert all(b["max_completion_tokens"] == cfg.max_tokens for b in scripted.requests)
    assert scripted.requests[0]["response_format"]["type"] == "json_schema"


# -- the calibration set and the rules ----------------------------------------------------------


def test_shipped_calibration_set_is_valid_and_balanced():
    assert default_calibration_path() == CALIBRATION
    items = load_calibration_set(CALIBRATION)
    assert len(items) >= 20 and len({i.id for i in items}) == len(items)
    for kind in ("correctness", "relevance", "bias", "toxicity"):
        verdicts = [i.verdict for i in items if i.kind == kind]
        assert verdicts.count("pass") == verdicts.count("fail") >= 3, kind
    for i in items:
        if i.kind == "correctness":
            assert i.reference and i.context
    assert any("Dickens" in i.response and i.verdict == "fail" for i in items)
    picked = select_items(items, ("correctness",), 5)
    assert [i.verdict for i in picked] == ["pass", "fail", "pass", "fail", "pass"]


def test_a_bad_calibration_row_names_file_and_line(tmp_path):
    path = tmp_path / "cal.jsonl"
    good = CALIBRATION.read_text().splitlines()[0]
    path.write_text(good + "\n" + good.replace('"pass"', '"maybe"') + "\n")
    with pytest.raises(DatasetError, match=r"cal\.jsonl:2: field 'verdict'"):
        load_calibration_set(path)
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(DatasetError, match=r"cal\.jsonl:2: duplicate id"):
        load_calibration_set(path)


def _results(pairs: list[tuple[str, float | None]]) -> list[ItemResult]:
    return [ItemResult(f"i{n}", known, value, None if value is not None else "judge error: boom")
            for n, (known, value) in enumerate(pairs)]


def test_summarize_rules():
    cfg = JudgeConfig(calibration=str(CALIBRATION))
    good = summarize("m", _results([("pass", 0.9), ("fail", 0.1)] * 5), cfg)
    assert good.trusted and good.agreement == 1.0 and good.separation == pytest.approx(0.8)
    half = summarize("m", _results([("pass", 0.9), ("fail", 0.9)] * 5), cfg)
    assert half.constant_scores and half.degenerate and half.agreement == 0.5 and not half.trusted
    inverted = summarize("m", _results([("pass", 0.2), ("fail", 0.8)] * 5), cfg)
    assert not inverted.trusted and "known-bad items scored at least as high" in inverted.message
    flaky = summarize("m", _results([("pass", 0.9), ("fail", 0.1)] * 4 + [("pass", None)] * 3), cfg)
    assert flaky.n_unmeasured == 3 and flaky.degenerate and "3/11 items unmeasured" in flaky.message
    assert flaky.agreement == pytest.approx(8 / 11)
    at_floor = summarize("m", _results([("pass", 0.9), ("fail", 0.1)] * 4 + [("pass", 0.1)] * 2), cfg)
    assert at_floor.agreement == pytest.approx(0.8) and at_floor.trusted  # the floor is inclusive
    below = summarize("m", _results([("pass", 0.9), ("fail", 0.1)] * 4 + [("pass", 0.1)] * 3), cfg)
    assert not below.degenerate and not below.trusted
    assert below.message == ("judge not trustworthy: agreement 0.73 < 0.80 on 11 calibration items "
                             "(8/11 verdicts match)")
    assert below.params()["judge.m.trusted"] is False
    assert below.params()["judge.m.agreement"] == pytest.approx(8 / 11, abs=1e-6)


def test_judge_scorers_are_registered():
    for name in JUDGE_SCORERS:
        assert name in SCORERS
        assert SCORERS.get(name)(judge={"provider": "compatible", "base_url": "http://127.0.0.1:1/v1",
                                        "model": "m"}).name == name


# -- (c) the real local judge -------------------------------------------------------------------


@pytest.mark.model
def test_local_tiny_judge_runs_offline_and_is_not_trusted(net_guard, capsys):
    pytest.importorskip("llama_cpp")
    t0 = time.perf_counter()
    cfg = JudgeConfig(provider="local", max_tokens=64, n_ctx=4096, calibration=str(CALIBRATION),
                      calibration_limit=4, timeout_s=60)
    try:
        for name in ("geval", "ragas_faithfulness"):
            scorer = SCORERS.get(name)(judge=cfg)
            raw = [scorer.safe_measure(o, c) for o, c, _ in NEW_CASES]  # the judge itself, 3 cases
            for s in raw:
                assert isinstance(s, Score)
                assert (s.value is not None and 0.0 <= s.value <= 1.0) or s.error, s
                if s.value is None:
                    assert s.error.startswith("judge error: ") or "NaN" in s.error
            cal = calibrate(scorer)
            assert not cal.trusted, cal
            judged = scorer.batch([o for o, _, _ in NEW_CASES], [c for _, c, _ in NEW_CASES])
            assert all(s.value is None and s.error == cal.message for s in judged)
            with capsys.disabled():
                print(f"\n[local judge] {name}: raw={[(s.value, (s.error or '')[:70]) for s in raw]}"
                      f"\n[local judge] {name}: {cal.message}")
        params = judge_params()
        assert params["judge.provider"] == "local" and len(params["judge.gguf_sha256"]) == 64
        if params["judge.local_server"] == "builtin":  # it stops generating at the deadline
            import openai

            from aliasgate.scorers.judge_config import DEADLINE_FIELD, openai_client

            with pytest.raises(openai.APIStatusError, match="deadline"):
                openai_client(cfg).chat.completions.create(
                    model="judge", messages=[{"role": "user", "content": "Count from 1 to 300."}],
                    max_tokens=1024, extra_body={DEADLINE_FIELD: 0.5})
    finally:
        stop_local_servers()
    with capsys.disabled():
        print(f"[local judge] server {cfg.describe()['judge.local_server']}, "
              f"wall time {time.perf_counter() - t0:.1f} s")
