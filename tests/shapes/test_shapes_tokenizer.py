import random

import pytest

from trl_unified.shapes import (
    IMAGE_TOKEN_OFFSET,
    VOCAB,
    VOCAB_SIZE,
    build_shapes_tokenizer,
    codes_to_token_ids,
    generate_prompts,
    image_token_ids,
    plan_for_prompt,
    token_ids_to_codes,
)
from trl_unified.shapes.prompts import PROMPT_WORDS
from trl_unified.shapes.reasoning import PLAN_WORDS


@pytest.fixture(scope="module")
def tokenizer():
    return build_shapes_tokenizer()


def test_vocabulary_is_closed_and_complete(tokenizer):
    assert len(tokenizer) == VOCAB_SIZE == len(VOCAB) == 55
    assert len(set(VOCAB)) == len(VOCAB)
    assert set(PROMPT_WORDS) | set(PLAN_WORDS) <= set(VOCAB)
    assert tokenizer.convert_tokens_to_ids(list(VOCAB)) == list(range(VOCAB_SIZE))


def test_word_level_with_bos(tokenizer):
    ids = tokenizer("a red square").input_ids
    assert len(ids) == 4 and ids[0] == tokenizer.bos_token_id
    assert tokenizer.convert_ids_to_tokens(ids[1:]) == ["a", "red", "square"]
    assert tokenizer("hello red").input_ids == [tokenizer.bos_token_id, tokenizer.unk_token_id, VOCAB.index("red")]


def test_special_tokens(tokenizer):
    assert (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token) == (
        "<pad>",
        "<bos>",
        "<eos>",
        "<unk>",
    )
    assert tokenizer.pad_token_id == 0 and tokenizer.bos_token_id == 1 and tokenizer.eos_token_id == 2
    ids = tokenizer("<boi> <img_3> <img_0> <img_7> <eoi>", add_special_tokens=False).input_ids
    assert ids == [
        VOCAB.index("<boi>"),
        IMAGE_TOKEN_OFFSET + 3,
        IMAGE_TOKEN_OFFSET,
        IMAGE_TOKEN_OFFSET + 7,
        VOCAB.index("<eoi>"),
    ]


def test_image_tokens_are_contiguous(tokenizer):
    ids = tokenizer.convert_tokens_to_ids([f"<img_{i}>" for i in range(8)])
    assert ids == image_token_ids() == list(range(IMAGE_TOKEN_OFFSET, IMAGE_TOKEN_OFFSET + 8))
    codes = [random.Random(0).randrange(8) for _ in range(64)]
    assert token_ids_to_codes(codes_to_token_ids(codes)) == codes
    with pytest.raises(ValueError, match="not an image token"):
        token_ids_to_codes([VOCAB.index("red")] + codes_to_token_ids(codes)[1:])


def test_every_prompt_and_plan_tokenises_without_unk(tokenizer):
    rng = random.Random(0)
    for spec in generate_prompts(100, seed=4):
        plan, _ = plan_for_prompt(spec, rng)
        for text in (spec.to_text(), plan):
            ids = tokenizer(text).input_ids
            assert tokenizer.unk_token_id not in ids
            assert len(ids) == len(text.split()) + 1
            assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_save_and_load_round_trip(tokenizer, tmp_path):
    from transformers import AutoTokenizer  # slow to import; keep it out of collection

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert loaded.get_vocab() == tokenizer.get_vocab()
    texts = [
        "a red square left of a blue dot",
        "plan : red square at row 2 col 3 ; blue dot at row 5 col 6 .",
        "<boi> <img_1> <img_6> <eoi> four white hbars",
    ]
    for text in texts:
        assert loaded(text).input_ids == tokenizer(text).input_ids
    assert (loaded.pad_token_id, loaded.bos_token_id, loaded.eos_token_id, loaded.unk_token_id) == (0, 1, 2, 3)
    batch = loaded(["a red dot", "a red dot and a blue square"], padding=True)
    assert len(batch.input_ids[0]) == len(batch.input_ids[1]) == 8
    assert batch.input_ids[0][-1] == loaded.pad_token_id and batch.attention_mask[0][-1] == 0
