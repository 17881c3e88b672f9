"""The sampler on a tiny random causal LM (shared vocabulary): modes, switch flags, batching, seeds, logit maths."""

import pytest
import torch
from torch import nn
from transformers.generation.logits_process import (
    ClassifierFreeGuidanceLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from trl_unified.data.collator import DataCollatorForInterleavedSequences
from trl_unified.generation.logits import DrawSpace, draw, guide, skip_draw, warp
from trl_unified.generation.sampler import SamplingConfig, generate_samples, row_seed, switch_rate
from trl_unified.models.base import IMAGE, TEXT
from trl_unified.models.causal_lm import CausalLMAdapter
from trl_unified.testing.causal_lm import tiny_causal_lm

PROMPTS = ["draw a red dot", "blue square", "a green dot left of the blue square above"]  # 3 different lengths


@pytest.fixture(scope="module")
def lm():
    model, tokenizer = tiny_causal_lm(seed=0)
    return model, CausalLMAdapter(model, tokenizer)


def biased_lm(token: str, bias: float = 30.0):
    """The tiny LM with an lm_head bias that makes ``token`` (almost) always the next text token."""
    model, tokenizer = tiny_causal_lm(seed=0)
    old = model.get_output_embeddings()
    head = nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        head.bias[tokenizer.convert_tokens_to_ids(token)] = bias
    model.set_output_embeddings(head)
    return model, CausalLMAdapter(model, tokenizer)


def run(model, adapter, prompts=PROMPTS, num_samples=2, **config):
    config.setdefault("decode_images", False)
    return generate_samples(model, adapter, prompts, num_samples, SamplingConfig(**config), progress=False)


def key(samples):
    return [
        (s.prompt_index, s.sample_index, s.reasoning_ids, s.image_tokens, s.switched, s.forced_switch) for s in samples
    ]


# ----- structure ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["unified", "staged", "image_only"])
def test_sequences_are_prompt_reasoning_and_the_adapters_image_segment(lm, mode):
    model, adapter = lm
    samples = run(model, adapter, mode=mode, max_text_tokens=6, guidance_scale=3.0)
    collator = DataCollatorForInterleavedSequences(adapter)
    assert [(s.prompt_index, s.sample_index) for s in samples] == [(p, k) for p in range(3) for k in range(2)]
    for s in samples:
        assert s.mode == mode and s.prompt == PROMPTS[s.prompt_index]
        assert s.prompt_ids == adapter.tokenize_prompt(s.prompt)
        assert len(s.image_tokens) == adapter.num_image_tokens
        assert all(0 <= c < adapter.codebook_size for c in s.image_tokens)
        segment = adapter.image_segment(s.image_tokens)
        assert s.input_ids == s.prompt_ids + s.reasoning_ids + segment.input_ids
        assert s.modality == [TEXT] * (len(s.prompt_ids) + len(s.reasoning_ids)) + segment.modality
        assert s.input_ids[len(s.prompt_ids) + len(s.reasoning_ids)] == adapter.boi_token_id
        assert s.modality.count(IMAGE) == len(adapter.image_layout())
        # the trainer's collator rebuilds exactly the sampled sequence from the row
        assert collator.encode_row(s.to_row()).input_ids == s.input_ids
        assert s.to_row()["prompt_id"] == s.prompt_index
        assert len(s.reasoning_ids) <= 6
        assert adapter.boi_token_id not in s.reasoning_ids and adapter.eos_token_id not in s.reasoning_ids
        assert s.reasoning == adapter.tokenizer.decode(s.reasoning_ids, skip_special_tokens=True)
        if mode == "image_only":
            assert s.reasoning_ids == [] and s.reasoning == ""
        if mode != "unified":
            assert not s.switched and not s.forced_switch
        else:
            assert s.switched != s.forced_switch
    if mode != "image_only":
        assert any(s.reasoning_ids for s in samples)


def test_decoded_images_come_from_the_adapter():
    from trl_unified.shapes.palette import NUM_CODES, PALETTE

    model, tokenizer = tiny_causal_lm(
        seed=0, codebook_size=len(PALETTE), num_image_tokens=NUM_CODES, image_codec="shapes"
    )
    adapter = CausalLMAdapter(model, tokenizer)
    (sample,) = run(model, adapter, ["red dot"], 1, mode="image_only", decode_images=True)
    assert sample.image.size == adapter.decode_images(model, torch.tensor([sample.image_tokens]))[0].size
    assert list(sample.image.getdata()) == list(adapter.decode_images(model, [sample.image_tokens])[0].getdata())


# ----- switch flags ---------------------------------------------------------------------------------------------------
def test_model_that_emits_begin_of_image_switches_by_itself():
    model, adapter = biased_lm("<boi>")
    unified = run(model, adapter, mode="unified", max_text_tokens=8)
    assert all(s.switched and not s.forced_switch for s in unified)
    assert all(s.reasoning_ids == [] for s in unified)  # BOI is the first token; it is not reasoning
    assert switch_rate(unified) == 1.0
    staged = run(model, adapter, mode="staged", max_text_tokens=8)
    assert all(not s.switched and not s.forced_switch for s in staged)
    assert switch_rate(staged) != switch_rate(staged)  # NaN: no unified samples
    assert [s.input_ids for s in staged] == [s.input_ids for s in unified]  # same seed, same rows


def test_model_that_emits_eos_gets_begin_of_image_forced():
    model, adapter = biased_lm("<eos>")
    samples = run(model, adapter, mode="unified", max_text_tokens=8)
    assert all(s.forced_switch and not s.switched for s in samples)
    assert all(s.reasoning_ids == [] for s in samples)  # EOS is not kept
    assert switch_rate(samples) == 0.0
    assert all(s.input_ids[len(s.prompt_ids)] == adapter.boi_token_id for s in samples)


def test_begin_of_image_is_forced_when_the_text_budget_runs_out():
    model, adapter = biased_lm("red")
    red = adapter.tokenizer.convert_tokens_to_ids("red")
    for mode in ("unified", "staged"):
        samples = run(model, adapter, mode=mode, max_text_tokens=5)
        assert all(s.reasoning_ids == [red] * 5 for s in samples)
        assert all(s.forced_switch == (mode == "unified") and not s.switched for s in samples)
    samples = run(model, adapter, mode="unified", max_text_tokens=0)
    assert all(s.reasoning_ids == [] and s.forced_switch for s in samples)


# ----- batching and seeds ---------------------------------------------------------------------------------------------
def test_padded_batches_equal_one_prompt_at_a_time_with_per_row_generators(lm):
    """``rng="row"``: each sample draws from its own generator, so a left-padded batch of 6 rows (3 prompt lengths,
    reasoning of different lengths, guidance rows) gives what each row gives alone (``batch_size=1``, no padding)."""
    model, adapter = lm
    config = {"mode": "unified", "max_text_tokens": 8, "guidance_scale": 3.0, "rng": "row", "seed": 5}
    batched = run(model, adapter, batch_size=6, **config)
    alone = run(model, adapter, batch_size=1, **config)
    assert key(batched) == key(alone)
    assert len({len(s.reasoning_ids) for s in batched}) > 1  # the image phase really was left-padded
    assert key(run(model, adapter, batch_size=4, **config)) == key(alone)


def test_padded_batches_equal_one_prompt_at_a_time_greedy(lm):
    """Greedy (temperature 0 for text and image) is batch-independent whatever the RNG mode."""
    model, adapter = lm
    config = {"mode": "staged", "max_text_tokens": 6, "temperature": 0.0, "image_temperature": 0.0, "rng": "batch"}
    batched = run(model, adapter, num_samples=1, batch_size=3, **config)
    alone = run(model, adapter, num_samples=1, batch_size=1, **config)
    assert key(batched) == key(alone)


@pytest.mark.parametrize("rng", ["row", "batch"])
def test_same_seed_same_samples_other_seed_other_samples(lm, rng):
    model, adapter = lm
    state = torch.get_rng_state()
    first = run(model, adapter, mode="unified", max_text_tokens=6, seed=11, rng=rng)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is neither used nor moved
    assert key(run(model, adapter, mode="unified", max_text_tokens=6, seed=11, rng=rng)) == key(first)
    other = run(model, adapter, mode="unified", max_text_tokens=6, seed=12, rng=rng)
    assert [s.image_tokens for s in other] != [s.image_tokens for s in first]
    # samples of one prompt differ from each other
    assert first[0].image_tokens != first[1].image_tokens


def test_eval_mode_and_no_grad_then_training_mode_restored(lm):
    model, adapter = lm
    model.train()
    seen = []
    hook = adapter.sampling_backbone(model).register_forward_hook(
        lambda module, args, out: seen.append((module.training, torch.is_grad_enabled()))
    )
    try:
        run(model, adapter, ["red dot"], 1, mode="unified", max_text_tokens=2)
    finally:
        hook.remove()
    assert seen and all(not training and not grad for training, grad in seen)
    assert model.training
    model.eval()


def test_row_seeds_are_distinct_and_stable():
    seeds = {row_seed(0, p, k) for p in range(20) for k in range(20)}
    assert len(seeds) == 400 and row_seed(3, 1, 2) == row_seed(3, 1, 2) != row_seed(4, 1, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "interleaved"},
        {"rng": "global"},
        {"batch_size": 0},
        {"max_text_tokens": -1},
        {"temperature": -1.0},
        {"image_top_p": 0.0},
        {"top_k": -2},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        SamplingConfig(**kwargs)


def test_guidance_of_one_or_none_means_no_unconditional_rows(lm):
    model, adapter = lm
    assert not SamplingConfig(guidance_scale=1.0).guided and not SamplingConfig(guidance_scale=None).guided
    rows = []
    hook = adapter.sampling_backbone(model).register_forward_hook(
        lambda module, args, kwargs, out: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        run(model, adapter, ["red dot"], 3, mode="image_only", guidance_scale=None)
        assert set(rows) == {3}
        rows.clear()
        run(model, adapter, ["red dot"], 3, mode="image_only", guidance_scale=2.0)
        assert set(rows) == {6}
        # one prefill + one forward per code after the first (the closing end-of-image is never fed)
        assert len(rows) == adapter.num_image_tokens
    finally:
        hook.remove()


# ----- logit maths ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, 1.0), (0.7, 5, 1.0), (1.3, None, 0.8), (0.5, 3, 0.6)])
def test_warp_is_transformers_warpers_in_transformers_order(temperature, top_k, top_p):
    scores = torch.randn(4, 40, generator=torch.Generator().manual_seed(0)) * 3
    expected = scores
    if temperature != 1.0:
        expected = TemperatureLogitsWarper(temperature)(None, expected)
    if top_k:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1.0:
        expected = TopPLogitsWarper(top_p)(None, expected)
    assert torch.equal(warp(scores, temperature, top_k, top_p), expected)


def test_guidance_is_transformers_cfg_processor():
    scores = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    expected = ClassifierFreeGuidanceLogitsProcessor(4.0)(torch.zeros(3, 1, dtype=torch.long), scores)
    assert torch.equal(guide(scores[:3], scores[3:], 4.0), expected)


def test_draw_space_places_candidates_in_their_columns_and_skip_draw_uses_a_draws_numbers():
    scores = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
    columns = torch.tensor([7, 2, 9, 5])
    space = DrawSpace(12, columns)
    probs = torch.zeros(3, 12)
    probs[:, columns] = torch.softmax(scores, -1)
    expected = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(3)).squeeze(-1)
    got = draw(scores, generator=torch.Generator().manual_seed(3), space=space)
    assert torch.equal(columns[got], expected)
    # skipping a draw leaves the generator where the draw would have
    a, b = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    torch.multinomial(probs, 1, generator=a)
    skip_draw(3, space, generator=b)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    # greedy uses no random numbers
    assert torch.equal(draw(scores, temperature=0.0), scores.argmax(-1))


# ----- one pass -------------------------------------------------------------------------------------------------------
def record_forwards(adapter, model):
    """Hook the sampler's backbone: per forward, (whether the cache was empty, real tokens fed per lane)."""
    calls = []

    def hook(module, args, kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        inputs = kwargs.get("input_ids", kwargs.get("inputs_embeds"))
        new = kwargs["attention_mask"][:, -inputs.shape[1] :]
        calls.append((cache.get_seq_length() == 0, new.sum(-1).tolist()))

    return calls, adapter.sampling_backbone(model).register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("family", ["causal_lm", "emu3"])
def test_one_pass_each_sample_is_prefilled_once_and_its_guidance_row_once(lm, family):
    """Every token of a sample reaches the model exactly once: the prompt in one prefill, then one step per reasoning
    token, ``[BOI] + lead`` at the switch and the image's codes (with their forced tokens); the guidance row joins
    at the switch with one prefill of its own. No lane ever idles in a forward (rows do not wait for each other)."""
    if family == "emu3":
        from trl_unified.models.emu3 import Emu3Adapter
        from trl_unified.testing.emu3 import tiny_emu3

        model, processor = tiny_emu3(seed=0)
        adapter = Emu3Adapter(model, processor)
        prompts = ["red", "a blue square at the top left", "two dots"]
    else:
        (model, adapter), prompts = lm, PROMPTS
    calls, handle = record_forwards(adapter, model)
    try:
        samples = run(model, adapter, prompts, 2, mode="unified", max_text_tokens=6, guidance_scale=3.0, batch_size=6)
    finally:
        handle.remove()
    layout = adapter.image_layout()
    last_slot = max(i for i, entry in enumerate(layout) if entry is None)
    image_fed = len(layout[:last_slot])  # lead, codes and their forced tokens, up to (not including) the last code
    expected = 0
    for s in samples:
        uncond = adapter.unconditional_ids(s.prompt_ids + s.reasoning_ids + [adapter.boi_token_id])
        expected += len(s.prompt_ids) + len(s.reasoning_ids) + 1 + image_fed  # conditional lane
        expected += len(uncond) + image_fed  # guidance lane
    assert sum(sum(fed) for _, fed in calls) == expected
    prefills = [fed for fresh, fed in calls if fresh]
    assert sum(len(fed) for fed in prefills) == 2 * len(samples)  # 1 per sample + 1 per guidance row
    assert len(prefills[0]) == len(samples)  # the first forward prefills the prompts only
    assert all(min(fed) >= 1 for _, fed in calls)  # no lane waits
    lengths = [len(s.reasoning_ids) for s in samples]
    if family == "causal_lm":
        assert len(set(lengths)) > 1  # rows switched at different steps ...
    if family == "causal_lm":  # ... and nobody waited: a row draws its first code as soon as it has fed BOI (one
        # step after drawing it; two after the budget's last token, fed first), then one code per step
        first_code = [n + 1 if n < 6 else 7 for n in lengths]
        steps = [fed for fresh, fed in calls if not fresh] + prefills[:1]
        assert len(steps) == max(first_code) + adapter.num_image_tokens


# ----- reproducibility ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reproducibility_on_the_shapes_model(dtype):
    """What docs/self_generation.md promises: the same settings give the same samples (fp32 and bf16); in fp32 the
    batch size does not change them either (rows are left-padded, lanes join and leave the batch at other steps)."""
    import dataclasses

    from trl_unified.models.registry import get_adapter
    from trl_unified.shapes.demo import default_eval_prompts
    from trl_unified.shapes.model import load_shapes_model

    model, tokenizer = load_shapes_model(None)
    model = model.to(dtype)
    adapter = get_adapter(model, tokenizer)
    prompts = default_eval_prompts(8, 0)[:12]
    config = SamplingConfig(
        mode="unified", max_text_tokens=48, guidance_scale=3.0, batch_size=24, seed=0, decode_images=False
    )

    def sample(**changes):
        samples = generate_samples(model, adapter, prompts, 2, dataclasses.replace(config, **changes), progress=False)
        return [(s.reasoning_ids, s.image_tokens) for s in samples]

    first = sample()
    assert sample() == first
    assert len({len(r) for r, _ in first}) > 1  # rows really switched at different steps
    if dtype == torch.float32:
        assert sample(batch_size=7) == first
        assert sample(batch_size=1) == first


def test_text_phase_never_draws_image_codes_or_layout_tokens():
    """A model that all but always writes an image code as text: the reasoning still holds only text tokens."""
    model, adapter = biased_lm("<img_3>")
    blocked = set(adapter.text_blocked_ids())
    assert set(adapter.image_token_ids) | {adapter.eoi_token_id} <= blocked
    assert adapter.boi_token_id not in blocked and adapter.eos_token_id not in blocked
    samples = run(model, adapter, mode="unified", max_text_tokens=8, guidance_scale=3.0)
    assert all(len(s.reasoning_ids) == 8 or s.switched or s.forced_switch for s in samples)
    assert sum(len(s.reasoning_ids) for s in samples) > 0
    assert not blocked & {t for s in samples for t in s.reasoning_ids}


def test_emu3_text_blocks_its_layout_tokens_but_not_its_size_header():
    from trl_unified.models.emu3 import Emu3Adapter
    from trl_unified.testing.emu3 import tiny_emu3

    model, processor = tiny_emu3(seed=0)
    adapter = Emu3Adapter(model, processor)
    blocked = set(adapter.text_blocked_ids())
    layout_specials = {adapter.eol_token_id, adapter.eof_token_id, adapter.eoi_token_id, adapter.image_wrapper_token_id}
    assert layout_specials | set(adapter.image_token_ids) <= blocked
    assert not blocked & ({adapter.boi_token_id, adapter.eos_token_id} | set(adapter.header_token_ids))
