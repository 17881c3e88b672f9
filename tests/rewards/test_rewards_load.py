import math
import textwrap

import pytest

from trl_unified import rewards as R
from trl_unified.rewards import (
    REWARD_REGISTRY,
    CLIPScoreReward,
    ReasoningFaithfulnessReward,
    VQAScoreReward,
    load_reward,
    register_reward,
    score_batch,
)


def test_model_forms_load_from_local_dirs(clip_dir, llava_dir, judge_dir):
    clip = load_reward(f"clip:{clip_dir}", scale="clipscore")
    vqa = load_reward(f"vqascore:{llava_dir}", batch_size=2)
    judge = load_reward(f" judge:{judge_dir} ")
    assert isinstance(clip, CLIPScoreReward) and clip.scale == "clipscore"
    assert isinstance(vqa, VQAScoreReward) and vqa.batch_size == 2
    assert isinstance(judge, ReasoningFaithfulnessReward)
    assert [R.reward_name(r) for r in (clip, vqa, judge)] == ["clip_score", "vqa_score", "reasoning_faithfulness"]


def test_python_form_imports_a_callable(tmp_path, monkeypatch):
    (tmp_path / "my_rewards_mod.py").write_text(
        textwrap.dedent(
            """
            def short(prompts, reasoning, images, **columns):
                return [-float(len(r)) for r in reasoning]

            class Holder:
                @staticmethod
                def nested(prompts, reasoning, images, **columns):
                    return [1.0] * len(prompts)

            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = load_reward("python:my_rewards_mod:short")
    assert fn(["p"], ["abc"], [None]) == [-3.0]
    assert load_reward("python:my_rewards_mod:Holder.nested")(["p", "q"], ["", ""], [None, None]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="not callable"):
        load_reward("python:my_rewards_mod:NOT_CALLABLE")
    with pytest.raises(ValueError, match="no attribute 'missing'"):
        load_reward("python:my_rewards_mod:missing")
    with pytest.raises(ValueError, match="cannot import module"):
        load_reward("python:no_such_module_xyz:f")
    with pytest.raises(ValueError, match="python:<module>:<function>"):
        load_reward("python:my_rewards_mod")


def test_registry_names(monkeypatch):
    def shapes_test_reward(prompts, reasoning, images, **columns):
        return [0.5] * len(prompts)

    monkeypatch.setitem(REWARD_REGISTRY, "shapes_test", shapes_test_reward)
    assert load_reward("shapes_test") is shapes_test_reward

    monkeypatch.setitem(REWARD_REGISTRY, "decorated_test", None)  # so teardown removes the entry
    decorated = register_reward("decorated_test")(shapes_test_reward)
    assert decorated is shapes_test_reward
    assert load_reward("decorated_test") is shapes_test_reward
    with pytest.raises(ValueError, match="':'"):
        register_reward("bad:name", shapes_test_reward)


def test_unknown_specs_list_valid_forms(monkeypatch):
    monkeypatch.setitem(REWARD_REGISTRY, "shapes_test", lambda p, r, i: [])
    for spec in ["nonsense", "clipp:/x", "", "clip:"]:
        with pytest.raises(ValueError) as info:
            load_reward(spec)
        message = str(info.value)
        for form in ("clip:<model path>", "vqascore:<model path>", "judge:<model path>", "python:<module>:<function>"):
            assert form in message
        assert "shapes_test" in message


def test_loaded_rewards_through_score_batch(clip_dir, llava_dir, judge_dir, images):
    clip, vqa, judge = (load_reward(s) for s in (f"clip:{clip_dir}", f"vqascore:{llava_dir}", f"judge:{judge_dir}"))
    prompts = ["a red circle", "two blue squares"]
    reasoning = ["draw a red circle", "two squares"]
    result = score_batch([judge], [clip, vqa], prompts, reasoning, [images[0], None], image_reward_weights=[0.5, 2.0])
    assert result.num_failed == 1 and result.failed == [False, True]
    assert result.reward_errors[1] == ["image/clip_score: returned None", "image/vqa_score: returned None"]
    assert result.image_reward[0] == pytest.approx(
        0.5 * result.rewards["image/clip_score"][0] + 2.0 * result.rewards["image/vqa_score"][0]
    )
    assert math.isnan(result.image_reward[1])
    assert all(math.isfinite(v) for v in result.text_reward)
    assert result.text_reward == result.rewards["text/reasoning_faithfulness"]
