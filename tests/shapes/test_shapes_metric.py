import random
import re

import pytest

from trl_unified.shapes import generate_prompts, random_scene_for, render, shapes_metric_path, verify


def test_metric_loads_offline_and_matches_verify():
    import evaluate  # slow to import; keep it out of collection

    metric = evaluate.load(shapes_metric_path())
    rng = random.Random(0)
    prompts = generate_prompts(20, seed=9, as_text=True)
    predictions = []
    for index, prompt in enumerate(prompts):
        # Draw the scene of a neighbouring prompt for every third sample, so some predictions are wrong.
        source = prompts[(index + 1) % len(prompts)] if index % 3 == 0 else prompt
        predictions.append(render(random_scene_for(source, rng)))
    verdicts = [verify(prompt, codes) for prompt, codes in zip(prompts, predictions)]
    expected = sum(v.correct for v in verdicts) / len(verdicts)
    assert 0 < expected < 1
    result = metric.compute(predictions=predictions, references=prompts)
    assert result["accuracy"] == pytest.approx(expected)
    assert result["num_samples"] == 20
    assert result["partial_credit"] == pytest.approx(sum(v.partial_credit for v in verdicts) / 20)
    for category in ("single", "two_object", "counting", "color_attr", "position"):
        members = [v for v, p in zip(verdicts, generate_prompts(20, seed=9)) if p.category == category]
        assert result[f"accuracy_{category}"] == pytest.approx(sum(v.correct for v in members) / len(members))


def test_metric_module_imports_one_per_line():
    with open(shapes_metric_path()) as handle:
        lines = handle.read().splitlines()
    # evaluate's dependency check reads lines starting with `import` / `from`; any comma there would be misread.
    import_lines = [line for line in lines if re.match(r"^(import|from)\s", line)]
    assert len(import_lines) == 5
    assert all(re.fullmatch(r"import \w+|from [\w.]+ import \w+", line) for line in import_lines)
