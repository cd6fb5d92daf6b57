"""Inputs the registered pyfunc models accept in ``predict`` (shared by local and hosted models)."""

from __future__ import annotations

import pandas as pd
import pytest

from aliasgate.candidates.messages import pyfunc_rows

USER = {"role": "user", "content": "hi"}


def test_strings_dicts_and_dataframes() -> None:
    assert pyfunc_rows("hi") == [[USER]]
    assert pyfunc_rows(["hi", {"prompt": "hi"}]) == [[USER], [USER]]
    sys = {"role": "system", "content": "be brief"}
    assert pyfunc_rows({"messages": [sys, USER]}) == [[sys, USER]]
    assert pyfunc_rows(pd.DataFrame({"prompt": ["hi", "hi"]})) == [[USER], [USER]]
    assert pyfunc_rows(pd.DataFrame({"messages": [[sys, USER]]})) == [[sys, USER]]


def test_unsupported_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="'prompt' or 'messages' column"):
        pyfunc_rows(pd.DataFrame({"question": ["hi"]}))
    with pytest.raises(ValueError, match="unsupported input row 42"):
        pyfunc_rows([42])
    with pytest.raises(ValueError, match="unsupported input row"):
        pyfunc_rows({"text": "hi"})
