"""TODO docstring (causal)."""

from __future__ import annotations

from xstilts.errors import DataError
from xstilts.kinds.tagging import IGNORE_INDEX


def completion_features(tokenizer, prompts: list[str], completions: list[str], max_length: int,
                        where: str = "") -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of prompt + completion + eos, and labels that are IGNORE_INDEX on the prompt, so the loss and the
    dev score count completion tokens only. Prompt and completion are tokenised separately, as at generation time
    (the prompt alone is the model's input there). Too long: the prompt loses tokens on the left (the end of a
    prompt is what the completion continues), the completion on the right, keeping at least half for the prompt
    when it is that long."""
    for row, completion in enumerate(completions):
        if not isinstance(completion, str) or not completion:
            raise DataError(f"{where or 'generation data'}: row {row}: field 'completion' is empty; training and "
                            f"dev rows of a generation task need a prompt and its completion")
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    completion_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    inputs, labels = [], []
    for p, c in zip(prompt_ids, completion_ids):
        c = (c + [eos])[:max_length - min(len(p), max_length // 2)]
        p = p[max(0, len(p) - (max_length - len(c))):]
        inputs.append(p + c)
        labels.append([IGNORE_INDEX] * len(p) + c)
    return inputs, labels
