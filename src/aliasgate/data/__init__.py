"""Data files shipped inside the package (read with :mod:`importlib.resources`).

``judge_calibration.jsonl``: the default calibration set of the LLM judges
(:mod:`aliasgate.scorers.judge_calibration`).
"""
