"""VQAScore: ask a vision-language model whether the image shows the prompt and use its
probability of answering "Yes" as the reward (Lin et al., 2024).

Unlike CLIP similarity, a VQA model reads the whole prompt, so counts, attributes and spatial
relations move the score.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ._hf import answer_probability, chunks, first_token_id, load_judge, next_token_logits, to_model
from .base import score_present

DEFAULT_QUESTION = 'Does this image show "{prompt}"? Please answer yes or no.'


class VQAScoreReward:
    """Image reward: P(first answer token == ``answer``) given the image and the question.

    The question (``question_template.format(prompt=...)``) goes through the processor's chat
    template as one user turn holding the image then the text, with the generation prompt
    appended; without a chat template (or with ``use_chat_template=False``) the text is
    ``"<image token>\\n<question>\\nAnswer:"``. The score is the softmax probability, over the
    whole vocabulary, of the first token of ``answer`` at the next position, in [0, 1]. With
    ``normalize=True`` it is instead renormalised over the first tokens of ``answer`` and
    ``negative_answer``: P(yes) / (P(yes) + P(no)), which removes probability mass the model puts on
    formatting tokens. Samples without an image get ``None``.

    Loaded with ``AutoProcessor`` + ``AutoModelForImageTextToText`` (Llava, Qwen2-VL, Idefics3,
    SmolVLM, ...), or pass ready ``model`` and ``processor`` instances.
    """

    name = "vqa_score"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        question_template: str = DEFAULT_QUESTION,
        answer: str = "Yes",
        *,
        negative_answer: str = "No",
        normalize: bool = False,
        use_chat_template: bool | None = None,
        model: Any = None,
        processor: Any = None,
        device: str | torch.device | None = None,
        batch_size: int = 8,
        dtype: torch.dtype | None = None,
    ) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model, processor, self.device = load_judge(
            model_name_or_path, model, processor, AutoModelForImageTextToText, AutoProcessor, dtype, device
        )
        self.model = model
        self.processor = processor
        self.question_template = question_template
        self.normalize = normalize
        self.batch_size = int(batch_size)
        has_template = getattr(processor, "chat_template", None) is not None
        if use_chat_template and not has_template:
            raise ValueError("use_chat_template=True but the processor has no chat template")
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        tokenizer = processor.tokenizer
        self.answer_id = first_token_id(tokenizer, answer)
        self.negative_id = first_token_id(tokenizer, negative_answer) if normalize else None

    def build_text(self, prompt: str) -> str:
        """The model input text for one prompt (image placeholder included)."""
        question = self.question_template.format(prompt=prompt)
        if self.use_chat_template:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        image_token = getattr(self.processor, "image_token", None) or ""
        return f"{image_token}\n{question}\nAnswer:"

    @torch.no_grad()
    def yes_probability(self, prompts: list[str], images: list[Any]) -> list[float]:
        """Score aligned (prompt, image) pairs, all images present."""
        bos = getattr(self.processor.tokenizer, "bos_token", None)
        out: list[float] = []
        for idx in chunks(list(range(len(prompts))), self.batch_size):
            texts = [self.build_text(prompts[i]) for i in idx]
            inputs = self.processor(
                text=texts,
                images=[[images[i].convert("RGB")] for i in idx],
                return_tensors="pt",
                padding=True,
                padding_side="left",
                # Like ProcessorMixin.apply_chat_template: no second BOS if the template wrote one.
                add_special_tokens=not (bos and texts[0].startswith(bos)),
            )
            logits = next_token_logits(self.model, to_model(inputs, self.model, self.device))
            out.extend(answer_probability(logits, self.answer_id, self.negative_id, self.normalize).tolist())
        return out

    def __call__(
        self, prompts: list[str], reasoning: list[str], images: list[Any], **columns: Any
    ) -> list[float | None]:
        pairs = [None if image is None else (prompt, image) for prompt, image in zip(prompts, images)]
        return score_present(pairs, lambda present: self.yes_probability(*map(list, zip(*present))))
