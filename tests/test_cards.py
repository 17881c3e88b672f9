"""Model and dataset cards: Hub metadata in the form the Hub accepts, the base model, training dataset and licence
found by themselves (from the Hub, the Hub cache, a local folder), images the dataset viewer shows, and a quick start
that runs."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import Dataset, load_dataset, load_from_disk
from datasets import Image as ImageFeature
from huggingface_hub import DatasetCard, ModelCard, snapshot_download
from huggingface_hub.utils import validate_repo_id
from peft import LoraConfig
from PIL import Image

from trl_unified import RewardWeightedMultimodalConfig, RewardWeightedMultimodalTrainer
from trl_unified.cards import card_license, dataset_origin, hub_id_of, quick_start_code
from trl_unified.generation.run_state import RUN_FILE
from trl_unified.generation.self_generation import self_generate
from trl_unified.generation.self_generation_config import SelfGenerationConfig
from trl_unified.models.registry import load_pretrained
from trl_unified.shapes import generate_prompts, shapes_image_partial_reward, shapes_text_reward
from trl_unified.testing.causal_lm import tiny_causal_lm

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "scripts" / "generate_with_adapter.py"

# What the Hub accepts, pinned offline (the Hub's own check, /api/validate-yaml, needs the network):
# `pipeline_tag` / `task_categories`: keys of PIPELINE_DATA in huggingface.js packages/tasks/src/pipelines.ts (the
# multimodal and image ones); `license`: ids from the Hub's licence list
# (huggingface.co/docs/hub/repositories-licenses).
PIPELINE_TAGS = {"text-to-image", "any-to-any", "image-text-to-text", "image-to-text", "text-generation", "other"}
DATASET_TASKS = PIPELINE_TAGS - {"any-to-any", "image-text-to-text"}  # hideInDatasets in PIPELINE_DATA
LICENSES = {"apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc0-1.0", "openrail", "other"}
SIZE_CATEGORY = re.compile(r"^(n<1K|1K<n<10K|10K<n<100K|100K<n<1M|1M<n<10M|n>10M)$")


def check_hub_metadata(data: dict, repo_type: str) -> None:
    """The checks the Hub makes on the fields our cards write (types, repo ids, known tasks and licences)."""
    for key in ("base_model", "datasets", "source_datasets"):
        if key in data:
            values = data[key] if isinstance(data[key], list) else [data[key]]
            assert values and all(isinstance(v, str) for v in values), (key, data[key])
            for value in values:
                validate_repo_id(value)
                assert "/" in value, f"{key}: {value!r} is not a full repo id"
    if "license" in data:
        assert data["license"] in LICENSES, data["license"]
        if data["license"] == "other":
            assert data.get("license_name"), "license: other needs license_name"
    assert isinstance(data.get("tags"), list) and all(isinstance(t, str) for t in data["tags"])
    if repo_type == "model":
        assert data["library_name"] in {"peft", "transformers"}
        assert data["pipeline_tag"] in PIPELINE_TAGS
    else:
        assert set(data["task_categories"]) <= DATASET_TASKS
        assert all(SIZE_CATEGORY.match(s) for s in data["size_categories"])


def code_block(text: str, language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"no {language} block"
    return blocks[0]


def shapes_rows(n, seed=0):
    return [
        {"prompt": spec.to_text(), "prompt_id": f"shape-{i}"} for i, spec in enumerate(generate_prompts(n, seed=seed))
    ]


def generation_config(tmp_path, name, **overrides):
    settings = {
        "output_dir": str(tmp_path / name),
        "num_samples": 2,
        "shard_size": 4,
        "max_text_tokens": 6,
        "seed": 1,
        "progress": False,
    }
    return SelfGenerationConfig(**{**settings, **overrides})


def tiny_shapes_model(seed=0):
    model, tokenizer = tiny_causal_lm(seed=seed, image_codec="shapes", num_image_tokens=64)
    return model.eval(), tokenizer


def training_args(output_dir, **overrides):
    settings = {
        "output_dir": str(output_dir), "per_device_train_batch_size": 2, "max_steps": 1, "report_to": "none",
        "use_cpu": True, "save_strategy": "no", "disable_tqdm": True, "seed": 3, "lr_scheduler_type": "cosine",
        "warmup_steps": 0.1,
    }  # fmt: skip
    return RewardWeightedMultimodalConfig(**{**settings, **overrides})


LORA = {"r": 4, "lora_alpha": 8, "target_modules": None, "modules_to_save": ["lm_head"]}


# ----- from and to the Hub ------------------------------------------------------------------------------------------
def test_cards_through_the_hub(tmp_path, local_hub):
    """A base model on the Hub (MIT in its card) -> self-generated dataset pushed -> loaded back from the Hub ->
    trained adapter pushed: every card names where things came from, with metadata the Hub accepts."""
    model, tokenizer = tiny_shapes_model()
    model.push_to_hub("test-user/tiny-base")
    tokenizer.push_to_hub("test-user/tiny-base")
    ModelCard("---\nlicense: mit\n---\n# tiny base\n").push_to_hub("test-user/tiny-base")
    model = load_pretrained("test-user/tiny-base").eval()  # an instance: the card finds its Hub id in its config

    config = generation_config(tmp_path, "gen", push_to_hub=True, hub_dataset_id="tiny-selfgen")  # no namespace
    Dataset.from_list(shapes_rows(3)).push_to_hub("test-user/shape-prompts")
    generated = self_generate(
        model, tokenizer, "test-user/shape-prompts", config, [shapes_text_reward], [shapes_image_partial_reward]
    )
    run = json.loads((tmp_path / "gen" / RUN_FILE).read_text())
    assert run["hub_dataset_id"] == "test-user/tiny-selfgen"  # resolved to the full id before the card is written

    # the dataset card
    files = local_hub.files("test-user/tiny-selfgen", repo_type="dataset")
    card = DatasetCard(files["README.md"].decode())
    data = card.data.to_dict()
    check_hub_metadata(data, "dataset")
    assert data["license"] == "mit"  # the model's licence, read from its card on the Hub
    assert data["source_datasets"] == ["test-user/shape-prompts"]
    assert "[`test-user/tiny-base`](https://huggingface.co/test-user/tiny-base)" in card.text
    assert "(in-memory model)" not in card.text and "<model>" not in card.text
    assert 'load_dataset("test-user/tiny-selfgen", split="train")' in code_block(card.text, "python")
    assert "--model_name_or_path test-user/tiny-base --dataset_name test-user/tiny-selfgen" in card.text
    assert "eprint        = {2601.04339}" in card.text and "vonwerra2020trl" in card.text
    assert (
        "{{Unified Text-Image Generation with Weakness-Targeted Post-Training}}" in card.text
        and "Chen, Jiahui" in card.text
    )

    # the dataset viewer shows images: the parquet's `datasets` schema and the card's features say Image, bytes inside
    parquet = [name for name in files if name.startswith("data/") and name.endswith(".parquet")]
    table = pq.read_table(io.BytesIO(files[parquet[0]]))
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"}
    assert table.column("image").to_pylist()[0]["bytes"][:4] == b"\x89PNG"
    assert {"name": "image", "dtype": "image"} in data["dataset_info"]["features"]
    train = load_dataset("test-user/tiny-selfgen", split="train")
    assert isinstance(train.features["image"], ImageFeature) and isinstance(train[0]["image"], Image.Image)
    origin = dataset_origin(train)  # the repo, from the datasets cache; its run file, from the Hub
    assert (origin["hub_id"], origin["config"], origin["run"]) == ("test-user/tiny-selfgen", "default", run)

    # the adapter's card, trained on the dataset loaded from the Hub
    args = training_args(tmp_path / "rwr", push_to_hub=True, hub_model_id="test-user/tiny-rwr", hub_strategy="end")
    trainer = RewardWeightedMultimodalTrainer(
        "test-user/tiny-base", args=args, train_dataset=train, peft_config=LoraConfig(**LORA)
    )
    trainer.train()
    trainer.push_to_hub()
    card = ModelCard(local_hub.files("test-user/tiny-rwr")["README.md"].decode())
    data = card.data.to_dict()
    check_hub_metadata(data, "model")
    assert data["base_model"] == "test-user/tiny-base" and data["datasets"] == ["test-user/tiny-selfgen"]
    assert (data["library_name"], data["pipeline_tag"], data["license"]) == ("peft", "text-to-image", "mit")
    assert {"trl", "trl-unified", "reward-weighted-regression"} <= set(data["tags"])
    for needle in (
        "| rank `r` | 4 |", "| `lora_alpha` | 8 |", "`lm_head`", "| seed | 3 |", "`cosine`, warmup 0.1 of the steps",
        f"`{args.optim.value}`", run["fingerprint"], "eprint        = {2601.04339}", "vonwerra2020trl",
    ):  # fmt: skip
        assert needle in card.text, needle
    for column in ("text_reward", "image_reward"):  # the rewards of the model's own samples, before training
        values = generated[column]
        assert f"| `{column}` | {sum(values) / len(values):.4g} |" in card.text
    assert code_block(card.text, "python") == quick_start_code(
        "test-user/tiny-base", "test-user/tiny-rwr", train[0]["prompt"]
    )

    # a model loaded from its Hub-cache folder is still that Hub model
    snapshot = snapshot_download("test-user/tiny-base")
    assert hub_id_of(snapshot) == "test-user/tiny-base" and card_license(snapshot) == {"license": "mit"}
    trainer = RewardWeightedMultimodalTrainer(
        load_pretrained(snapshot),
        args=training_args(tmp_path / "cached"),
        train_dataset=train,
        processing_class=tokenizer,
    )
    trainer.create_model_card()
    data = ModelCard.load(tmp_path / "cached" / "README.md").data.to_dict()
    check_hub_metadata(data, "model")
    assert data["base_model"] == "test-user/tiny-base" and data["library_name"] == "transformers"


# ----- offline: local folders and in-memory objects -----------------------------------------------------------------
def test_local_cards_and_the_quick_start_runs(tmp_path):
    """A base model in a local folder, a self-generated dataset on disk (not pushed), an adapter saved: the cards name
    the folders, claim no Hub link, and the card's quick start (= the example script) draws images."""
    model, tokenizer = tiny_shapes_model()
    base = tmp_path / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    model = load_pretrained(str(base)).eval()

    config = generation_config(tmp_path, "gen", license="cc-by-4.0")
    generated = self_generate(
        model, tokenizer, shapes_rows(2), config, [shapes_text_reward], [shapes_image_partial_reward]
    )
    card = DatasetCard.load(tmp_path / "gen" / "README.md")
    data = card.data.to_dict()
    check_hub_metadata(data, "dataset")
    assert data["license"] == "cc-by-4.0" and "source_datasets" not in data
    assert f'load_from_disk("{tmp_path / "gen"}")' in code_block(card.text, "python")
    assert f"`{base}`" in card.text

    train = load_from_disk(str(tmp_path / "gen")).filter(lambda row: not row["reward_failed"])  # as the card says
    trainer = RewardWeightedMultimodalTrainer(
        str(base), args=training_args(tmp_path / "rwr"), train_dataset=train, peft_config=LoraConfig(**LORA)
    )
    trainer.train()
    adapter = tmp_path / "adapter"
    trainer.save_model(str(adapter))
    card = ModelCard.load(adapter / "README.md")
    data = card.data.to_dict()
    check_hub_metadata(data, "model")
    assert not {"base_model", "datasets", "license"} & set(data)  # nothing on the Hub, no licence known
    assert f"`{base}`" in card.text and f"`{tmp_path / 'gen'}`" in card.text
    assert json.loads((tmp_path / "gen" / RUN_FILE).read_text())["fingerprint"] in card.text
    assert "Not recorded" in card.text.split("## Licence")[1]

    # what the caller knows wins
    trainer.create_model_card(license="apache-2.0", finetuned_from="org/base", dataset_name="org/data")
    data = ModelCard.load(tmp_path / "rwr" / "README.md").data.to_dict()
    check_hub_metadata(data, "model")
    assert (data["license"], data["base_model"], data["datasets"]) == ("apache-2.0", "org/base", ["org/data"])

    # the card's quick start runs as it is (in a fresh process, from the folder it saves its PNGs in) ...
    prompt = generated[0]["prompt"]
    code = code_block(card.text, "python")
    assert code == quick_start_code(str(base), str(adapter), prompt)
    out = tmp_path / "card_run"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=out, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # ... and so does the example script, which runs the same code
    cmd = [sys.executable, str(EXAMPLE), "--model_name_or_path", str(base), "--adapter", str(adapter),
           "--prompt", prompt, "--output_dir", str(tmp_path / "example_run")]  # fmt: skip
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for folder in (out, tmp_path / "example_run"):
        pngs = sorted(p.name for p in folder.glob("*.png"))
        assert pngs == [f"sample_{i}.png" for i in range(4)]
        assert Image.open(folder / pngs[0]).size == (64, 64)
    assert (out / "sample_0.png").read_bytes() == (tmp_path / "example_run" / "sample_0.png").read_bytes()  # same seed
    assert "switched to the image by itself" in result.stdout


def test_dataset_card_of_a_model_with_no_name(tmp_path):
    """A model built in Python has no name: the card says so (no placeholder that looks like a model id)."""
    model, tokenizer = tiny_shapes_model()
    model.config._name_or_path = ""
    tokenizer.name_or_path = ""
    self_generate(model, tokenizer, shapes_rows(1), generation_config(tmp_path, "gen"), [shapes_text_reward], [])
    card = DatasetCard.load(tmp_path / "gen" / "README.md")
    check_hub_metadata(card.data.to_dict(), "dataset")
    assert "passed in Python with no name or path" in card.text and "license" not in card.data.to_dict()
    assert "weights digest" in card.text


def test_hub_ids_and_dataset_origins(tmp_path, monkeypatch):
    from trl_unified import cards

    assert cards.RUN_FILE == RUN_FILE  # the cards read the file self-generation writes
    assert hub_id_of("org/name") == "org/name"
    assert hub_id_of(str(tmp_path)) is None and hub_id_of(None) is None and hub_id_of("not a/repo id") is None
    snapshot = tmp_path / "hub" / "models--org--name" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    assert hub_id_of(str(snapshot)) == "org/name"
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert hub_id_of("org/name") is None  # a local folder that looks like a repo id is a local folder
    in_memory = Dataset.from_dict({"a": [1]})
    assert dataset_origin(in_memory) == {}
    in_memory.save_to_disk(str(tmp_path / "saved"))
    assert dataset_origin(load_from_disk(str(tmp_path / "saved"))) == {"path": str(tmp_path / "saved")}


@pytest.mark.parametrize("family", ["janus", "emu3"])
def test_families_that_also_read_images_are_any_to_any(family, tmp_path):
    from trl_unified.testing.families import tiny_model

    model, processor = tiny_model(family, seed=0)
    args = RewardWeightedMultimodalConfig(str(tmp_path), report_to="none", use_cpu=True)
    trainer = RewardWeightedMultimodalTrainer(model, args=args, processing_class=processor)
    trainer.create_model_card()
    card = ModelCard.load(tmp_path / "README.md")
    check_hub_metadata(card.data.to_dict(), "model")
    assert card.data.pipeline_tag == "any-to-any" and card.data.library_name == "transformers"
    assert f"| model family (adapter) | `{family}` |" in card.text and "## Quick start" not in card.text  # no adapter
