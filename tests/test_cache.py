"""ResponseCache: keys, round trips, persistence, thread and process safety, corrupt files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from aliasgate.candidates.base import Generation, GenerationParams
from aliasgate.run.cache import CACHE_FILENAME, CacheError, ResponseCache

MSGS = [{"role": "user", "content": "What is the capital of France?"}]


def gen(text: str = "Paris", **kw) -> Generation:
    base = dict(prompt_tokens=9, completion_tokens=2, latency_s=0.123, finish_reason="stop")
    base.update(kw)
    return Generation(text=text, **base)


def test_key_is_deterministic_and_sensitive_to_every_part():
    p = GenerationParams()
    k = ResponseCache.key("fp1", MSGS, p)
    assert k == ResponseCache.key("fp1", [dict(reversed(list(MSGS[0].items())))], GenerationParams())
    assert len(k) == 64 and int(k, 16) >= 0
    others = {
        ResponseCache.key("fp2", MSGS, p),
        ResponseCache.key("fp1", [{"role": "user", "content": "What is the capital of Spain?"}], p),
        ResponseCache.key("fp1", MSGS, p.merged({"max_tokens": 65})),
        ResponseCache.key("fp1", MSGS, p.merged({"temperature": 0.7})),
        ResponseCache.key("fp1", MSGS, p.merged({"stop": ["\n"]})),
        ResponseCache.key("fp1", MSGS, p.merged({"seed": 1})),
    }
    assert k not in others and len(others) == 6


def test_put_get_round_trip_keeps_fields_and_marks_cached(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        key = ResponseCache.key("fp", MSGS, GenerationParams())
        assert cache.get(key) is None
        original = gen(extra={"model": "x", "n": 3})
        cache.put(key, original, meta={"case": "geo-001"})
        got = cache.get(key)
        assert got is not None and got.cached is True and original.cached is False
        assert (got.text, got.prompt_tokens, got.completion_tokens, got.latency_s, got.finish_reason) == (
            "Paris", 9, 2, 0.123, "stop",
        )
        assert got.extra == {"model": "x", "n": 3}
        assert (cache.hits, cache.misses, cache.writes) == (1, 1, 1)
        assert len(cache) == 1


def test_persists_across_instances(tmp_path):
    path = tmp_path / "sub" / "dir" / "responses.sqlite"
    keys = [ResponseCache.key("fp", [{"role": "user", "content": str(i)}], GenerationParams()) for i in range(5)]
    with ResponseCache(path) as cache:
        for i, k in enumerate(keys):
            cache.put(k, gen(f"answer {i}"))
    assert path.exists()
    with ResponseCache(path) as again:
        assert len(again) == 5
        assert [again.get(k).text for k in keys] == [f"answer {i}" for i in range(5)]
        assert again.writes == 0 and again.hits == 5


def test_directory_path_and_default_path(tmp_path, monkeypatch):
    with ResponseCache(tmp_path) as cache:
        assert cache.path == tmp_path / CACHE_FILENAME
    monkeypatch.chdir(tmp_path)
    with ResponseCache() as cache:
        cache.put("k", gen())
    assert (tmp_path / ".aliasgate" / "cache" / CACHE_FILENAME).exists()


def test_wal_mode(tmp_path):
    path = tmp_path / "c.sqlite"
    with ResponseCache(path) as cache:
        cache.put("k", gen())
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            # committed immediately: visible to another connection while the cache is open
            assert conn.execute("SELECT text FROM responses WHERE key='k'").fetchone() == ("Paris",)
        finally:
            conn.close()


def test_failures_are_never_stored(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(TypeError):
            cache.put("k", Generation(text=None))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            cache.put("k", "Paris")  # type: ignore[arg-type]
        assert len(cache) == 0 and cache.writes == 0


def test_clear_len_bool_and_close(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    assert len(cache) == 0 and bool(cache) is True
    cache.put("a", gen())
    cache.put("b", gen())
    cache.put("a", gen("Lyon"))  # replaces
    assert len(cache) == 2 and cache.get("a").text == "Lyon"
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None
    cache.close()
    cache.close()  # idempotent
    with pytest.raises(CacheError, match="closed"):
        cache.get("a")


def test_two_threads_writing_concurrently(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(tag: str) -> None:
        try:
            start.wait(timeout=10)
            for i in range(200):
                cache.put(f"{tag}-{i}", gen(f"{tag} {i}"))
                assert cache.get(f"{tag}-{i}").text == f"{tag} {i}"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.writes == 400 and len(cache) == 400
    cache.close()
    with ResponseCache(path) as again:
        assert len(again) == 400
        assert again.get("b-199").text == "b 199"


def test_two_processes_writing_concurrently(tmp_path):
    path = tmp_path / "c.sqlite"
    script = textwrap.dedent(
        """
        import sys
        from aliasgate.candidates.base import Generation
        from aliasgate.run.cache import ResponseCache
        path, tag = sys.argv[1], sys.argv[2]
        with ResponseCache(path) as cache:
            for i in range(150):
                cache.put(f"{tag}-{i}", Generation(text=f"{tag} {i}"))
                assert cache.get(f"{tag}-{i}").text == f"{tag} {i}"
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), tag], stderr=subprocess.PIPE, text=True)
        for tag in ("p", "q", "r")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with ResponseCache(path) as cache:
        assert len(cache) == 450
        assert cache.get("p-0").text == "p 0" and cache.get("q-149").text == "q 149"


def test_corrupt_file_is_a_clear_error_naming_the_path(tmp_path):
    path = tmp_path / "responses.sqlite"
    path.write_bytes(b"this is not a sqlite database at all\n" * 200)
    with pytest.raises(CacheError) as info:
        ResponseCache(path)
    assert str(path) in str(info.value)
    assert path.read_bytes().startswith(b"this is not")  # never replaced by an empty cache


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE responses (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="not an aliasgate response cache") as info:
        ResponseCache(path)
    assert str(path) in str(info.value)


def test_unusable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CacheError) as info:
        ResponseCache(blocker / "cache" / "responses.sqlite")
    assert str(blocker) in str(info.value)



def test_key_function_gives_exactly_the_keys_of_key():
    """The per-run key function keeps every cache written by ``key`` valid (same bytes hashed)."""
    params = [GenerationParams(), GenerationParams().merged({"stop": ["\n", "é"], "max_tokens": 7,
                                                             "temperature": 0.5})]
    messages = [
        MSGS,
        [{"role": "system", "content": "Be brief. «ünïcödé» \u2028 \"quoted\" \\ / <tags>"},
         {"role": "user", "content": "Q?\n\tA:"}],
        [{"content": "reordered keys", "role": "user"}],
        [],
    ]
    for fp in ("fp1", "local:smollm2@sha256:ab", "ünï \"fp\""):
        for p in params:
            fast = ResponseCache.key_function(fp, p)
            for m in messages:
                for repeat in (None, 0, 1, 12):
                    assert fast(m, repeat) == ResponseCache.key(fp, m, p, repeat=repeat)


def test_get_many_reads_what_get_reads_and_counts_once_per_key(tmp_path, monkeypatch):
    import aliasgate.run.cache as cache_module

    monkeypatch.setattr(cache_module, "_KEYS_PER_QUERY", 3)  # several queries
    keys = [ResponseCache.key("fp", [{"role": "user", "content": str(i)}], GenerationParams())
            for i in range(8)]
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        for i in range(0, 8, 2):
            cache.put(keys[i], gen(f"answer {i}", extra={"i": i}))
        got = cache.get_many([*keys, keys[0]])
        assert sorted(got) == sorted(keys[0::2])
        for i in range(0, 8, 2):
            assert got[keys[i]] == cache.get(keys[i])
            assert got[keys[i]].cached is True and got[keys[i]].extra == {"i": i}
        assert (cache.hits, cache.misses) == (4 + 4, 4)
        assert cache.get_many([]) == {}
        cache.close()
        with pytest.raises(CacheError, match="closed"):
            cache.get_many(keys)
