"""The examples a config trains and evaluates on: synthetic, a labelled folder, or a file.

A labelled folder (``train/folders.py``) gives ``heldout_examples`` drawn with the data
seed for evaluation and up to ``train_examples`` of the rest for training. A file source
gives its first ``train_examples`` rows for training and the next ``heldout_examples``
for evaluation; a synthetic source draws held-out examples from a seed no training run
uses. Examples whose first prompt is longer than
``data.max_prompt_tokens`` are dropped (and counted), never cut.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkjson_edge.train.config import TrainConfig
from thinkjson_edge.train.data import Example, Split, train_and_heldout
from thinkjson_edge.train.datasets_io import read_examples
from thinkjson_edge.train.folders import is_labelled_folder, read_labelled_folder
from thinkjson_edge.train.ocr_habits import with_ocr_habits
from thinkjson_edge.train.prompting import first_prompt


def load_split(config: TrainConfig) -> Split:
    """Training and held-out examples of the config (unfiltered), with every example of
    the ``data.mixed_in`` folders (``data.ocr_habits_share`` of them in OCR's habits)
    shuffled into the training ones."""
    split = _source_split(config)
    if not config.data.mixed_in:
        return split
    trained = list(split.train)
    for folder in config.data.mixed_in:
        examples = read_labelled_folder(Path(folder)).examples
        trained += with_ocr_habits(examples, config.data.ocr_habits_share, config.data.seed)
    random.Random(config.data.seed).shuffle(trained)
    return Split(trained, split.heldout)


def _source_split(config: TrainConfig) -> Split:
    data = config.data
    if data.source == "synthetic":
        return train_and_heldout(
            data.train_examples, data.heldout_examples, data.generator_options()
        )
    if is_labelled_folder(Path(data.source)):
        return folder_split(
            read_labelled_folder(Path(data.source)).examples,
            data.train_examples,
            data.heldout_examples,
            data.seed,
        )
    rows = read_examples(Path(data.source), limit=data.train_examples + data.heldout_examples)
    return Split(rows[: data.train_examples], rows[data.train_examples :])


def folder_split(examples: list[Example], train: int, heldout: int, seed: int) -> Split:
    """Held-out examples drawn by ``seed`` (a folder is often sorted by date or source),
    the next ``train`` for training; each list keeps the folder's order."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[:heldout])
    trained = set(order[heldout : heldout + train])
    return Split(
        [example for index, example in enumerate(examples) if index in trained],
        [example for index, example in enumerate(examples) if index in held],
    )


@dataclass
class Fitted:
    examples: list[Example]
    dropped: int


def fitting(examples: list[Example], tokenizer: Any, config: TrainConfig) -> Fitted:
    """The examples whose first prompt fits ``data.max_prompt_tokens``."""
    kept = [
        example
        for example in examples
        if len(tokenizer(first_prompt(tokenizer, example, think=config.think)).input_ids)
        <= config.data.max_prompt_tokens
    ]
    if not kept:
        raise ValueError(
            f"no example's prompt fits data.max_prompt_tokens ({config.data.max_prompt_tokens}); "
            "raise it or use shorter documents"
        )
    return Fitted(kept, len(examples) - len(kept))
