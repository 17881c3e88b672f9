"""The shapes world's tiny unified model: generic adapter, from_pretrained round trip, base-model corpus."""

import torch

from trl_unified.models.causal_lm import CausalLMAdapter
from trl_unified.models.registry import get_adapter
from trl_unified.rewards.registry import load_reward
from trl_unified.shapes import ShapesImageCodec, is_held_out, parse_prompt
from trl_unified.shapes.model import build_shapes_model, load_shapes_model
from trl_unified.shapes.recipe import base_corpus


def test_shapes_model_round_trip_and_adapter(tmp_path):
    model, tokenizer = build_shapes_model(seed=0, hidden_size=32, num_layers=1, num_heads=2)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_shapes_model(tmp_path)
    ids = torch.tensor([tokenizer("a red square")["input_ids"]])
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    adapter = get_adapter(loaded, loaded_tokenizer)
    assert isinstance(adapter, CausalLMAdapter)
    assert adapter.num_image_tokens == 64 and adapter.codebook_size == 8
    assert loaded_tokenizer.convert_ids_to_tokens(adapter.image_token_ids) == [f"<img_{i}>" for i in range(8)]
    codes = [i % 8 for i in range(64)]
    assert ShapesImageCodec().encode(adapter.decode_images(loaded, torch.tensor([codes]))[0]) == codes


def test_base_corpus_masks_begin_of_image_and_never_uses_held_out_prompts():
    from trl_unified.shapes import build_shapes_tokenizer

    tokenizer = build_shapes_tokenizer()
    boi = tokenizer.convert_tokens_to_ids("<boi>")
    corpus = base_corpus(200, seed=1, planned_fraction=0.5)
    kinds = {"plan": 0, "picture": 0, "planned picture": 0}
    for row in corpus:
        ids, labels = row["input_ids"], row["labels"]
        words = tokenizer.decode(ids, skip_special_tokens=True).split()
        prompt = " ".join(words[: words.index("plan")] if "plan" in words else words)
        assert not is_held_out(parse_prompt(prompt))
        if boi in ids:
            position = ids.index(boi)
            assert labels[position] == -100  # the switch is never taught
            assert len(ids) - position - 1 == 64
            kinds["planned picture" if "plan" in words else "picture"] += 1
        else:
            assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id
            kinds["plan"] += 1
    assert all(count > 20 for count in kinds.values())


def test_default_base_corpus_draws_some_pictures_straight_from_the_prompt():
    """15% of the rows (a quarter of the 60% that are pictures) are `[prompt] <boi> [codes]`: the base model can draw
    in image-only mode, so the study's third finding compares something (docs/shapes_world.md states this rate)."""
    from trl_unified.shapes import build_shapes_tokenizer

    tokenizer = build_shapes_tokenizer()
    boi = tokenizer.convert_tokens_to_ids("<boi>")
    plan = tokenizer.convert_tokens_to_ids("plan")
    rows = base_corpus(2000, seed=3)
    bare = sum(boi in r["input_ids"] and plan not in r["input_ids"] for r in rows)
    pictures = sum(boi in r["input_ids"] for r in rows)
    assert 0.12 < bare / len(rows) < 0.18 and 0.55 < pictures / len(rows) < 0.65


def test_base_corpus_leaves_an_object_out_of_some_prompts():
    from trl_unified.shapes import build_shapes_tokenizer, plan_score

    tokenizer = build_shapes_tokenizer()
    plans = []
    for row in base_corpus(400, seed=2, unrequested_fraction=0.25, planned_fraction=1.0):
        words = tokenizer.decode(row["input_ids"], skip_special_tokens=True).split()
        end = words.index("<boi>") if "<boi>" in words else len(words)
        plans.append((" ".join(words[: words.index("plan")]), " ".join(words[words.index("plan") : end])))
    unrequested = sum(plan_score(prompt, plan) < 1 for prompt, plan in plans)
    assert 0.18 < unrequested / len(plans) < 0.32  # about a quarter; the rest are correct plans
    clean = base_corpus(100, seed=2, unrequested_fraction=0.0, planned_fraction=1.0)
    for row in clean:
        words = tokenizer.decode(row["input_ids"], skip_special_tokens=True).split()
        end = words.index("<boi>") if "<boi>" in words else len(words)
        assert plan_score(" ".join(words[: words.index("plan")]), " ".join(words[words.index("plan") : end])) == 1


def test_builtin_shapes_rewards_load_by_name():
    assert load_reward("shapes_image")(["a red dot"], [""], [[0] * 64]) == [0.0]
    assert load_reward("shapes_text").__name__ == "shapes_text_reward"
