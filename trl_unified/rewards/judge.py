"""LM-judge reward for the text half of a unified model's output: is the reasoning (the plan
written before the image) a faithful, correct plan for the prompt?

Scored as the judge's probability of answering "Yes" rather than a sampled verdict, so the
reward is smooth and deterministic.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ._hf import answer_probability, chunks, first_token_id, load_judge, next_token_logits, to_model
from .base import score_present

DEFAULT_JUDGE_TEMPLATE = (
    "You are checking the plan a model wrote before drawing an image.\n"
    "Image request: {prompt}\n"
    "Plan: {reasoning}\n"
    "Is the plan a faithful and correct plan for drawing exactly what the request asks for? "
    "Answer Yes or No."
)


class ReasoningFaithfulnessReward:
    """Text reward: P(judge's first answer token == ``answer``) for ``template.format(prompt=...,
    reasoning=...)``.

    The question goes through the tokenizer's chat template as one user turn with the generation
    prompt appended; without a chat template (or ``use_chat_template=False``) the text is
    ``"<question>\\nAnswer:"``. The score is the next-token softmax probability of the first token of
    ``answer`` in [0, 1], or with ``normalize=True`` P(yes) / (P(yes) + P(no)). Samples whose
    reasoning is ``None`` get ``None``.

    Loaded with ``AutoModelForCausalLM`` + ``AutoTokenizer``, or pass ``model`` and ``tokenizer``.
    """

    name = "reasoning_faithfulness"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        template: str = DEFAULT_JUDGE_TEMPLATE,
        answer: str = "Yes",
        *,
        negative_answer: str = "No",
        normalize: bool = False,
        use_chat_template: bool | None = None,
        model: Any = None,
        tokenizer: Any = None,
        device: str | torch.device | None = None,
        batch_size: int = 8,
        dtype: torch.dtype | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tokenizer, self.device = load_judge(
            model_name_or_path, model, tokenizer, AutoModelForCausalLM, AutoTokenizer, dtype, device
        )
        if tokenizer.pad_token is None:
            # Left padding is masked out, so any token will do; causal-LM tokenizers often lack one.
            tokenizer.pad_token = tokenizer.eos_token
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.normalize = normalize
        self.batch_size = int(batch_size)
        has_template = getattr(tokenizer, "chat_template", None) is not None
        if use_chat_template and not has_template:
            raise ValueError("use_chat_template=True but the tokenizer has no chat template")
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        self.answer_id = first_token_id(tokenizer, answer)
        self.negative_id = first_token_id(tokenizer, negative_answer) if normalize else None

    def build_text(self, prompt: str, reasoning: str) -> str:
        """The judge's input text for one sample."""
        question = self.template.format(prompt=prompt, reasoning=reasoning)
        if self.use_chat_template:
            messages = [{"role": "user", "content": question}]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return f"{question}\nAnswer:"

    @torch.no_grad()
    def yes_probability(self, prompts: list[str], reasoning: list[str]) -> list[float]:
        """Score aligned (prompt, reasoning) pairs."""
        out: list[float] = []
        for idx in chunks(list(range(len(prompts))), self.batch_size):
            texts = [self.build_text(prompts[i], reasoning[i]) for i in idx]
            inputs = self.tokenizer(
                texts,
                return_tensors="pt",
                padding=True,
                padding_side="left",
                # A chat template writes its own special tokens.
                add_special_tokens=not self.use_chat_template,
            )
            logits = next_token_logits(self.model, to_model(inputs, self.model, self.device))
            out.extend(answer_probability(logits, self.answer_id, self.negative_id, self.normalize).tolist())
        return out

    def __call__(
        self, prompts: list[str], reasoning: list[str], images: list[Any], **columns: Any
    ) -> list[float | None]:
        pairs = [None if text is None else (prompt, text) for prompt, text in zip(prompts, reasoning)]
        return score_present(pairs, lambda present: self.yes_probability(*map(list, zip(*present))))
