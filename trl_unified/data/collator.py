"""Rows -> padded interleaved text+image batches."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..models.base import IGNORE_INDEX, IMAGE, TEXT, Segment, UnifiedModelAdapter


def _is_integer(value: Any) -> bool:
    """An int (not a bool), or a float with an integer value (JSON may give 3.0): never 1.7 truncated to 1."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())


@dataclass
class DataCollatorForInterleavedSequences:
    """Builds ``[prompt][reasoning][begin-of-image][image codes][end-of-image]`` batches through a model adapter.

    A row holds ``prompt_ids`` (or ``prompt``), ``reasoning_ids`` (or ``reasoning``, may be empty), ``image_tokens``
    (the image's codes; absent or ``None`` for a text-only row, which ends with EOS instead) and optionally
    ``text_weight`` / ``image_weight`` (default 1; a modality with weight 0 is not trained). The batch holds,
    right-padded:

    * ``input_ids``, ``attention_mask``;
    * ``labels``: -100 on the prompt, padding and forced tokens; token ids on text, *codes* on image positions;
    * ``modality``: ``TEXT`` (0) or ``IMAGE`` (1) per position;
    * ``text_weight``, ``image_weight``: one float per sample.

    Images are never cut. A row longer than ``max_length`` raises a ``ValueError`` naming the row, unless
    ``truncate_reasoning`` is set, in which case only its reasoning is shortened.
    """

    adapter: UnifiedModelAdapter
    max_length: int | None = None
    truncate_reasoning: bool = False
    pad_to_multiple_of: int | None = None

    def encode_row(self, row: dict[str, Any], index: int | str = "?") -> Segment:
        """One row as an interleaved sequence; errors name the row and the column at fault."""
        adapter = self.adapter
        prompt = row.get("prompt_ids")
        if prompt is None:
            if row.get("prompt") is None:
                raise ValueError(f"row {index}: needs a `prompt` (text) or `prompt_ids` column")
            prompt = adapter.tokenize_prompt(row["prompt"])
        reasoning = row.get("reasoning_ids")
        if reasoning is None:
            reasoning = adapter.tokenize_text(row.get("reasoning") or "")
        codes = row.get("image_tokens")
        if codes is not None:
            if isinstance(codes, (str, bytes)) or not hasattr(codes, "__iter__"):
                raise ValueError(f"row {index}, column `image_tokens`: expected a list of integer codes, got {codes!r}")
            bad = [c for c in codes if not _is_integer(c)]
            if bad:
                raise ValueError(f"row {index}, column `image_tokens`: codes must be integers, got {bad[:5]}")
        try:
            tail = (
                Segment.text([adapter.eos_token_id], trained=True)
                if codes is None
                else adapter.image_segment([int(c) for c in codes])
            )
        except ValueError as err:
            raise ValueError(f"row {index}, column `image_tokens`: {err}") from None

        if self.max_length is not None:
            overflow = len(prompt) + len(reasoning) + len(tail) - self.max_length
            if overflow > 0:
                if not self.truncate_reasoning or overflow > len(reasoning):
                    what = "even with no reasoning " if self.truncate_reasoning else ""
                    raise ValueError(
                        f"row {index}: the sequence is {len(prompt) + len(reasoning) + len(tail)} tokens, {what}longer "
                        f"than max_length={self.max_length} (prompt {len(prompt)}, reasoning {len(reasoning)}, "
                        f"image/end {len(tail)}); raise max_length"
                        + ("" if self.truncate_reasoning else " or set truncate_reasoning=True")
                    )
                reasoning = list(reasoning)[: len(reasoning) - overflow]
        return Segment.text(prompt, trained=False) + Segment.text(reasoning, trained=True) + tail

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        segments = [self.encode_row(row, row.get("row_index", i)) for i, row in enumerate(rows)]
        length = max(len(s) for s in segments)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of

        def padded(values: list[list[int]], fill: int) -> torch.Tensor:
            return torch.tensor([v + [fill] * (length - len(v)) for v in values], dtype=torch.long)

        labels = padded([s.labels for s in segments], IGNORE_INDEX)
        modality = padded([s.modality for s in segments], TEXT)
        weights = {m: torch.tensor([float(r.get(f"{m}_weight", 1.0)) for r in rows]) for m in ("text", "image")}
        # A modality with weight 0 is not trained at all: its tokens leave the loss *and* its normaliser, so that
        # zero weights (e.g. `filter`) equal removing those samples (SFT on the kept ones).
        for mod, name in ((TEXT, "text"), (IMAGE, "image")):
            labels[(modality == mod) & (weights[name] == 0)[:, None]] = IGNORE_INDEX
        return {
            "input_ids": padded([s.input_ids for s in segments], self.adapter.pad_token_id),
            "attention_mask": padded([[1] * len(s) for s in segments], 0),
            "labels": labels,
            "modality": modality,
            "text_weight": weights["text"],
            "image_weight": weights["image"],
        }
