"""The sampler against transformers' own image generation, token for token, on tiny random Janus and Emu3 models.

With ``rng="batch"`` and the whole request in one batch the sampler draws exactly what ``generate`` draws after
``torch.manual_seed(seed)``: the same CFG, warpers in the same order, ``torch.multinomial`` over tensors of the same
shape (Janus: ``[B, codebook]``; Emu3: ``[B, vocabulary]`` with the codes at their ids) and the same random numbers
for the forced end-of-line tokens Emu3's ``prefix_allowed_tokens_fn`` makes ``generate`` sample.

The prompts of one call have the same length: transformers' Janus image loop passes no ``position_ids`` (a left-padded
row would see shifted positions) and its Emu3 guidance branch neither; the sampler gives every left-padded row the
positions it would have alone (tested in ``test_sampler.py`` and below).
"""

import dataclasses

import pytest
import torch
from PIL import Image

from trl_unified.data.collator import DataCollatorForInterleavedSequences
from trl_unified.generation.sampler import SamplingConfig, generate_samples
from trl_unified.models.emu3 import Emu3Adapter
from trl_unified.models.janus import JanusAdapter
from trl_unified.testing.emu3 import emu3_reference_image_generation, tiny_emu3
from trl_unified.testing.janus import tiny_janus

PROMPTS = ["a red square", "a big circle"]  # same number of tokens in both tokenizers: no padding
#: (temperature, top_k, top_p); temperature 0 = greedy (``do_sample=False``)
SAMPLING = [(1.0, 0, 1.0), (0.7, 8, 0.9), (0.0, 0, 1.0)]


@pytest.fixture(scope="module")
def janus():
    model, processor = tiny_janus(seed=0)
    return model, processor, JanusAdapter(model, processor)


@pytest.fixture(scope="module")
def emu3():
    model, processor = tiny_emu3(seed=0)
    return model, processor, Emu3Adapter(model, processor)


def image_codes(model, adapter, prompts, num_samples, **config):
    config = SamplingConfig(mode="image_only", rng="batch", batch_size=16, decode_images=False, **config)
    return torch.tensor([s.image_tokens for s in generate_samples(model, adapter, prompts, num_samples, config, False)])


@pytest.mark.parametrize("temperature,top_k,top_p", SAMPLING)
@pytest.mark.parametrize("seed", [0, 1])
def test_janus_image_tokens_equal_transformers_generate(janus, seed, temperature, top_k, top_p):
    model, processor, adapter = janus
    inputs = processor(text=PROMPTS, generation_mode="image", return_tensors="pt")  # [BOS prompt <begin_of_image>]
    assert inputs["attention_mask"].all()
    num_samples = 2 if temperature > 0 else 1  # greedy generate refuses num_return_sequences > 1
    torch.manual_seed(seed)
    expected = model.generate(
        **inputs,  # input_ids and attention_mask: the image loop crashes without the mask
        generation_mode="image",
        guidance_scale=3.0,  # > 1: with 1 the image loop crashes
        do_sample=temperature > 0,
        temperature=temperature or 1.0,
        top_k=top_k,
        top_p=top_p,
        num_return_sequences=num_samples,  # rows prompt-major: p0 s0, p0 s1, p1 s0, p1 s1
    )
    got = image_codes(
        model,
        adapter,
        PROMPTS,
        num_samples,
        guidance_scale=3.0,
        seed=seed,
        image_temperature=temperature,
        image_top_k=top_k,
        image_top_p=top_p,
    )
    assert expected.shape == got.shape == (2 * num_samples, adapter.num_image_tokens)
    assert torch.equal(got, expected)
    if temperature > 0:
        assert len(set(got.flatten().tolist())) > 8  # real draws


@pytest.mark.parametrize("temperature,top_k,top_p", SAMPLING)
@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_emu3_image_tokens_equal_transformers_constrained_generate(emu3, guidance_scale, temperature, top_k, top_p):
    model, processor, adapter = emu3
    seed = 7
    negative = None
    if guidance_scale != 1:
        # the sampler's own guidance rows: [BOS, pad..., <|image start|>, "h*w", <|image token|>]
        negative = torch.tensor(
            [
                adapter.unconditional_ids(adapter.tokenize_prompt(p) + [adapter.boi_token_id])
                + adapter.header_token_ids
                + [adapter.image_wrapper_token_id]
                for p in PROMPTS
            ]
        )
    reference = emu3_reference_image_generation(
        model,
        processor,
        PROMPTS,
        guidance_scale=guidance_scale,
        seed=seed,
        negative_prompt_ids=negative,
        do_sample=temperature > 0,
        temperature=temperature or 1.0,
        top_k=top_k,
        top_p=top_p,
    )
    assert not (reference.prompt_ids == processor.tokenizer.pad_token_id).any()  # equal lengths: no padding
    got = image_codes(
        model,
        adapter,
        PROMPTS,
        1,
        guidance_scale=guidance_scale,
        seed=seed,
        image_temperature=temperature,
        image_top_k=top_k,
        image_top_p=top_p,
    )
    assert torch.equal(got, reference.codes)


@pytest.mark.parametrize("family", ["janus", "emu3"])
def test_unified_samples_decode_and_rebuild_in_the_collator(request, family):
    model, _, adapter = request.getfixturevalue(family)
    prompts = ["red", "a blue square at the top left"]  # different lengths: left padding in both phases
    config = SamplingConfig(mode="unified", max_text_tokens=5, guidance_scale=4.0, seed=3)
    samples = generate_samples(model, adapter, prompts, 2, config, progress=False)
    collator = DataCollatorForInterleavedSequences(adapter)
    for s in samples:
        assert isinstance(s.image, Image.Image)
        assert s.input_ids == s.prompt_ids + s.reasoning_ids + adapter.image_segment(s.image_tokens).input_ids
        assert collator.encode_row(s.to_row()).modality == s.modality
        assert s.switched != s.forced_switch
    # rows do not depend on their batch neighbours (rng="row")
    alone = generate_samples(model, adapter, prompts, 2, dataclasses.replace(config, batch_size=1), False)
    assert [s.input_ids for s in alone] == [s.input_ids for s in samples]


# ----- on a GPU (skipped without CUDA) --------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("family", ["janus", "emu3"])
def test_cuda_image_tokens_equal_transformers(family):
    """Same parity on a GPU: the sampler's CUDA generator and transformers' ``torch.manual_seed`` draw alike."""
    if family == "janus":
        model, processor = tiny_janus(seed=0)
        adapter = JanusAdapter(model.cuda(), processor)
        inputs = processor(text=PROMPTS, generation_mode="image", return_tensors="pt").to("cuda")
        torch.manual_seed(5)
        expected = model.generate(
            **inputs, generation_mode="image", guidance_scale=3.0, do_sample=True, temperature=1.0, top_k=0, top_p=1.0
        ).cpu()
    else:
        model, processor = tiny_emu3(seed=0)
        adapter = Emu3Adapter(model.cuda(), processor)
        negative = torch.tensor(
            [
                adapter.unconditional_ids(adapter.tokenize_prompt(p) + [adapter.boi_token_id])
                + adapter.header_token_ids
                + [adapter.image_wrapper_token_id]
                for p in PROMPTS
            ]
        )
        expected = emu3_reference_image_generation(
            model, processor, PROMPTS, guidance_scale=3.0, seed=5, negative_prompt_ids=negative
        ).codes
    got = image_codes(model, adapter, PROMPTS, 1, guidance_scale=3.0, seed=5)
    assert torch.equal(got, expected)


@cuda
@pytest.mark.parametrize("family", ["janus", "emu3"])
def test_cuda_unified_samples(family):
    model, processor = tiny_janus(seed=0) if family == "janus" else tiny_emu3(seed=0)
    model = model.cuda()
    adapter = (JanusAdapter if family == "janus" else Emu3Adapter)(model, processor)
    config = SamplingConfig(mode="unified", max_text_tokens=5, guidance_scale=4.0, seed=3)
    samples = generate_samples(model, adapter, ["red", "a blue square at the top left"], 2, config, progress=False)
    for s in samples:
        assert isinstance(s.image, Image.Image)
        assert s.input_ids == s.prompt_ids + s.reasoning_ids + adapter.image_segment(s.image_tokens).input_ids
    again = generate_samples(model, adapter, ["red", "a blue square at the top left"], 2, config, progress=False)
    assert [s.input_ids for s in again] == [s.input_ids for s in samples]
