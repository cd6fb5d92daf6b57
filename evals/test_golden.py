"""Golden factual QA: our own short questions with accepted answers (datasets/golden_qa.jsonl)."""

from aliasgate import Suite

golden = Suite(
    name="golden",
    dataset="datasets/golden_qa.jsonl",
    kind="golden_qa",
    scorers=("exact_match", "token_f1", "contains", "rouge_l"),
    prompt="Answer the question with a short phrase only.\nQuestion: {input}",
    params={"max_tokens": 32},
    description="Short factual questions; references are accepted answer variants.",
)
