"""evaluate_model on the shapes base model (its verifier as reward) and on a tiny Janus (a Python reward): rows, numbers,
files, GenEval layout, reload, reporters."""

import json

import pytest
from PIL import Image

from trl_unified.evaluation import evaluate_model, load_evaluation, load_prompt_set, report_samples
from trl_unified.generation.sampler import SamplingConfig
from trl_unified.shapes.prompt_source import shapes_category
from trl_unified.shapes.rewards import shapes_image_reward, shapes_text_reward
from trl_unified.shapes.verify import verify

PROMPTS = ["a red square", "two blue dots", "three green dots", "a green hbar left of a white dot"]
SAMPLING = SamplingConfig(max_text_tokens=48, guidance_scale=1.0, batch_size=16, seed=0)


class FakeReporter:
    """Any reporter: what `report_samples` hands to a callback with an `on_samples` method."""

    def __init__(self):
        self.calls = []

    def on_samples(self, name, rows, images, step):
        self.calls.append((name, rows, images, step))


def test_shapes_evaluation_numbers_rows_and_files(shapes_model, tmp_path):
    model, tokenizer = shapes_model
    reporter = FakeReporter()
    prompts = load_prompt_set(PROMPTS, categorize=shapes_category)
    result = evaluate_model(
        model,
        tokenizer,
        prompts,
        image_rewards=[shapes_image_reward],
        text_rewards=[shapes_text_reward],
        mode="unified",
        samples_per_prompt=3,
        sampling=SAMPLING,
        metric="image/shapes_image_reward",
        output_dir=tmp_path,
        name="base",
        geneval_layout=True,
        callbacks=[reporter],
        progress=False,
    )
    assert result.num_samples == 12 and list(result.categories) == ["single", "counting", "position"]
    folder = tmp_path / "base"
    for row in result.rows:  # the verdict is the verifier's, on the saved image
        assert row["correct"] == verify(row["prompt"], Image.open(folder / row["image"])).correct
        assert row["rewards"]["text/shapes_text_reward"] is not None and row["mode"] == "unified"
    counting = [r for r in result.rows if r["category"] == "counting"]
    assert result.categories["counting"].num_samples == 6
    assert result.accuracy["counting"] == sum(r["correct"] for r in counting) / 6
    acc = result.categories["counting"].accuracy
    assert acc.method == "wilson" and acc.low <= acc.estimate <= acc.high
    assert result.mean_reasoning_tokens > 0  # the base model plans before drawing
    # files: samples, images, grid, results, report, GenEval layout
    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [p for p in PROMPTS for _ in range(3)]
    assert json.loads((folder / "results.json").read_text())["categories"]["counting"]["num_samples"] == 6
    grid = Image.open(folder / "grid.png").convert("RGB")
    assert grid.size == (8 * 136, 2 * (136 + 40))  # 12 tiles, a caption under each
    caption = grid.crop((0, 136, 136, 176))  # under the first picture: its prompt, in light text
    assert sum(1 for p in caption.getdata() if min(p) > 150) > 30
    assert all(p == (30, 30, 30) for p in grid.crop((4 * 136, 176 + 136, 5 * 136, 2 * 176)).getdata())  # no tile 13
    assert (folder / "report.html").stat().st_size > 1000
    for index, prompt in enumerate(PROMPTS):
        geneval = folder / "geneval" / f"{index:05d}"
        assert json.loads((geneval / "metadata.jsonl").read_text()) == {
            "prompt": prompt,
            "category": shapes_category(prompt),
        }
        assert sorted(p.name for p in (geneval / "samples").iterdir()) == ["0000.png", "0001.png", "0002.png"]
    assert (
        Image.open(folder / "geneval/00001/samples/0002.png").tobytes()
        == Image.open(folder / rows[5]["image"]).tobytes()
    )
    # reload
    again = load_evaluation(folder)
    assert again.accuracy == result.accuracy and again.rows[0]["prompt"] == PROMPTS[0]
    assert again.summary()["categories"] == json.loads(json.dumps(result.summary()["categories"]))
    # reporters: the fake one got the table and the images
    ((name, table, images, _),) = reporter.calls
    assert name == "eval/base" and len(table) == len(images) == 12 and images[0].size == (64, 64)


def test_samples_per_category_and_metric_errors(shapes_model):
    model, tokenizer = shapes_model
    prompts = load_prompt_set(
        ["a red square"] + [f"{n} green dots" for n in ("two", "three", "four")], categorize=shapes_category
    )
    result = evaluate_model(
        model,
        tokenizer,
        prompts,
        image_rewards=[shapes_image_reward],
        mode="image_only",
        samples_per_category=6,
        sampling=SAMPLING,
        progress=False,
    )
    assert result.categories["single"].num_samples == 6 and result.categories["counting"].num_samples == 6
    assert result.switch_rate == 0 and result.mean_reasoning_tokens == 0
    assert {r["prompt_index"] for r in result.rows if r["category"] == "single"} == {0}
    with pytest.raises(ValueError, match="metric 'image/clip' is not a reward column"):
        evaluate_model(
            model,
            tokenizer,
            prompts,
            image_rewards=[shapes_image_reward],
            metric="image/clip",
            sampling=SAMPLING,
            progress=False,
        )


def test_any_model_family_with_a_python_reward(tmp_path):
    from trl_unified.testing.janus import tiny_janus

    model, processor = tiny_janus(seed=0)

    seen = []

    def brightness(prompts, reasoning, images, **columns):
        seen.append(columns)
        return [sum(image.convert("L").getdata()) / (255 * image.width * image.height) for image in images]

    result = evaluate_model(
        model,
        processor,
        [{"prompt": "a cat", "category": "animals"}, {"prompt": "a bus", "category": "vehicles"}],
        image_rewards=[brightness],
        mode="staged",
        samples_per_prompt=2,
        output_dir=tmp_path,
        name="janus",
        sampling=SamplingConfig(max_text_tokens=4, guidance_scale=2.0, batch_size=4),
        progress=False,
    )
    assert result.num_samples == 4 and set(result.categories) == {"animals", "vehicles"}
    assert seen[0]["category"] == ["animals", "animals", "vehicles", "vehicles"]
    assert seen[0]["metadata"][2] == {"prompt": "a bus", "category": "vehicles"}
    score = result.categories["animals"].score
    assert score.method == "t" and 0 <= score.estimate <= 1  # a continuous reward: t interval
    assert all(r["score"] == r["rewards"]["image/brightness"] for r in result.rows)
    assert all(r["correct"] == (r["score"] >= 0.5) for r in result.rows)


def test_report_samples_goes_to_callbacks_and_to_an_active_wandb_run(monkeypatch):
    import sys
    import types

    reporter = FakeReporter()
    rows = [
        {
            "prompt": "p",
            "category": "c",
            "reasoning": "r",
            "score": 1.0,
            "correct": True,
            "switched": False,
            "rewards": {"image/x": 1.0},
        }
    ]
    image = Image.new("RGB", (4, 4))
    assert report_samples("eval/x", rows, [image], callbacks=[reporter, object()], step=3) == ["FakeReporter"]
    assert reporter.calls[0][0] == "eval/x" and reporter.calls[0][3] == 3

    logged = []
    fake = types.SimpleNamespace(
        run=object(),
        Image=lambda im: ("wandb.Image", im.size),
        Table=lambda columns, data: (columns, data),
        log=lambda payload, step=None: logged.append((payload, step)),
    )
    monkeypatch.setitem(sys.modules, "wandb", fake)
    assert report_samples("eval/x", rows, [image], report_to=["wandb"], step=5) == ["wandb"]
    ((payload, step),) = logged
    columns, data = payload["eval/x"]
    assert step == 5 and columns[:4] == ["prompt", "category", "reasoning", "image"] and "image/x" in columns
    assert data == [["p", "c", "r", ("wandb.Image", (4, 4)), 1.0, True, False, 1.0]]
    assert report_samples("eval/x", rows, [image], report_to="none") == []
    fake.run = None  # wandb installed but no run: nothing logged
    assert report_samples("eval/x", rows, [image], report_to="all") == [] and len(logged) == 1


def test_self_generation_sends_its_samples_to_the_reporters(shapes_model, tmp_path):
    from trl_unified.generation.self_generation import self_generate
    from trl_unified.generation.self_generation_config import SelfGenerationConfig

    model, tokenizer = shapes_model
    reporter = FakeReporter()
    config = SelfGenerationConfig(
        output_dir=str(tmp_path / "gen"), num_samples=2, max_text_tokens=48, guidance_scale=1.0, progress=False
    )
    dataset = self_generate(
        model,
        tokenizer,
        [{"prompt": "a red square", "category": "single"}],
        config,
        image_rewards=[shapes_image_reward],
        callbacks=[reporter],
    )
    ((name, rows, images, _),) = reporter.calls
    assert name == "self_generation" and len(rows) == len(images) == len(dataset) == 2
    assert rows[0]["category"] == "single" and rows[0]["rewards"]["image/shapes_image_reward"] in (0.0, 1.0)
    assert images[0].size == (64, 64)


def test_report_samples_to_trainer_uses_its_reporters_callbacks_and_step():
    import types

    from trl_unified.evaluation import report_samples_to_trainer

    reporter = FakeReporter()
    trainer = types.SimpleNamespace(
        args=types.SimpleNamespace(report_to=["none"]),
        callback_handler=types.SimpleNamespace(callbacks=[object(), reporter]),
        state=types.SimpleNamespace(global_step=42),
    )
    rows = [
        {
            "prompt": "p",
            "category": "c",
            "reasoning": "",
            "score": 0.0,
            "correct": False,
            "switched": False,
            "rewards": {},
        }
    ]
    assert report_samples_to_trainer(trainer, "eval/after", rows, [None]) == ["FakeReporter"]
    assert reporter.calls == [("eval/after", rows, [None], 42)]
