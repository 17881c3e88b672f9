"""One sampler for every unified model family: ``[prompt][reasoning]<begin-of-image>[image]`` samples, batched.

Everything family-specific comes from the :class:`~trl_unified.models.base.UnifiedModelAdapter`: the prompt format
(``tokenize_prompt``), the switch token (``boi_token_id``), the image layout (``image_layout()``: sampled code slots
and forced tokens), how a code is fed (``image_input_id`` / ``input_embeddings``), the two heads (``text_logits``,
``image_logits``), the classifier-free-guidance row (``unconditional_ids``) and decoding (``decode_images``). Nothing
here looks at the model's type.

How a batch of samples is made (``rows = prompts x num_samples``, prompt-major, ``config.batch_size`` at a time): in
ONE pass per sample over one KV cache (:mod:`.one_pass`). The prompt is prefilled once; each row then runs on its
own clock:

* **Text** (modes ``unified`` and ``staged``): one token per step from the text head (temperature/top-k/top-p),
  image codes and layout tokens masked (``adapter.text_blocked_ids``), until the row stops:

  * ``unified``: the row stops when the model emits begin-of-image by itself (``switched=True``); at end-of-sequence
    or when ``max_text_tokens`` run out, begin-of-image is forced (``forced_switch=True``). EOS is not kept.
  * ``staged`` (the classic two-stage pipeline): text until EOS, begin-of-image or the budget (neither token kept),
    then begin-of-image is started by hand (``switched=False``, ``forced_switch=False``).
  * ``image_only``: no text; begin-of-image follows the prompt (in the prefill).

* **Image**: the row feeds begin-of-image and the forced tokens that open ``image_layout()`` (e.g. Emu3's size
  header) into its cache at once, while other rows may still write; with guidance its ``adapter.unconditional_ids``
  row joins the batch then, with its own prefill. One code per step, drawn from the image head after CFG
  ``uncond + scale * (cond - uncond)`` (logit space, as transformers) and the image temperature/top-k/top-p; the
  forced tokens that follow a code (e.g. an end-of-line marker) are fed with it; those that close the layout are
  never fed (nothing is sampled after them).

Every forward gets explicit ``position_ids`` from the attention mask (``cumsum - 1``), so a left-padded row sees the
positions it would see alone.

Random numbers (``SamplingConfig.rng``):

* ``"row"`` (default): every sample has its own ``torch.Generator`` seeded from ``(seed, prompt_index,
  sample_index)`` (:func:`row_seed`) and draws from it alone. A sample then does not depend on the other rows of its
  batch: ``batch_size`` and padding do not change results (up to float rounding of padded matmuls: exact in fp32
  in the tests, a few samples in a hundred differ in bf16; see ``docs/self_generation.md``).
* ``"batch"``: one generator seeded with ``seed`` for the whole call, one ``torch.multinomial`` per step over the
  batch's conditional rows -- transformers' own draws. With the same seed (``torch.manual_seed(seed)`` before
  ``generate``) and the whole request in one batch, image tokens equal ``JanusForConditionalGeneration.generate(...,
  generation_mode="image")`` and Emu3's constrained ``generate`` with guidance token for token (see the tests). To
  get there the draws also match transformers' bookkeeping: codes are drawn in the columns transformers draws them
  from (shared-vocabulary families: the full vocabulary, at the codes' ids; see ``logits.DrawSpace``) and every
  forced token *between* sampled codes uses the random numbers of one draw, as ``generate`` still samples a token
  that ``prefix_allowed_tokens_fn`` has decided. (``"row"`` draws codes over the codebook and skips no numbers.)

Temperature 0 is greedy (argmax; no random numbers used).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..models.base import TEXT, UnifiedModelAdapter, unwrap_model
from ..models.sharding import gathers_parameters
from .one_pass import OnePassSampler, Rng
from .seeds import stable_seed

MODES = ("unified", "staged", "image_only")
RNG_MODES = ("row", "batch")


@dataclass
class SamplingConfig:
    """How :func:`generate_samples` samples; see the module docstring for the modes and the random numbers."""

    mode: str = field(
        default="unified",
        metadata={
            "help": "`unified`: reasoning until the model emits begin-of-image itself (forced at EOS or when the text "
            "budget runs out); `staged`: reasoning until EOS/begin-of-image/budget, then begin-of-image by hand; "
            "`image_only`: begin-of-image right after the prompt.",
            "choices": list(MODES),
        },
    )
    max_text_tokens: int = field(
        default=256, metadata={"help": "Most reasoning tokens sampled per sample (0: none, switch at once)."}
    )
    temperature: float = field(default=1.0, metadata={"help": "Text sampling temperature; 0 = greedy (argmax)."})
    top_k: int | None = field(default=None, metadata={"help": "Text top-k filtering (None or 0: off)."})
    top_p: float | None = field(default=1.0, metadata={"help": "Text nucleus (top-p) filtering (1.0 or None: off)."})
    image_temperature: float = field(
        default=1.0, metadata={"help": "Image-code sampling temperature (after guidance); 0 = greedy (argmax)."}
    )
    image_top_k: int | None = field(default=None, metadata={"help": "Image-code top-k filtering (None or 0: off)."})
    image_top_p: float | None = field(
        default=1.0, metadata={"help": "Image-code nucleus (top-p) filtering (1.0 or None: off)."}
    )
    guidance_scale: float | None = field(
        default=5.0,
        metadata={
            "help": "Classifier-free guidance on image positions: uncond + scale * (cond - uncond) in logit space. "
            "1.0 or None: no guidance and no unconditional rows (half the image-phase compute)."
        },
    )
    batch_size: int = field(
        default=16,
        metadata={
            "help": "Samples per forward batch (prompts x samples are cut into chunks of this many rows; with "
            "guidance the image-phase forwards hold twice as many rows: conditional + unconditional)."
        },
    )
    seed: int | None = field(
        default=0,
        metadata={
            "help": "Seed of the sampler's own generators (the global RNG is untouched). None: draw one "
            "from torch's global RNG (reproducible under torch.manual_seed)."
        },
    )
    rng: str = field(
        default="row",
        metadata={
            "help": "`row`: one generator per sample, seeded from (seed, prompt_index, sample_index): results do not "
            "depend on batching; `batch`: one generator and one multinomial per step over the batch, exactly like "
            "transformers' generate (token-for-token equal to it for the same seed and batch).",
            "choices": list(RNG_MODES),
        },
    )
    decode_images: bool = field(
        default=True, metadata={"help": "Decode the codes into PIL images with the adapter (`Sample.image`)."}
    )

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {RNG_MODES}, got {self.rng!r}")
        if self.max_text_tokens < 0:
            raise ValueError(f"max_text_tokens must be >= 0, got {self.max_text_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("temperature", "image_temperature"):
            value = getattr(self, name)
            if value is None or not value >= 0 or math.isinf(value):
                raise ValueError(f"{name} must be a finite number >= 0 (0 = greedy), got {value}")
        for name in ("top_k", "image_top_k"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 (0 or None: off), got {value}")
        for name in ("top_p", "image_top_p"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1] (1 or None: off), got {value}")
        if self.guidance_scale is not None and not math.isfinite(self.guidance_scale):
            raise ValueError(f"guidance_scale must be finite, got {self.guidance_scale}")

    @property
    def guided(self) -> bool:
        """Whether the image phase runs unconditional rows (guidance scale set and not 1)."""
        return self.guidance_scale is not None and self.guidance_scale != 1


@dataclass
class Sample:
    """One sampled ``[prompt][reasoning]<begin-of-image>[image]`` sequence."""

    prompt_index: int
    sample_index: int
    prompt: str
    #: The prompt as the sampler fed it (``adapter.tokenize_prompt``).
    prompt_ids: list[int]
    #: Sampled reasoning tokens (no EOS, no begin-of-image).
    reasoning_ids: list[int]
    #: ``reasoning_ids`` decoded, special tokens skipped.
    reasoning: str
    #: The image's codes (``adapter.num_image_tokens`` of them, in ``[0, adapter.codebook_size)``).
    image_tokens: list[int]
    #: ``adapter.decode_images`` of the codes (a PIL image), or ``None`` with ``decode_images=False``.
    image: Any
    mode: str
    #: The model emitted begin-of-image by itself (unified mode only).
    switched: bool
    #: Unified mode: begin-of-image was forced because the model emitted EOS or the text budget ran out.
    forced_switch: bool
    #: The whole interleaved sequence: ``prompt_ids + reasoning_ids + adapter.image_segment(image_tokens).input_ids``.
    input_ids: list[int]
    #: ``TEXT``/``IMAGE`` per position of ``input_ids`` (as ``image_segment`` marks them).
    modality: list[int]

    def to_row(self) -> dict[str, Any]:
        """The dataset row the collator/trainer reads (``prompt_id`` groups the samples of one prompt)."""
        row = {k: v for k, v in asdict(self).items() if k not in ("image", "input_ids", "modality")}
        row["prompt_id"] = self.prompt_index
        return row


def switch_rate(samples: Sequence[Sample]) -> float:
    """Fraction of unified-mode samples in which the model emitted begin-of-image by itself (NaN if there are none)."""
    unified = [s for s in samples if s.mode == "unified"]
    if not unified:
        return float("nan")
    return sum(s.switched for s in unified) / len(unified)


def row_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """The seed of one sample's generator in ``rng="row"`` mode (a hash: neighbouring rows get unrelated streams)."""
    return stable_seed(seed, prompt_index, sample_index)


@gathers_parameters  # ZeRO-3: whole parameters, gathered once on every process
def generate_samples(
    model: nn.Module,
    adapter: UnifiedModelAdapter,
    prompts: Sequence[str],
    num_samples: int = 1,
    config: SamplingConfig | None = None,
    progress: bool = True,
    prompt_seeds: Sequence[int] | None = None,
) -> list[Sample]:
    """Sample ``num_samples`` sequences per prompt (see the module docstring); returns them prompt-major.

    ``prompt_seeds`` (``rng="row"`` only) gives each prompt its own seed: its samples are then exactly those of a
    call with that prompt alone and ``config.seed`` set to its seed, so callers can batch many prompts without
    tying any sample to its batch (self-generation seeds per prompt this way).

    Runs under ``torch.no_grad()`` in ``eval()`` mode (the model's previous mode is restored afterwards). The
    sampler's generators are its own: the global RNG is not used (unless ``config.seed`` is None) nor changed.
    """
    config = config or SamplingConfig()
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    core = unwrap_model(model)
    device = next(core.parameters()).device
    prompt_ids = [list(adapter.tokenize_prompt(p)) for p in prompts]
    jobs = [(p, s) for p in range(len(prompts)) for s in range(num_samples)]
    seed = config.seed if config.seed is not None else int(torch.randint(0, 2**62, ()).item())
    batch_generator = torch.Generator(device).manual_seed(seed) if config.rng == "batch" else None
    if prompt_seeds is not None and (config.rng != "row" or len(prompt_seeds) != len(prompts)):
        raise ValueError("prompt_seeds needs rng='row' and one seed per prompt")

    def job_seed(p: int, s: int) -> int:
        return row_seed(seed, p, s) if prompt_seeds is None else row_seed(int(prompt_seeds[p]), 0, s)

    sampler = OnePassSampler(model, adapter, config, device)

    from tqdm.auto import tqdm

    samples: list[Sample] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), tqdm(total=len(jobs), disable=not progress, desc=f"sampling ({config.mode})") as bar:
            for start in range(0, len(jobs), config.batch_size):
                chunk = jobs[start : start + config.batch_size]
                if batch_generator is not None:
                    rng = Rng(generator=batch_generator)
                else:
                    rng = Rng(generators=[torch.Generator(device).manual_seed(job_seed(*job)) for job in chunk])
                reasoning, switched, codes = sampler.sample([prompt_ids[p] for p, _ in chunk], rng)
                images = adapter.decode_images(model, codes) if config.decode_images else [None] * len(chunk)
                rows = zip(chunk, reasoning, switched, codes.tolist(), images)
                for (p, s), reason, did_switch, row_codes, image in rows:
                    segment = adapter.image_segment(row_codes)
                    text = prompt_ids[p] + reason
                    samples.append(
                        Sample(
                            prompt_index=p,
                            sample_index=s,
                            prompt=prompts[p],
                            prompt_ids=list(prompt_ids[p]),
                            reasoning_ids=reason,
                            reasoning=adapter.tokenizer.decode(reason, skip_special_tokens=True) if reason else "",
                            image_tokens=row_codes,
                            image=image,
                            mode=config.mode,
                            switched=did_switch,
                            forced_switch=config.mode == "unified" and not did_switch,
                            input_ids=text + segment.input_ids,
                            modality=[TEXT] * len(text) + segment.modality,
                        )
                    )
                bar.update(len(chunk))
    finally:
        model.train(was_training)
    return samples


__all__ = ["Sample", "SamplingConfig", "generate_samples", "row_seed", "switch_rate"]
