"""Load and validate datasets (JSONL/CSV/Parquet) into :class:`Case` objects, with a content digest.

Formats are chosen by file extension (``FORMATS``); row schemas by ``kind`` (``KINDS``).
Add one: a new file plus one registration line.
"""

from __future__ import annotations

from aliasgate._registry import Registry
from aliasgate.datasets.base import Case, Dataset, DatasetError

FORMATS = Registry(
    "dataset format",
    {
        ".jsonl": "aliasgate.datasets.formats:read_jsonl",
        ".csv": "aliasgate.datasets.formats:read_csv",
        ".parquet": "aliasgate.datasets.formats:read_parquet",
    },
    entry_point_group="aliasgate.dataset_formats",
)

KINDS = Registry(
    "dataset kind",
    {
        "golden_qa": "aliasgate.datasets.golden_qa:GoldenQARow",
        "safety_prompts": "aliasgate.datasets.safety_prompts:SafetyPromptRow",
        "prompt_injection": "aliasgate.datasets.prompt_injection:PromptInjectionRow",
        "xstest": "aliasgate.datasets.xstest:XSTestRow",
        "bias_counterfactual": "aliasgate.datasets.bias_counterfactual:BiasCounterfactualRow",
        "bias_bbq": "aliasgate.datasets.bias_bbq:BiasBBQRow",
        "bias_decisions": "aliasgate.datasets.bias_decisions:BiasDecisionRow",
        "bbq": "aliasgate.datasets.bbq:BBQRow",
    },
    entry_point_group="aliasgate.dataset_kinds",
)

from aliasgate.datasets.loader import load_dataset  # noqa: E402

__all__ = ["FORMATS", "KINDS", "Case", "Dataset", "DatasetError", "load_dataset"]
