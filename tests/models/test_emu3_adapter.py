"""The Emu3 adapter on a tiny random ``Emu3ForConditionalGeneration`` (real transformers classes, no download)."""

import re
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from trl_unified.models.base import IGNORE_INDEX, IMAGE, TEXT, Segment
from trl_unified.models.emu3 import Emu3Adapter
from trl_unified.testing.emu3 import (
    BOI,
    EOF,
    EOI,
    EOL,
    EOS,
    IMAGE_WRAPPER,
    emu3_reference_image_generation,
    tiny_emu3,
    visual_token,
)


@pytest.fixture(scope="module")
def emu3():
    model, processor = tiny_emu3(seed=0)
    return model, processor, Emu3Adapter(model, processor)


def token_id(processor, token):
    return processor.tokenizer.convert_tokens_to_ids(token)


def random_image(seed, size=(32, 32)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))


def test_vocabulary_and_layout(emu3):
    model, processor, adapter = emu3
    assert Emu3Adapter.matches(model) and adapter.family == "emu3"
    # codes -> the tokenizer's "<|visual token NNNNNN|>" ids, in code order (they do not start at 0)
    expected = [token_id(processor, visual_token(i)) for i in range(16)]
    assert adapter.image_token_ids == expected
    assert adapter.image_token_ids == [model.vocabulary_mapping.img2bpe[i] for i in range(16)]
    assert adapter.codebook_size == 16 and min(expected) > 256
    assert adapter.boi_token_id == token_id(processor, BOI)
    assert adapter.eol_token_id == token_id(processor, EOL) == model.vocabulary_mapping.eol_token_id

    h, w = adapter.image_size_in_tokens
    assert (h, w) == (4, 4) and adapter.num_image_tokens == 16
    header = processor.tokenizer("4*4", add_special_tokens=False)["input_ids"]
    row = [None] * w + [token_id(processor, EOL)]
    ends = [token_id(processor, t) for t in (EOF, EOI, EOS)]
    assert adapter.image_layout() == header + [token_id(processor, IMAGE_WRAPPER)] + row * h + ends

    # the processor's image-generation prompt is exactly [prompt][BOI][header][wrapper]
    for prompt in ("a red cat", "dot"):
        hf = processor(text=prompt, return_for_image_generation=True)
        assert hf["input_ids"][0] == adapter.generation_prompt_ids(prompt)
        assert hf["image_sizes"][0] == [h, w]
        assert adapter.tokenize_prompt(prompt) == processor(text=prompt)["input_ids"][0]
        assert adapter.tokenize_prompt(prompt)[0] == processor.tokenizer.bos_token_id


def test_image_segment(emu3):
    _, processor, adapter = emu3
    codes = [(3 * i + 1) % 16 for i in range(16)]
    seg = adapter.image_segment(codes)
    layout = adapter.image_layout()
    assert len(seg) == 1 + len(layout) == 1 + 3 + 1 + 4 * 5 + 3
    # begin-of-image: a trained text token
    assert (seg.input_ids[0], seg.labels[0], seg.modality[0]) == (adapter.boi_token_id, adapter.boi_token_id, TEXT)
    code_iter = iter(codes)
    for entry, input_id, label, modality in zip(layout, seg.input_ids[1:], seg.labels[1:], seg.modality[1:]):
        assert modality == IMAGE
        if entry is None:
            code = next(code_iter)
            assert label == code and input_id == token_id(processor, visual_token(code))
        else:
            assert input_id == entry and label == IGNORE_INDEX
    # row markers after every w codes, end markers last
    body = seg.input_ids[1 + 3 + 1 :]
    assert [body[i] for i in range(4, 20, 5)] == [adapter.eol_token_id] * 4
    assert body[-3:] == [adapter.eof_token_id, adapter.eoi_token_id, adapter.eos_token_id]
    assert sum(label != IGNORE_INDEX for label in seg.labels) == 1 + 16
    with pytest.raises(ValueError):
        adapter.image_segment(codes[:-1])
    with pytest.raises(ValueError):
        adapter.image_segment([16] + codes[1:])


def collate(adapter, segments):
    length = max(len(s) for s in segments)
    pad = adapter.pad_token_id

    def padded(rows, fill):
        return torch.tensor([r + [fill] * (length - len(r)) for r in rows])

    return (
        padded([s.input_ids for s in segments], pad),
        padded([[1] * len(s) for s in segments], 0),
        padded([s.modality for s in segments], TEXT),
        padded([s.labels for s in segments], IGNORE_INDEX),
    )


def hand_logps(model, adapter, input_ids, attention_mask, modality, labels):
    """Full-vocabulary logits at every position; visual slice for image targets, full vocabulary for text targets."""
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    visual = torch.tensor(adapter.image_token_ids)
    out = torch.zeros(labels.shape[0], labels.shape[1] - 1)
    full_vocab_at_images = []
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            target = int(labels[b, t + 1])
            if target == IGNORE_INDEX:
                continue
            if modality[b, t + 1] == IMAGE:
                out[b, t] = torch.log_softmax(logits[b, t, visual], -1)[target]
                full_vocab_at_images.append(torch.log_softmax(logits[b, t], -1)[visual[target]])
            else:
                out[b, t] = torch.log_softmax(logits[b, t], -1)[target]
    return out, torch.stack(full_vocab_at_images)


def test_token_logps_matches_hand_computation(emu3):
    model, _, adapter = emu3
    rows = [
        Segment.text(adapter.tokenize_prompt("a red square"), trained=False)
        + Segment.text(adapter.tokenize_text("plan: dot left"), trained=True)
        + adapter.image_segment(list(range(16))),
        Segment.text(adapter.tokenize_prompt("dot"), trained=False)
        + Segment.text(adapter.tokenize_text("ok"), trained=True)
        + adapter.image_segment([15 - i for i in range(16)]),
    ]
    assert len(rows[0]) != len(rows[1])
    batch = collate(adapter, rows)
    input_ids, attention_mask, modality, labels = batch
    with torch.no_grad():
        logps = adapter.token_logps(model, input_ids, attention_mask, modality, labels)
    expected, full_vocab = hand_logps(model, adapter, *batch)
    assert logps.shape == expected.shape == (2, input_ids.shape[1] - 1)
    torch.testing.assert_close(logps, expected, atol=1e-5, rtol=1e-5)

    # exactly the trained labels get a log-prob: none for the prompt, the forced markers or padding
    trained = labels[:, 1:] != IGNORE_INDEX
    assert bool((logps[trained] < 0).all()) and bool((logps[~trained] == 0).all())
    assert int(trained.sum()) == sum(len(adapter.tokenize_text(t)) + 1 + 16 for t in ("plan: dot left", "ok"))
    # image positions are a distribution over the codebook, not the full vocabulary
    image_logps = logps[trained & (modality[:, 1:] == IMAGE)]
    assert image_logps.numel() == 32
    assert bool((image_logps > full_vocab).all())


def test_forward_hidden_is_post_norm_and_keeps_one_logit(emu3):
    model, _, adapter = emu3
    ids = torch.tensor([adapter.generation_prompt_ids("a red cat")])
    modality = torch.zeros_like(ids)
    with torch.no_grad():
        hidden, outputs = adapter.forward_hidden(model, ids, modality, torch.ones_like(ids))
        full = model(input_ids=ids).logits
        last = model.model.text_model(input_ids=ids).last_hidden_state
    assert outputs.logits.shape == (1, 1, full.shape[-1])  # logits_to_keep=1 honoured
    torch.testing.assert_close(hidden, last)  # hidden_states[-1] is after the final norm
    torch.testing.assert_close(adapter.text_logits(model, hidden), full)


def test_dropout_makes_train_logps_differ_and_warns():
    model, processor = tiny_emu3(seed=1)  # attention_dropout=0: train and eval agree
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adapter = Emu3Adapter(model, processor)
    seg = Segment.text(adapter.tokenize_prompt("a b"), trained=False) + adapter.image_segment([1] * 16)
    batch = collate(adapter, [seg])
    ids, mask, modality, labels = batch

    def logps(m):
        with torch.no_grad():
            return adapter.token_logps(m, ids, mask, modality, labels)

    torch.manual_seed(0)
    torch.testing.assert_close(logps(model.train()), logps(model.eval()))

    noisy, processor = tiny_emu3(seed=1, attention_dropout=0.5)
    with pytest.warns(UserWarning, match="attention_dropout"):
        Emu3Adapter(noisy, processor)
    torch.manual_seed(0)
    assert not torch.allclose(logps(noisy.train()), logps(noisy.eval()))


def test_lora_targets_only_language_model_projections(emu3):
    from peft import LoraConfig, get_peft_model

    model, _, adapter = emu3
    names = [name for name, _ in model.named_modules()]
    # plain names would also wrap the VQ model's attention blocks
    assert any("vqmodel" in n and n.endswith("q_proj") for n in names)
    matched = {n for n in names if re.fullmatch(adapter.lora_target_modules, n)}
    projections = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"]
    projections += ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    assert matched == {f"model.text_model.layers.{i}.{p}" for i in range(2) for p in projections}

    fresh, fresh_processor = tiny_emu3(seed=0)
    peft_model = get_peft_model(fresh, LoraConfig(r=2, target_modules=adapter.lora_target_modules))
    wrapped = {n for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert len(wrapped) == 14
    assert all(".text_model.layers." in n and "vqmodel" not in n for n in wrapped)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "text_model" in n for n in trainable)
    # the adapter still works through the PEFT wrapper
    peft_adapter = Emu3Adapter(peft_model, fresh_processor)
    assert Emu3Adapter.matches(peft_model)
    assert peft_adapter.frozen_modules(peft_model) == [fresh.model.vqmodel]


def test_encode_decode_encode(emu3):
    model, processor, adapter = emu3
    images = [random_image(0), random_image(1, size=(48, 24))]  # the second is resized to 32x32
    codes = adapter.encode_images(model, images)
    assert codes.shape == (2, 16) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < adapter.codebook_size
    assert len(set(codes[0].tolist())) > 1

    # same codes as transformers' get_image_tokens (which returns vocabulary ids with a row marker per row)
    pixels = processor.image_processor(images[:1], return_tensors="pt")
    with torch.no_grad():
        bpe = model.model.get_image_tokens(pixels["pixel_values"], pixels["image_sizes"])
    expected = [adapter.image_token_ids[c] for c in codes[0].tolist()]
    expected = sum((expected[r * 4 : r * 4 + 4] + [adapter.eol_token_id] for r in range(4)), [])
    assert bpe.tolist() == expected

    model.train()  # the VQ model's BatchNorm must not switch to batch statistics
    try:
        decoded = adapter.decode_images(model, codes)
        assert model.model.vqmodel.training  # mode restored
        again = adapter.encode_images(model, decoded)
    finally:
        model.eval()
    assert [im.size for im in decoded] == [(32, 32), (32, 32)]
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for im in decoded)
    assert again.shape == (2, 16) and int(again.max()) < adapter.codebook_size
    torch.testing.assert_close(adapter.encode_images(model, decoded), again)


def test_save_and_load_round_trip(emu3, tmp_path):
    from transformers import Emu3ForConditionalGeneration, Emu3Processor

    model, processor, adapter = emu3
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = Emu3ForConditionalGeneration.from_pretrained(tmp_path).eval()
    loaded_processor = Emu3Processor.from_pretrained(tmp_path)

    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    assert loaded.config.text_config.attention_dropout == 0
    assert loaded_processor.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    for attribute in ("boi_token_id", "eoi_token_id", "image_wrapper_token_id", "eof_token_id", "bos_token_id"):
        assert getattr(loaded_processor.tokenizer, attribute) == getattr(processor.tokenizer, attribute)

    # the processor does not save image_area: the size comes back from config.unified_image_generation
    loaded_adapter = Emu3Adapter(loaded, loaded_processor)
    assert loaded_adapter.image_size_in_tokens == (4, 4)
    assert loaded_adapter.image_layout() == adapter.image_layout()
    assert loaded_adapter.image_token_ids == adapter.image_token_ids
    assert Emu3Adapter(loaded, loaded_processor.tokenizer).image_layout() == adapter.image_layout()
    ids = torch.tensor([adapter.generation_prompt_ids("a red cat")])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_reference_generation_matches_layout_and_logps(emu3):
    model, processor, adapter = emu3
    prompt = "a red square"
    ref = emu3_reference_image_generation(model, processor, prompt, guidance_scale=1.0, seed=3)
    assert (ref.height, ref.width) == adapter.image_size_in_tokens
    assert ref.prompt_ids[0].tolist() == adapter.generation_prompt_ids(prompt)
    assert ref.codes.shape == (1, 16) and int(ref.codes.max()) < 16 and int(ref.codes.min()) >= 0
    # the whole generated tail is the adapter's layout with the sampled codes in the slots
    full = adapter.tokenize_prompt(prompt) + adapter.image_segment(ref.codes[0].tolist()).input_ids
    assert ref.prompt_ids[0].tolist() + ref.generated_ids[0].tolist() == full
    torch.testing.assert_close(adapter.generated_image_ids(ref.codes), ref.generated_ids)

    # training log-probs == the distribution generate sampled from (no CFG, eval mode, dropout 0)
    seg = Segment.text(adapter.tokenize_prompt(prompt), trained=False) + adapter.image_segment(ref.codes[0].tolist())
    ids, mask, modality, labels = collate(adapter, [seg])
    with torch.no_grad():
        logps = adapter.token_logps(model, ids, mask, modality, labels)
    code_targets = (labels[0, 1:] != IGNORE_INDEX) & (modality[0, 1:] == IMAGE)
    offset = len(ref.prompt_ids[0])  # step k of generate predicts sequence position offset + k
    steps = [int(t) + 1 - offset for t in code_targets.nonzero().flatten()]
    visual = torch.tensor(adapter.image_token_ids)
    sampled = torch.stack([torch.log_softmax(ref.scores[0, k, visual], -1)[c] for k, c in zip(steps, ref.codes[0])])
    torch.testing.assert_close(logps[0, code_targets], sampled, atol=1e-4, rtol=1e-4)
    assert bool(torch.isinf(ref.scores[0, 4]).sum() == ref.scores.shape[-1] - 1)  # a forced EOL step

    # CFG with a negative prompt: same layout, reproducible by seed, different from unguided sampling
    guided = [
        emu3_reference_image_generation(model, processor, prompt, guidance_scale=3.0, seed=3, negative_prompt="ugly")
        for _ in range(2)
    ]
    torch.testing.assert_close(guided[0].codes, guided[1].codes)
    torch.testing.assert_close(adapter.generated_image_ids(guided[0].codes), guided[0].generated_ids)
    assert not torch.equal(guided[0].scores, ref.scores)

    # a left-padded batch of prompts of different lengths
    batched = emu3_reference_image_generation(model, processor, ["dot", prompt], guidance_scale=2.0, seed=0)
    assert batched.codes.shape == (2, 16)
    torch.testing.assert_close(adapter.generated_image_ids(batched.codes), batched.generated_ids)

    # HF's decode path and the adapter's agree
    with torch.no_grad():
        pixels = model.decode_image_tokens(image_tokens=ref.generated_ids, height=4, width=4)
    hf_image = processor.postprocess(list(pixels.float()), return_tensors="PIL.Image.Image")["pixel_values"][0]
    assert np.array_equal(np.asarray(hf_image), np.asarray(adapter.decode_images(model, ref.codes)[0]))
