"""JanusAdapter on a tiny random JanusForConditionalGeneration (real transformers classes, no download)."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from trl_unified.models.base import IGNORE_INDEX, IMAGE, TEXT, Segment
from trl_unified.models.janus import JanusAdapter
from trl_unified.testing.janus import tiny_janus


@pytest.fixture(scope="module")
def janus():
    model, processor = tiny_janus(seed=0)
    return model, processor, JanusAdapter(model, processor)


def build_batch(adapter, rows):
    """Right-padded batch (like the collator) from (prompt, reasoning, codes or None) rows."""
    segments = []
    for prompt, reasoning, codes in rows:
        segment = Segment.text(adapter.tokenize_prompt(prompt), trained=False)
        segment += Segment.text(adapter.tokenize_text(reasoning), trained=True)
        if codes is None:
            segment += Segment.text([adapter.eos_token_id], trained=True)
        else:
            segment += adapter.image_segment(codes)
        segments.append(segment)
    length = max(len(s) for s in segments)

    def pad(values, fill):
        return torch.tensor([v + [fill] * (length - len(v)) for v in values], dtype=torch.long)

    return {
        "input_ids": pad([s.input_ids for s in segments], adapter.pad_token_id),
        "attention_mask": pad([[1] * len(s) for s in segments], 0),
        "labels": pad([s.labels for s in segments], IGNORE_INDEX),
        "modality": pad([s.modality for s in segments], TEXT),
    }


def random_codes(adapter, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, adapter.codebook_size, (adapter.num_image_tokens,), generator=generator).tolist()


def token_logps(adapter, model, batch):
    return adapter.token_logps(model, batch["input_ids"], batch["attention_mask"], batch["modality"], batch["labels"])


# ----- vocabulary and layout -----------------------------------------------------------------------------------------
def test_vocabulary_matches_model_processor_and_generation_config(janus):
    model, processor, adapter = janus
    tokenizer = processor.tokenizer
    assert JanusAdapter.matches(model)
    assert not JanusAdapter.matches(model.model.language_model)
    assert adapter.boi_token_id == tokenizer.convert_tokens_to_ids("<begin_of_image>")
    assert adapter.boi_token_id == model.generation_config.generation_kwargs["boi_token_id"]
    assert adapter.eoi_token_id == tokenizer.convert_tokens_to_ids("<end_of_image>")
    assert adapter.eoi_token_id == tokenizer.convert_tokens_to_ids(processor.image_end_token)
    # generate(generation_mode="image") makes vision_config.num_image_tokens codes; the VQ decoder wants num_patches**2
    assert adapter.num_image_tokens == model.config.vision_config.num_image_tokens == 16
    assert adapter.num_image_tokens == model.config.vq_config.num_patches**2
    assert adapter.codebook_size == model.model.generation_head.vision_head.out_features == 32
    assert adapter.codebook_size == model.model.generation_embeddings.num_embeddings
    assert adapter.pad_token_id == model.generation_config.pad_token_id
    # The sampler's prompt ids + begin-of-image are the processor's image-generation prompt.
    prompt = "a red square left of a blue dot"
    expected = processor(text=[prompt], generation_mode="image")["input_ids"][0].tolist()
    assert adapter.tokenize_prompt(prompt) + [adapter.boi_token_id] == expected
    assert expected[0] == tokenizer.bos_token_id


def test_image_segment_layout_labels_and_modalities(janus):
    _, _, adapter = janus
    layout = adapter.image_layout()
    assert layout == [None] * 16 + [adapter.eoi_token_id]
    codes = random_codes(adapter, 1)
    segment = adapter.image_segment(codes)
    assert len(segment) == 1 + 16 + 1
    assert segment.input_ids == [adapter.boi_token_id, *codes, adapter.eoi_token_id]  # codes are fed as they are
    assert segment.labels == [adapter.boi_token_id, *codes, IGNORE_INDEX]  # BOI trained (text head), EOI forced
    assert segment.modality == [TEXT] + [IMAGE] * 17
    with pytest.raises(ValueError, match="expected 16 image codes"):
        adapter.image_segment(codes[:-1])
    with pytest.raises(ValueError, match="outside the codebook"):
        adapter.image_segment(codes[:-1] + [adapter.codebook_size])


def test_unconditional_ids_match_transformers_guidance_row(janus):
    model, processor, adapter = janus
    ids = processor(text=["red dot above"], generation_mode="image")["input_ids"][0].tolist()
    config = model.generation_config
    # What JanusForConditionalGeneration.generate does to the second half of its doubled batch:
    keep = {config.bos_token_id, config.generation_kwargs["boi_token_id"]}
    expected = [t if t in keep else config.pad_token_id for t in ids]
    assert adapter.unconditional_ids(ids) == expected
    assert expected[0] == config.bos_token_id and expected[-1] == adapter.boi_token_id
    assert set(expected[1:-1]) == {config.pad_token_id}


# ----- model plumbing ------------------------------------------------------------------------------------------------
def test_input_embeddings_route_codes_and_text(janus):
    model, _, adapter = janus
    codes = random_codes(adapter, 2)
    segment = Segment.text(adapter.tokenize_prompt("blue"), trained=False) + adapter.image_segment(codes)
    ids = torch.tensor([segment.input_ids])
    modality = torch.tensor([segment.modality])
    with torch.no_grad():
        embeds = adapter.input_embeddings(model, ids, modality)
        text = model.get_input_embeddings()(ids)
        image = model.model.generation_aligner(model.model.generation_embeddings(torch.tensor([codes])))
    n_text = len(segment) - 17  # prompt + BOI
    torch.testing.assert_close(embeds[:, :n_text], text[:, :n_text])
    torch.testing.assert_close(embeds[:, n_text : n_text + 16], image)
    torch.testing.assert_close(embeds[:, -1], text[:, -1])  # forced EOI: a text token at an image position
    # Tagging EOI as text instead gives the same embeddings (a sampler may mark forced tokens either way).
    modality_text_eoi = modality.clone()
    modality_text_eoi[0, -1] = TEXT
    with torch.no_grad():
        torch.testing.assert_close(adapter.input_embeddings(model, ids, modality_text_eoi), embeds)


def test_forward_hidden_is_the_post_norm_state_generation_head_sees(janus):
    model, _, adapter = janus
    batch = build_batch(adapter, [("red dot", "plan", random_codes(adapter, 3))])
    captured = {}
    handle = model.model.language_model.norm.register_forward_hook(
        lambda module, args, output: captured.update(pre=args[0].detach(), post=output.detach())
    )
    try:
        with torch.no_grad():
            hidden, outputs = adapter.forward_hidden(
                model, batch["input_ids"], batch["modality"], batch["attention_mask"]
            )
    finally:
        handle.remove()
    assert hidden.shape == (*batch["input_ids"].shape, model.config.text_config.hidden_size)
    assert outputs.logits.shape[1] == 1  # logits_to_keep=1
    torch.testing.assert_close(hidden, captured["post"])
    assert not torch.allclose(hidden, captured["pre"])


@pytest.mark.parametrize("do_sample", [False, True])
def test_guided_decoding_through_the_adapter_reproduces_generate(janus, do_sample):
    """The adapter's image input path, image head and CFG row are the ones transformers' image generation uses.

    Sampling draws one ``torch.multinomial`` per code from the same seed, so even sampled codes must agree.
    """
    model, processor, adapter = janus
    guidance_scale = 3.0
    inputs = processor(text=["green square below"], generation_mode="image", return_tensors="pt")
    torch.manual_seed(0)
    expected = model.generate(**inputs, generation_mode="image", do_sample=do_sample, guidance_scale=guidance_scale)
    assert expected.shape == (1, adapter.num_image_tokens)

    cond = inputs["input_ids"][0].tolist()
    uncond = adapter.unconditional_ids(cond)
    codes = []
    torch.manual_seed(0)
    with torch.no_grad():
        for _ in range(adapter.num_image_tokens):
            ids = torch.tensor([cond + codes, uncond + codes])
            modality = torch.tensor([[TEXT] * len(cond) + [IMAGE] * len(codes)] * 2)
            hidden, _ = adapter.forward_hidden(model, ids, modality, torch.ones_like(ids))
            logits = adapter.image_logits(model, hidden[:, -1])
            guided = logits[1] + guidance_scale * (logits[0] - logits[1])
            if do_sample:
                codes.append(int(torch.multinomial(torch.softmax(guided[None], dim=-1), num_samples=1)))
            else:
                codes.append(int(guided.argmax()))
    assert codes == expected[0].tolist()
    if do_sample:
        assert len(set(codes)) > 4  # a real draw, not a collapsed sequence


def test_token_logps_equal_an_independent_computation_on_a_padded_batch(janus):
    model, _, adapter = janus
    rows = [
        ("a red square left of a blue dot", "plan: red left", random_codes(adapter, 4)),
        ("dot", "", random_codes(adapter, 5)),
    ]
    batch = build_batch(adapter, rows)
    ids, mask, modality, labels = batch["input_ids"], batch["attention_mask"], batch["modality"], batch["labels"]
    assert mask[1].sum() < mask[0].sum()  # different lengths, the second row is padded
    with torch.no_grad():
        logps = token_logps(adapter, model, batch)

        # By hand: text ids -> embed_tokens, codes -> generation_embeddings + generation_aligner (EOI is text).
        embed_tokens = model.model.language_model.embed_tokens
        rows_embeds = []
        for b in range(ids.shape[0]):
            vectors = []
            for t in range(ids.shape[1]):
                token = ids[b, t : t + 1]
                if modality[b, t] == IMAGE and token.item() != adapter.eoi_token_id:
                    vectors.append(model.model.generation_aligner(model.model.generation_embeddings(token))[0])
                else:
                    vectors.append(embed_tokens(token)[0])
            rows_embeds.append(torch.stack(vectors))
        embeds = torch.stack(rows_embeds)
        hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        expected = torch.zeros(labels[:, 1:].shape)
        for b in range(ids.shape[0]):
            for t in range(ids.shape[1] - 1):
                target = labels[b, t + 1].item()
                if target == IGNORE_INDEX:
                    continue
                if modality[b, t + 1] == IMAGE:
                    head_logits = model.model.generation_head(hidden[b, t])
                    assert head_logits.shape[-1] == adapter.codebook_size
                else:
                    head_logits = model.lm_head(hidden[b, t])
                expected[b, t] = torch.log_softmax(head_logits.float(), dim=-1)[target]

    assert logps.shape == labels[:, 1:].shape
    torch.testing.assert_close(logps, expected, atol=1e-5, rtol=1e-5)
    assert ((logps != 0) == (labels[:, 1:] != IGNORE_INDEX)).all()
    image_targets = (labels[:, 1:] != IGNORE_INDEX) & (modality[:, 1:] == IMAGE)
    assert image_targets.sum() == 2 * adapter.num_image_tokens
    # Image log-probs are over the 32-code codebook (about log(1/32) for a random model), not the text vocabulary.
    assert logps[image_targets].mean().item() == pytest.approx(-np.log(adapter.codebook_size), abs=0.5)

    # Padding does not change the shorter row.
    alone = build_batch(adapter, rows[1:])
    with torch.no_grad():
        alone_logps = token_logps(adapter, model, alone)
    n = alone["input_ids"].shape[1] - 1
    torch.testing.assert_close(logps[1, :n], alone_logps[0], atol=1e-5, rtol=1e-5)
    assert (logps[1, n:] == 0).all()


def test_gradients_reach_the_head_of_the_modality_in_the_loss(janus):
    model, _, adapter = janus
    batch = build_batch(adapter, [("red dot above", "plan: red", random_codes(adapter, 6))])
    image_targets = (batch["labels"][:, 1:] != IGNORE_INDEX) & (batch["modality"][:, 1:] == IMAGE)
    text_targets = (batch["labels"][:, 1:] != IGNORE_INDEX) & (batch["modality"][:, 1:] == TEXT)
    assert image_targets.any() and text_targets.any()
    head = model.model.generation_head.vision_head.weight

    def grads(targets):
        model.zero_grad(set_to_none=True)
        logps = token_logps(adapter, model, batch)
        (-(logps * targets).sum()).backward()
        head_grad = None if head.grad is None else head.grad.abs().sum().item()
        lm_grad = None if model.lm_head.weight.grad is None else model.lm_head.weight.grad.abs().sum().item()
        aligner_grad = model.model.generation_aligner.fc1.weight.grad
        return head_grad, lm_grad, None if aligner_grad is None else aligner_grad.abs().sum().item()

    head_grad, _, aligner_grad = grads(image_targets)
    assert head_grad is not None and head_grad > 0
    assert aligner_grad is not None and aligner_grad > 0  # codes are inputs to later image positions

    head_grad, lm_grad, _ = grads(text_targets)
    assert head_grad is None or head_grad == 0
    assert lm_grad is not None and lm_grad > 0
    model.zero_grad(set_to_none=True)


# ----- fine-tuning ---------------------------------------------------------------------------------------------------
def test_lora_regex_targets_language_model_and_generation_path_only():
    from peft import LoraConfig, get_peft_model

    model, processor = tiny_janus(seed=1)
    adapter = JanusAdapter(model, processor)
    names = [name for name, _ in model.named_modules()]
    pattern = re.compile(adapter.lora_target_modules)
    # The vision tower's attention has q/k/v_proj too: a plain name list would hit it.
    assert any(re.search(r"vision_model\..*\.q_proj$", n) for n in names)
    never = [n for n in names if "vision_model" in n or "vqmodel" in n or n.startswith("model.aligner")]
    assert never and not any(pattern.fullmatch(n) for n in never)

    batch = build_batch(adapter, [("red dot", "plan", random_codes(adapter, 7))])
    with torch.no_grad():
        before = token_logps(adapter, model, batch)

    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=adapter.lora_target_modules))
    wrapped = {n.removeprefix("base_model.model.") for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    projections = [f"self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")]
    projections += [f"mlp.{p}" for p in ("gate_proj", "up_proj", "down_proj")]
    layers = range(model.config.text_config.num_hidden_layers)
    expected = {f"model.language_model.layers.{i}.{p}" for i in layers for p in projections}
    expected |= {
        "model.generation_aligner.fc1",
        "model.generation_aligner.hidden_layers.0",
        "model.generation_head.proj_out",
        "model.generation_head.vision_head",
    }
    assert wrapped == expected

    # The adapter sees through PEFT; LoRA B starts at zero, so nothing changes yet.
    assert JanusAdapter.matches(peft_model)
    with torch.no_grad():
        torch.testing.assert_close(token_logps(adapter, peft_model, batch), before)

    frozen = adapter.frozen_modules(peft_model)
    core = peft_model.get_base_model().model
    assert frozen[0] is core.vqmodel and frozen[1] is core.vision_model and frozen[2] is core.aligner
    frozen_params = {id(p) for module in frozen for p in module.parameters()}
    lora_params = {id(p) for n, p in peft_model.named_parameters() if "lora_" in n}
    assert lora_params and not frozen_params & lora_params


# ----- images --------------------------------------------------------------------------------------------------------
def test_encode_decode_encode_round_trip(janus):
    model, _, adapter = janus
    rng = np.random.default_rng(0)
    square = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    wide = Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))  # resized and padded to a square
    codes = adapter.encode_images(model, [square, wide])
    assert codes.shape == (2, adapter.num_image_tokens) and codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < adapter.codebook_size

    images = adapter.decode_images(model, codes)
    assert len(images) == 2
    assert all(isinstance(image, Image.Image) and image.size == (16, 16) and image.mode == "RGB" for image in images)
    # decode = decode_image_tokens, then undo the [-1, 1] normalisation
    with torch.no_grad():
        pixels = model.decode_image_tokens(codes).float()
    expected = ((pixels * 0.5 + 0.5) * 255).clamp(0, 255).numpy()
    assert np.abs(np.asarray(images[0], dtype=np.float32) - expected[0]).max() <= 1.0

    again = adapter.encode_images(model, images)
    assert again.shape == codes.shape and 0 <= again.min() and again.max() < adapter.codebook_size
    with pytest.raises(ValueError, match="shape"):
        adapter.decode_images(model, codes[:, :-1])


# ----- serialisation -------------------------------------------------------------------------------------------------
def test_tiny_janus_round_trips_through_save_pretrained(janus, tmp_path):
    from transformers import JanusForConditionalGeneration, JanusProcessor

    model, processor, adapter = janus
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = JanusForConditionalGeneration.from_pretrained(tmp_path).eval()
    loaded_processor = JanusProcessor.from_pretrained(tmp_path)

    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    assert loaded.generation_config.generation_kwargs == {"boi_token_id": adapter.boi_token_id}
    assert loaded_processor.tokenizer.boi_token == "<begin_of_image>"
    assert loaded_processor.image_end_token == "<end_of_image>"
    assert loaded_processor.num_image_tokens == adapter.num_image_tokens
    assert (loaded_processor.image_processor.size["height"], loaded_processor.image_processor.size["width"]) == (16, 16)

    loaded_adapter = JanusAdapter(loaded, loaded_processor)
    assert (loaded_adapter.boi_token_id, loaded_adapter.eoi_token_id, loaded_adapter.pad_token_id) == (
        adapter.boi_token_id,
        adapter.eoi_token_id,
        adapter.pad_token_id,
    )
    prompt = "blue dot right of a red square"
    assert loaded_adapter.tokenize_prompt(prompt) == adapter.tokenize_prompt(prompt)
    batch = build_batch(adapter, [(prompt, "plan", random_codes(adapter, 8))])
    with torch.no_grad():
        torch.testing.assert_close(token_logps(loaded_adapter, loaded, batch), token_logps(adapter, model, batch))

    # Image generation, called as documented in trl_unified.testing.janus, runs on the loaded pair (left-padded batch).
    inputs = loaded_processor(text=[prompt, "dot"], generation_mode="image", return_tensors="pt", padding=True)
    assert inputs["attention_mask"][1, 0] == 0  # left padding
    out = loaded.generate(**inputs, generation_mode="image", do_sample=True, guidance_scale=2.0)
    assert out.shape == (2, adapter.num_image_tokens)
    assert 0 <= out.min() and out.max() < adapter.codebook_size
    assert len(loaded_adapter.decode_images(loaded, out)) == 2
