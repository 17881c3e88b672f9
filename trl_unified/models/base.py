"""The adapter seam: everything that differs between unified model families lives behind this interface.

The trainer, the collator and the sampler only ever see

* an *interleaved sequence*: input ids, a modality id per position (``TEXT`` or ``IMAGE``) and a loss mask;
* per-token log-probabilities of the label tokens, computed by the family's own heads, and, in training, per-sample
  per-modality loss sums and counts (``ModalityLosses``) returned by the model's own forward
  (``install_training_forward``), so that every head runs inside the forward that DDP/DeepSpeed wrap.

Image positions carry a *code* (an index into the image codebook) as their label, whatever id the family feeds
the model at that position: Janus feeds the code itself to its generation embeddings, shared-vocabulary families
(Emu3, a plain causal LM) feed the vocabulary id of that code. Image log-probs are always a distribution over the
codebook, which is exactly what the sampler draws from in the image phase.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn
from transformers.utils import ModelOutput

TEXT = 0
IMAGE = 1
IGNORE_INDEX = -100


@dataclass
class Segment:
    """A piece of an interleaved sequence: model input ids, labels (-100 = no loss) and modality per position."""

    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    modality: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __add__(self, other: Segment) -> Segment:
        return Segment(self.input_ids + other.input_ids, self.labels + other.labels, self.modality + other.modality)

    @classmethod
    def text(cls, ids: Sequence[int], *, trained: bool) -> Segment:
        ids = list(ids)
        return cls(ids, ids if trained else [IGNORE_INDEX] * len(ids), [TEXT] * len(ids))


def gather_logps(logits: torch.Tensor, targets: torch.Tensor, chunk_rows: int = 4096) -> torch.Tensor:
    """``log_softmax(logits)[i, targets[i]]`` for flat ``[N, V]`` logits, in float32, a chunk of rows at a time.

    (TRL's ``selective_log_softmax`` loops over the leading dimension one row at a time: right for ``[B, T, V]``,
    a per-token Python loop for the flat positions used here.)
    """
    out = []
    for rows, index in zip(logits.split(chunk_rows), targets.split(chunk_rows)):
        rows = rows.float()
        out.append(rows.gather(-1, index.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(rows, dim=-1))
    return torch.cat(out) if out else logits.new_zeros(0, dtype=torch.float32)


@dataclass
class ModalityLosses(ModelOutput):
    """What the training forward returns: per sample and per modality (``[B, 2]``, columns ``TEXT``, ``IMAGE``),
    the summed loss (token families: summed negative log-likelihood) and how many units it sums (label tokens).

    A continuous family (flow matching) returns its summed per-token MSE and its token count in the same shape.
    """

    loss_sum: torch.Tensor | None = None
    count: torch.Tensor | None = None


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module that owns the heads and embeddings, under DDP/DeepSpeed/compile wrappers and PEFT."""
    from accelerate.utils import extract_model_from_parallel
    from transformers import PreTrainedModel

    # Fast path: a transformers model is never a DDP/DeepSpeed/torch.compile/PEFT wrapper, and accelerate would walk all
    # its submodules looking for compiled regions on every call (a quarter of a tiny model's decode step).
    if isinstance(model, PreTrainedModel):
        return model
    model = extract_model_from_parallel(model)
    get_base_model = getattr(model, "get_base_model", None)  # PEFT: LoRA layers are injected in place
    return get_base_model() if callable(get_base_model) else model


class UnifiedModelAdapter(ABC):
    """How one family of unified models reads and writes interleaved text+image sequences.

    Subclasses set ``family`` (the name users pass as ``model_adapter``) and ``model_class`` (used to load a model
    from a name or path and, by default, to recognise one), set ``boi_token_id``/``eoi_token_id`` when built,
    implement the abstract methods, and list their default LoRA targets and frozen parts. An adapter is built from a model (for its config) and its processing class (for its tokenizer).
    """

    family: ClassVar[str]
    model_class: ClassVar[Any]
    #: The Hub task of a model of this family (the model card's ``pipeline_tag``).
    pipeline_tag: ClassVar[str] = "text-to-image"
    #: Regex over module names: the language model's projections (never a vision tower or a VQ model).
    lora_target_modules: ClassVar[str]
    #: Begin-of-image: a text token, predicted by the text head (it *is* the switch from reasoning to image).
    boi_token_id: int
    #: End-of-image: forced after the codes, never trained on or sampled.
    eoi_token_id: int

    def __init__(self, model: nn.Module, processing_class: Any):
        self.processing_class = processing_class
        self.tokenizer = getattr(processing_class, "tokenizer", processing_class)
        if self.tokenizer is None:
            raise ValueError(f"The {self.family} adapter needs a tokenizer or processor (`processing_class`).")
        self.config = unwrap_model(model).config

    # ----- identification ------------------------------------------------------------------------------------------
    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        """Whether this adapter handles ``model``: by default, an instance of the family's model class."""
        return isinstance(unwrap_model(model), cls.model_class)

    # ----- vocabulary and layout -------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def num_image_tokens(self) -> int:
        """How many codes one image has."""

    @property
    @abstractmethod
    def codebook_size(self) -> int:
        """How many distinct image codes exist."""

    @property
    def eos_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eos_token_id if pad is None else pad

    def token_id(self, token: str, attribute: str | None = None) -> int:
        """The id of ``token`` (or of the tokenizer's ``attribute`` token, when it names one); a clear error if absent."""
        token = (getattr(self.tokenizer, attribute, None) if attribute else None) or token
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        unk = self.tokenizer.unk_token_id
        if token_id is None or (unk is not None and token_id == unk):
            raise ValueError(f"The {self.family} tokenizer has no token {token!r}.")
        return int(token_id)

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """Prompt text -> ids, with the family's BOS/prompt format. The sampler uses the very same ids."""
        return self.tokenizer(prompt, add_special_tokens=True)["input_ids"]

    def tokenize_text(self, text: str) -> list[int]:
        """Continuation text (reasoning) -> ids, without special tokens."""
        if not text:
            return []
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def image_input_id(self, code: int) -> int:
        """The id fed to the model at an image position holding ``code`` (shared vocabularies offset it)."""
        return code

    @abstractmethod
    def image_layout(self) -> list[int | None]:
        """What follows begin-of-image: ``None`` for each sampled code, a token id for each forced token.

        Forced tokens (row markers, size headers, end-of-image) are fed to the model but never trained on or sampled.
        """

    def image_segment(self, codes: Sequence[int]) -> Segment:
        """``[begin-of-image][codes with the family's forced markers][end-of-image]`` with labels and modalities."""
        layout = self.image_layout()
        slots = sum(1 for entry in layout if entry is None)
        if len(codes) != slots:
            raise ValueError(f"expected {slots} image codes, got {len(codes)}")
        outside = [int(c) for c in codes if not 0 <= int(c) < self.codebook_size]
        if outside:
            raise ValueError(f"image codes {outside[:5]} are outside the codebook [0, {self.codebook_size})")
        segment = Segment([self.boi_token_id], [self.boi_token_id], [TEXT])
        code_iter = iter(codes)
        for entry in layout:
            if entry is None:
                code = int(next(code_iter))
                segment += Segment([self.image_input_id(code)], [code], [IMAGE])
            else:
                segment += Segment([entry], [IGNORE_INDEX], [IMAGE])
        return segment

    def unconditional_ids(self, ids: Sequence[int]) -> list[int]:
        """The classifier-free-guidance row for a conditional context: every token but BOS/BOI becomes padding."""
        keep = {self.tokenizer.bos_token_id, self.boi_token_id}
        return [t if t in keep else self.pad_token_id for t in ids]

    # ----- model plumbing -------------------------------------------------------------------------------------------
    def input_embeddings(
        self, model: nn.Module, input_ids: torch.Tensor, modality: torch.Tensor
    ) -> torch.Tensor | None:
        """Input embeddings for an interleaved batch, or ``None`` when ``input_ids`` can be fed as they are."""
        return None

    @abstractmethod
    def text_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """Text-vocabulary logits from final hidden states ``[..., H]``."""

    @abstractmethod
    def image_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """Codebook logits ``[..., codebook_size]`` from final hidden states."""

    def forward_hidden(
        self,
        model: nn.Module,
        input_ids: torch.Tensor,
        modality: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        forward: Any = None,
        **kwargs: Any,
    ):
        """Run the backbone and return ``(last hidden states [B, T, H], model outputs)``.

        ``model`` is called as a whole (never a submodule) so DDP/DeepSpeed see a normal forward; inside the training
        forward (``forward``, the model's own forward) the backbone is called directly. ``logits_to_keep=1`` keeps the
        full-vocabulary head off all but one position, the heads are applied by the caller where needed. ``kwargs``
        (``past_key_values``, ``use_cache``, ``position_ids``) are passed through for the sampler.
        """
        embeds = self.input_embeddings(unwrap_model(model), input_ids, modality)
        inputs = {"input_ids": input_ids} if embeds is None else {"inputs_embeds": embeds}
        kwargs.setdefault("use_cache", False)
        outputs = (forward or model)(
            **inputs,
            attention_mask=attention_mask,
            output_hidden_states=True,
            logits_to_keep=1,
            return_dict=True,
            **kwargs,
        )
        return outputs.hidden_states[-1], outputs

    #: Rows of hidden states per head call: bounds the transient ``[rows, vocabulary]`` logits (a shared-vocabulary
    #: head is run over its whole vocabulary, then sliced; see ``SharedVocabularyAdapter.image_logits``).
    head_chunk_rows: ClassVar[int] = 1024

    def _head_logps(self, head: Any, core: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rows = self.head_chunk_rows
        return torch.cat([gather_logps(head(core, h), t) for h, t in zip(hidden.split(rows), targets.split(rows))])

    def token_logps(
        self,
        model: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        modality: torch.Tensor,
        labels: torch.Tensor,
        *,
        forward: Any = None,
    ) -> torch.Tensor:
        """Log-probability of each label under the model: ``[B, T-1]`` aligned with ``labels[:, 1:]``, 0 where no loss.

        Only positions with a label reach a head, so the full text vocabulary is never materialised for image
        positions (nor for the prompt). Every head runs on every call, as a module call: a head with no position to
        score runs on one position with a zero-weighted contribution, so each trained parameter takes part in every
        step (DDP's reducer, ZeRO's gradient partitions and the processes' collectives stay in step).
        """
        hidden, _ = self.forward_hidden(model, input_ids, modality, attention_mask, forward=forward)
        core = unwrap_model(model)
        hidden, targets, target_modality = hidden[:, :-1], labels[:, 1:], modality[:, 1:]
        # Zeros that stay on the graph: a batch with nothing to score (e.g. its only modality switched off) still
        # backpropagates, and every backbone parameter takes part in each step.
        logps = (hidden[..., 0] * 0).float()
        for mod, head in ((TEXT, self.text_logits), (IMAGE, self.image_logits)):
            where = (targets != IGNORE_INDEX) & (target_modality == mod)
            if where.any():
                logps = logps.index_put((where,), self._head_logps(head, core, hidden[where], targets[where]))
            else:
                logps = logps + 0 * head(core, hidden[:1, :1]).float().sum()
        return logps

    def modality_losses(
        self,
        model: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        modality: torch.Tensor,
        labels: torch.Tensor,
        *,
        forward: Any = None,
    ) -> ModalityLosses:
        """Per sample and per modality: summed negative log-likelihood of the label tokens and their count.

        This is what the training forward returns (see ``install_training_forward``); the trainer weights it by the
        rewards. A continuous-image family overrides it (e.g. summed per-token flow-matching MSE for its images).
        """
        logps = self.token_logps(model, input_ids, attention_mask, modality, labels, forward=forward)
        targets, target_modality = labels[:, 1:], modality[:, 1:]
        masks = [((targets != IGNORE_INDEX) & (target_modality == mod)).to(logps) for mod in (TEXT, IMAGE)]
        loss_sum = torch.stack([-(logps * mask).sum(dim=1) for mask in masks], dim=1)
        return ModalityLosses(loss_sum=loss_sum, count=torch.stack([mask.sum(dim=1) for mask in masks], dim=1))

    # ----- sampling ---------------------------------------------------------------------------------------------------
    def sampling_backbone(self, model: nn.Module) -> nn.Module:
        """The module the sampler steps: the language model without any head (``last_hidden_state`` post-norm).

        Sampling draws from one head per position (text or image), so the full-vocabulary head of ``model.forward``
        would be wasted work at every step. The default is ``get_decoder()`` (right for Janus, Emu3 and causal LMs).
        """
        return unwrap_model(model).get_decoder()

    def sampling_heads(self, model: nn.Module) -> tuple[Callable, Callable]:
        """``(text_head, image_head)``: hidden ``[N, H]`` -> text / codebook logits, built once per sampling call."""
        core = unwrap_model(model)
        return partial(self.text_logits, core), partial(self.image_logits, core)

    def text_blocked_ids(self) -> list[int]:
        """Ids the text phase never draws: the image layout's special/added tokens (row markers, end-of-image...).

        End-of-sequence and begin-of-image stay allowed (they end the text); plain-text forced tokens (Emu3's size
        header) too. Shared-vocabulary families add their image codes.
        """
        special = set(self.tokenizer.all_special_ids) | set(getattr(self.tokenizer, "added_tokens_decoder", {}))
        keep = {self.eos_token_id, self.boi_token_id}
        return sorted({int(t) for t in self.image_layout() if t is not None and t in special and t not in keep})

    # ----- images ----------------------------------------------------------------------------------------------------
    @abstractmethod
    def encode_images(self, model: nn.Module, images: Sequence[Any]) -> torch.Tensor:
        """PIL images -> codes ``[N, num_image_tokens]`` (with the family's image tokenizer)."""

    @abstractmethod
    def decode_images(self, model: nn.Module, codes: torch.Tensor) -> list[Any]:
        """Codes ``[N, num_image_tokens]`` -> PIL images."""

    # ----- fine-tuning -----------------------------------------------------------------------------------------------
    def frozen_modules(self, model: nn.Module) -> list[nn.Module]:
        """Parts that are never trained (VQ models, vision towers)."""
        return []


def _training_forward(self: nn.Module, *args: Any, modality: torch.Tensor | None = None, **kwargs: Any) -> Any:
    """The model's forward in training (see ``install_training_forward``): bound to the model as its ``forward``."""
    forward = self.__dict__["_unified_model_forward"]
    if modality is None:
        return forward(*args, **kwargs)
    adapter = self.__dict__["_unified_adapter"]
    return adapter.modality_losses(
        self, kwargs["input_ids"], kwargs.get("attention_mask"), modality, kwargs["labels"], forward=forward
    )


def install_training_forward(model: nn.Module, adapter: UnifiedModelAdapter) -> nn.Module:
    """Extend ``model.forward`` with the adapter's heads; returns ``model``. Idempotent.

    Called with ``modality=`` (a collator batch: ``input_ids``, ``attention_mask``, ``labels``, ``modality``), the
    forward runs the backbone *and every head* and returns ``ModalityLosses``; called without, it is the model's own
    forward.

    Why: DDP and DeepSpeed only see what runs inside the forward they wrap. A head applied to the unwrapped model after
    the forward escapes DDP's reducer ("marked as ready twice", or a hang when a micro-batch leaves it unused), meets
    empty ZeRO-3 partitions, and a direct read of a head's weight bypasses a LoRA layer on it. Replacing the
    instance's ``forward`` with a bound method (as accelerate does for mixed precision, and compatible with its
    unwrapping) keeps the model itself: its state-dict keys, ``save_pretrained``, PEFT and resumption are untouched.
    The original forward and the adapter live on the instance, so a deep copy of the model computes with its own
    weights.
    """
    from types import MethodType

    if "_unified_model_forward" not in model.__dict__:
        model.__dict__["_unified_model_forward"] = model.forward
    model.__dict__["_unified_adapter"] = adapter
    model.forward = MethodType(_training_forward, model)
    return model
