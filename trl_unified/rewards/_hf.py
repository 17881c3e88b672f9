"""Plumbing shared by the transformers-backed rewards: device choice, input placement and the
"probability that the model answers X next" read-out used by VQAScore and the judge."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import torch


def load_judge(
    model_name_or_path: Any, model: Any, processor: Any, model_class: Any, processor_class: Any, dtype: Any, device: Any
) -> tuple[Any, Any, torch.device]:
    """A reward's model and processor: loaded from ``model_name_or_path``, or given ready (both, not one); in eval
    mode on the chosen device."""
    if (model is None) != (processor is None) or (model is None) == (model_name_or_path is None):
        raise ValueError("pass either model_name_or_path, or both a model and its processor/tokenizer")
    if model is None:
        from ..models.sharding import loading_whole_models

        kwargs = {"dtype": dtype} if dtype is not None else {}
        with loading_whole_models():  # a frozen judge is whole on every process, also under ZeRO-3
            model = model_class.from_pretrained(model_name_or_path, **kwargs)
        processor = processor_class.from_pretrained(model_name_or_path)
    device = pick_device(device, model)
    return model.to(device).eval(), processor, device


def pick_device(device: str | torch.device | None, model: torch.nn.Module | None = None) -> torch.device:
    """An explicit device wins; else a given model stays where it is; else CUDA when available."""
    if device is not None:
        return torch.device(device)
    if model is not None:
        try:
            return next(model.parameters()).device
        except StopIteration:
            pass
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_model(inputs: Mapping[str, Any], model: torch.nn.Module, device: torch.device) -> dict[str, Any]:
    """Move tensors to ``device``; floating tensors (pixel values) also take the model's dtype."""
    dtype = getattr(model, "dtype", None)
    moved = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
        moved[key] = value
    return moved


def chunks(indices: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def first_token_id(tokenizer: Any, text: str) -> int:
    """Id of the first token of ``text`` as the tokenizer splits it on its own (no special tokens).

    Whether a leading space belongs to the answer token depends on the tokenizer, so callers can
    pass e.g. ``" Yes"`` when the model's answer after the prompt starts with a space.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"answer {text!r} tokenizes to no tokens")
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and ids[0] == unk:
        raise ValueError(f"answer {text!r} starts with the unknown token; it is not in the vocabulary")
    return int(ids[0])


def next_token_logits(model: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
    """Logits for the token after the last input position, shape ``(batch, vocab)``.

    Inputs must be left-padded so the last position is every row's last real token. Models that
    support ``logits_to_keep`` compute the vocabulary projection for that position only.
    """
    if "logits_to_keep" in inspect.signature(model.forward).parameters:
        inputs = {**inputs, "logits_to_keep": 1}
    logits = model(**inputs).logits
    return logits[:, -1, :].float()


def answer_probability(
    logits: torch.Tensor, answer_id: int, negative_id: int | None = None, normalize: bool = False
) -> torch.Tensor:
    """P(answer) from next-token logits: softmax over the whole vocabulary, or, with
    ``normalize``, renormalised over just {answer, negative} (P(yes) / (P(yes) + P(no)))."""
    if normalize:
        if negative_id is None:
            raise ValueError("normalize=True needs a negative answer token")
        pair = logits[:, [answer_id, negative_id]]
        return pair.softmax(dim=-1)[:, 0]
    return logits.softmax(dim=-1)[:, answer_id]
