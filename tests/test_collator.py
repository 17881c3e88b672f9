import pytest
import torch

from trl_unified.data.collator import DataCollatorForInterleavedSequences
from trl_unified.models.base import IGNORE_INDEX, IMAGE, TEXT
from trl_unified.models.causal_lm import CausalLMAdapter


@pytest.fixture
def adapter(tiny_lm):
    model, tokenizer = tiny_lm
    return CausalLMAdapter(model, tokenizer)


def test_interleaved_layout_labels_and_modality(adapter):
    tok = adapter.tokenizer
    codes = [3] * 16
    batch = DataCollatorForInterleavedSequences(adapter)(
        [
            {"prompt": "a red dot", "reasoning": "plan : red dot", "image_tokens": codes, "text_weight": 0.5},
            {"prompt": "a blue square", "reasoning": "", "image_tokens": None, "image_weight": 2.0},
        ]
    )
    prompt = tok("a red dot")["input_ids"]
    reasoning = tok("plan : red dot", add_special_tokens=False)["input_ids"]
    row = batch["input_ids"][0].tolist()
    n = len(prompt) + len(reasoning)
    assert row[:n] == prompt + reasoning
    assert row[n] == adapter.boi_token_id
    assert row[n + 1 : n + 17] == [adapter.image_token_ids[3]] * 16
    assert row[n + 17] == adapter.eoi_token_id
    labels = batch["labels"][0].tolist()
    assert labels[: len(prompt)] == [IGNORE_INDEX] * len(prompt)  # prompt masked
    assert labels[len(prompt) : n + 1] == reasoning + [adapter.boi_token_id]  # reasoning + the switch are trained
    assert labels[n + 1 : n + 17] == codes  # image labels are codes
    assert labels[n + 17] == IGNORE_INDEX  # forced end-of-image
    assert batch["modality"][0, n].item() == TEXT and (batch["modality"][0, n + 1 : n + 18] == IMAGE).all()
    # text-only row: prompt, EOS trained, right padding
    second = batch["input_ids"][1].tolist()
    p2 = tok("a blue square")["input_ids"]
    assert second[: len(p2) + 1] == p2 + [tok.eos_token_id]
    assert batch["labels"][1, len(p2)].item() == tok.eos_token_id
    assert batch["attention_mask"][1].sum().item() == len(p2) + 1
    assert (batch["labels"][1, len(p2) + 1 :] == IGNORE_INDEX).all()
    assert batch["text_weight"].tolist() == [0.5, 1.0] and batch["image_weight"].tolist() == [1.0, 2.0]
    assert batch["input_ids"].shape == batch["labels"].shape == batch["modality"].shape


def test_pretokenized_rows_are_used_as_given(adapter):
    batch = DataCollatorForInterleavedSequences(adapter)(
        [{"prompt_ids": [1, 6], "reasoning_ids": [10, 11], "image_tokens": None}]
    )
    assert batch["input_ids"][0].tolist() == [1, 6, 10, 11, adapter.eos_token_id]


@pytest.mark.parametrize(
    "row, message",
    [
        (
            {"prompt": "a red dot", "image_tokens": [1] * 15},
            r"row 0, column `image_tokens`: expected 16 image codes, got 15",
        ),
        (
            {"prompt": "a red dot", "image_tokens": [9] + [1] * 15},
            r"row 0, column `image_tokens`: image codes \[9\] are outside",
        ),
        ({"reasoning": "plan"}, r"row 0: needs a `prompt`"),
    ],
)
def test_bad_rows_name_the_row_and_column(adapter, row, message):
    with pytest.raises(ValueError, match=message):
        DataCollatorForInterleavedSequences(adapter)([row])


def test_too_long_is_rejected_or_only_reasoning_is_cut(adapter):
    row = {
        "prompt": "a red dot",
        "reasoning": "plan : red dot at row one col two",
        "image_tokens": [0] * 16,
        "row_index": 7,
    }
    full = len(DataCollatorForInterleavedSequences(adapter).encode_row(row))
    with pytest.raises(ValueError, match=r"row 7: the sequence is \d+ tokens.*max_length=20"):
        DataCollatorForInterleavedSequences(adapter, max_length=20)([row])
    cut = DataCollatorForInterleavedSequences(adapter, max_length=full - 3, truncate_reasoning=True).encode_row(row)
    assert len(cut) == full - 3
    assert cut.labels[-18:-1] == [adapter.boi_token_id] + [0] * 16  # the image is intact
    with pytest.raises(ValueError, match="even with no reasoning"):
        DataCollatorForInterleavedSequences(adapter, max_length=10, truncate_reasoning=True)([row])


def test_pad_to_multiple_of(adapter):
    batch = DataCollatorForInterleavedSequences(adapter, pad_to_multiple_of=8)([{"prompt": "a red dot"}])
    assert batch["input_ids"].shape[1] % 8 == 0
    assert torch.equal(batch["attention_mask"].sum(1), torch.tensor([5]))
