"""`aliasgate nightly` end to end on registered model versions in a real sqlite MLflow store:
three nights of `pytest evals/ --nightly` subprocesses (champion, then champion + challenger),
a known regression when @champion moves to a worse version, a webhook alert delivered to a real
HTTP listener on 127.0.0.1 (after one 503 and a retry), the MLflow tags and artifacts, and the
page rendered by headless Chromium with a screenshot.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import nightly_project as proj

MODEL = "nightly-e2e"
EXPERIMENT = "nightly-e2e"
CHALLENGER_WRONG = {10, 20}


# -- a real HTTP listener ------------------------------------------------------------------------


@dataclass
class Listener:
    """A webhook receiver on 127.0.0.1 answering with ``statuses`` in turn (then 200)."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0


@pytest.fixture
def listener() -> Iterator[Listener]:
    state = Listener(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append({"path": self.path, "headers": dict(self.headers),
                                   "body": body})
            if state.delay_s:
                time.sleep(state.delay_s)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/secret-token"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# -- the three nights ----------------------------------------------------------------------------


@dataclass
class Story:
    root: Path
    store: str
    nights: dict[str, Any]  # night -> NightlyResult
    listener: Listener
    versions: dict[str, str]


def _register(store: str, wrong: set[int]) -> str:
    import mlflow

    key = proj.answer_key()
    model_file = Path(__file__).parent / "models" / "answer_key_model.py"
    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("register")
    with mlflow.start_run(), warnings.catch_warnings():
        # the shared test model has no type hints; MLflow says so on every log_model
        warnings.filterwarnings("ignore", ".*Add type hints", UserWarning)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(model_file),
            model_config={"key": key, "wrong": [proj.question(i) for i in sorted(wrong)]},
            registered_model_name=MODEL, pip_requirements=["mlflow"],
        )
    return str(info.registered_model_version)


def _options(root: Path, store: str, night: str, webhook: str | None):
    from aliasgate.nightly import NightlyOptions

    return NightlyOptions(
        model=MODEL, evals="evals/", gate=root / "gate.yaml", experiment=EXPERIMENT,
        tracking_uri=store, nights=14, out=root / "reports" / "nightly", date=night,
        alert_webhook=webhook, webhook_timeout=5.0, root=root,
    )


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    import mlflow
    from mlflow import MlflowClient

    from aliasgate.nightly import run_nightly

    root = proj.make_project(tmp_path_factory.mktemp("nightly_e2e"))
    store = f"sqlite:///{root / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    state = Listener(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.received.append({"path": self.path, "body": body,
                                   "content_type": self.headers.get("Content-Type")})
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/secret-token"
    try:
        client = MlflowClient(store)
        versions = {
            "good": _register(store, proj.wrong_on("base")),
            "challenger": _register(store, proj.wrong_on("base") | CHALLENGER_WRONG),
            "bad": _register(store, proj.wrong_on("regressed")),
        }
        client.set_registered_model_alias(MODEL, "champion", versions["good"])
        nights = {"2026-11-01": run_nightly(_options(root, store, "2026-11-01", state.url))}
        client.set_registered_model_alias(MODEL, "challenger", versions["challenger"])
        nights["2026-11-02"] = run_nightly(_options(root, store, "2026-11-02", state.url))
        client.set_registered_model_alias(MODEL, "champion", versions["bad"])
        state.statuses[:] = [503]  # the first delivery fails: the retry must deliver
        nights["2026-11-03"] = run_nightly(_options(root, store, "2026-11-03", state.url))
        yield Story(root, store, nights, state, versions)
    finally:
        server.shutdown()
        server.server_close()
        mlflow.set_tracking_uri(before)


def test_quiet_nights_do_not_alert(story: Story) -> None:
    first, second = story.nights["2026-11-01"], story.nights["2026-11-02"]
    assert first.exit_code == 0 and [r.role for r in first.report.roles] == ["champion"]
    assert first.report.status == "amber"  # first night: nothing to compare with yet
    assert second.exit_code == 0
    assert [r.role for r in second.report.roles] == ["champion", "challenger"]
    champion = second.report.role("champion")
    assert champion.status == "green", champion.reasons
    assert all(c.status == "unchanged" for c in champion.comparison.changes)
    assert champion.gate["verdict"] == "pass"
    # the champion's gate baseline (@champion) is the champion itself: the paired comparison is
    # skipped (it used to "pass" a comparison with itself), the absolute rules decide
    rules = {r["id"]: r for r in champion.gate["rules"]}
    assert rules["qa-em-not-worse"]["status"] == "skipped"
    assert "is the candidate itself" in rules["qa-em-not-worse"]["message"]
    assert rules["qa-em-floor"]["status"] == "pass"
    assert rules["privacy-leak-ceiling"]["status"] == "pass"
    # the challenger is another version: compared with the champion as before
    challenger = {r["id"]: r for r in second.report.role("challenger").gate["rules"]}
    assert challenger["qa-em-not-worse"]["status"] == "pass"
    assert first.alerts == [] and second.alerts == []
    for night in ("2026-11-01", "2026-11-02"):
        out = story.root / "reports" / "nightly" / night
        assert {"index.html", "summary.md", "verdict.json"} <= {p.name for p in out.iterdir()}


def test_regressed_champion_turns_the_night_red(story: Story) -> None:
    result = story.nights["2026-11-03"]
    report = result.report
    assert result.exit_code == 1 and report.status == "red"
    champion = report.role("champion")
    assert champion.run.model_version == story.versions["bad"]
    assert champion.comparison.previous.model_version == story.versions["good"]
    keys = {c.key for c in champion.comparison.blocking}
    assert {"qa.exact_match", "qa.contains"} <= keys
    assert {(s.metric, s.group) for s in champion.comparison.slice_regressions} == \
        {("exact_match", "math"), ("contains", "math")}
    assert sorted(c.id for c in champion.comparison.regressed_cases) == proj.regressed_ids()
    assert any("alias moved" in r for r in champion.reasons)
    challenger = report.role("challenger")
    assert challenger.status != "red" and challenger.alerting is False
    assert challenger.gate["verdict"] == "pass"  # v2 is not worse than the (bad) champion

    out = result.out_dir
    doc = json.loads((out / "verdict.json").read_text())
    assert doc["schema"] == "aliasgate.nightly/1" and doc["status"] == "red" and doc["blocking"]
    assert doc["roles"]["champion"]["model_version"] == story.versions["bad"]
    md = (out / "summary.md").read_text()
    assert "`qa.exact_match`" in md and "**math**" in md and "q042" in md
    html = (out / "index.html").read_text()
    assert "qa.exact_match" in html and "math" in html and "@challenger" in html
    for cid in proj.regressed_ids():
        assert cid in html
    assert html.count('<img src="data:image/png;base64,') >= 4 and "<script" not in html


def test_webhook_alert_reaches_the_listener_after_one_retry(story: Story) -> None:
    posts = story.listener.received
    assert len(posts) == 2  # quiet nights sent nothing; night 3: a 503, then the retry
    assert posts[0]["body"] == posts[1]["body"]
    assert posts[1]["path"] == "/hooks/T0/B0/secret-token"
    assert posts[1]["content_type"] == "application/json"
    payload = json.loads(posts[1]["body"])
    assert payload["schema"] == "aliasgate.alert/1" and payload["status"] == "red"
    assert payload["night"] == "2026-11-03" and payload["model"] == MODEL
    assert payload["text"].startswith("🔴 aliasgate nightly 2026-11-03")
    assert "qa." in payload["headline"]
    regs = {r["metric"]: r for r in payload["regressions"] if r["suite"] == "qa"}
    em = regs["exact_match"]
    assert em["significant"] is True and em["role"] == "champion"
    assert em["version"] == story.versions["bad"]
    assert em["delta"] == pytest.approx(-(len(proj.REGRESSED) - len(proj.RECOVERED)) / proj.N_QA)
    assert em["ci_high"] < 0 and em["p_worse_adjusted"] < 0.025
    assert {(s["metric"], s["group"]) for s in payload["slices"]} == \
        {("exact_match", "math"), ("contains", "math")}
    assert sorted(c["id"] for c in payload["cases"]) == proj.regressed_ids()
    assert payload["cases_total"] == len(proj.REGRESSED)
    result = story.nights["2026-11-03"]
    assert payload["run_ids"]["champion"] == result.report.role("champion").run.run_id
    assert payload["report"] == str(result.page)
    webhook = next(a for a in result.alerts if a["sink"] == "webhook")
    assert webhook["ok"] is True and webhook["attempts"] == 2
    assert "secret-token" not in webhook["target"]  # webhook paths hold secrets


def test_runs_are_tagged_and_the_report_is_logged(story: Story) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(story.store)
    result = story.nights["2026-11-03"]
    run = client.get_run(result.report.role("champion").run.run_id)
    tags = run.data.tags
    assert tags["aliasgate.kind"] == "nightly" and tags["aliasgate.role"] == "champion"
    assert tags["aliasgate.night"] == "2026-11-03"
    assert tags["aliasgate.model_name"] == MODEL
    assert tags["aliasgate.model_version"] == story.versions["bad"]
    assert tags["aliasgate.nightly_status"] == "red"
    assert tags["aliasgate.alert"].startswith("🔴 aliasgate nightly 2026-11-03")
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "nightly")}
    assert logged == {"nightly/index.html", "nightly/summary.md", "nightly/verdict.json"}
    challenger = client.get_run(result.report.role("challenger").run.run_id).data.tags
    assert challenger["aliasgate.role"] == "challenger" and "aliasgate.alert" not in challenger
    quiet = client.get_run(story.nights["2026-11-02"].report.role("champion").run.run_id)
    assert "aliasgate.alert" not in quiet.data.tags
    # `aliasgate nightly` writes one page for all roles, not one per run
    assert not list((result.out_dir / "runs" / "champion").glob("*/index.html"))


def test_pytest_nightly_option_tags_the_run_and_writes_its_page(
    story: Story, pytester: pytest.Pytester
) -> None:
    from mlflow import MlflowClient

    pytester.chdir()
    res = pytester.runpytest_subprocess(
        str(story.root / "evals"), "--rootdir", str(story.root), "-c",
        str(story.root / "pyproject.toml"), "--candidate", f"models:/{MODEL}@challenger",
        "--tracking-uri", story.store, "--experiment", EXPERIMENT, "--nightly",
        "--nightly-date", "2026-11-04", "--no-progress", "-p", "no:cacheprovider",
        "--cache-dir", str(pytester.path / "cache"), "--reports-dir", str(pytester.path / "reports"),
    )
    res.assert_outcomes(passed=2)
    out = res.stdout.str()
    run_id = next(line.split()[2] for line in out.splitlines() if line.startswith("MLflow run:"))
    tags = MlflowClient(story.store).get_run(run_id).data.tags
    assert tags["aliasgate.kind"] == "nightly" and tags["aliasgate.role"] == "challenger"
    assert tags["aliasgate.night"] == "2026-11-04"
    assert tags["aliasgate.model_version"] == story.versions["challenger"]
    pages = list((pytester.path / "reports").glob("*/index.html"))
    assert len(pages) == 1 and f"nightly report: {pages[0]}" in out
    html = pages[0].read_text()
    assert "@challenger" in html and "2026-11-03" in html  # compared with its previous night
    assert (pages[0].parent / "summary.md").exists() and (pages[0].parent / "report.json").exists()


def test_nightly_without_champion_is_a_usage_error(story: Story,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from aliasgate.cli import main

    code = main(["--tracking-uri", story.store, "nightly", "--model", "no-such-model",
                 "--no-gate", "--root", str(story.root), "--out", str(story.root / "x")])
    assert code == 2
    assert "no-such-model" in capsys.readouterr().err
    assert not (story.root / "x").exists()


# -- webhook delivery ------------------------------------------------------------------------------


def test_webhook_gives_up_after_one_retry_and_says_why(listener: Listener) -> None:
    from aliasgate.nightly import post_webhook

    listener.statuses[:] = [500, 500, 500]
    res = post_webhook(listener.url, {"a": 1}, timeout=5, backoff_s=0)
    assert res["ok"] is False and res["attempts"] == 2 and res["status"] == 500
    assert "HTTP 500" in res["error"] and len(listener.received) == 2
    assert json.loads(listener.received[0]["body"]) == {"a": 1}

    listener.received.clear()
    listener.statuses[:] = [404]
    res = post_webhook(listener.url, {"a": 1}, timeout=5, backoff_s=0)
    assert res["ok"] is False and res["attempts"] == 1  # a client error is not retried
    assert len(listener.received) == 1

    listener.received.clear()
    listener.delay_s = 1.0
    res = post_webhook(listener.url, {"a": 1}, timeout=0.2, backoff_s=0)
    assert res["ok"] is False and res["attempts"] == 2 and "timed out" in res["error"].lower()


def test_webhook_to_a_closed_port_is_recorded() -> None:
    from aliasgate.nightly import post_webhook

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = post_webhook(f"http://127.0.0.1:{port}/hook", {"a": 1}, timeout=2, backoff_s=0)
    assert res["ok"] is False and res["attempts"] == 2 and "refused" in res["error"].lower()
    assert post_webhook("file:///etc/passwd", {})["ok"] is False


# -- the page in a real browser ----------------------------------------------------------------------


def _chromium() -> str:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                       else None)
    if exe:
        return exe
    hint = ("headless Chromium is needed: apt-get update && apt-get install -y "
            "--no-install-recommends chromium (what .ci/run does)")
    if os.environ.get("CI"):
        pytest.fail(f"chromium not found in CI; {hint}")
    pytest.skip(hint)


@pytest.mark.integration
def test_page_renders_in_headless_chromium(story: Story, tmp_path: Path) -> None:
    from PIL import Image

    exe = _chromium()
    page = story.nights["2026-11-03"].page
    shots = tmp_path / "reports" / "screenshots"
    shots.mkdir(parents=True)
    shot = shots / "nightly-2026-11-03.png"
    width, height = 1280, 2400
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
            f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    dom = subprocess.run([*argv[:-2], "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=180).stdout
    assert "qa.exact_match" in dom and "q042" in dom

    img = Image.open(shot).convert("RGB")
    assert img.size == (width, height)
    colours = img.resize((160, 250)).getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 200  # a drawn page, not a blank one
    r, g, b = img.getpixel((width // 2, 40))  # the header band is red (vermillion) tonight
    assert r > 150 and g < 120 and b < 80, (r, g, b)

    if os.environ.get("ALIASGATE_UPDATE_SCREENSHOT") == "1":
        target = Path(__file__).resolve().parents[1] / "docs" / "report-screenshot.png"
        shutil.copyfile(shot, target)
