"""Prompt sets from text, JSONL (GenEval's metadata too), datasets and lists; errors name the line or row."""

import json

import pytest
from datasets import Dataset

from trl_unified.evaluation import load_prompt_set
from trl_unified.shapes.prompt_source import shapes_category


def test_text_file_with_tab_categories_and_a_categorizer(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("counting\ttwo cats\n\nsingle\ta dog\nno tab here\n")
    prompts = load_prompt_set(path)
    assert prompts.prompts == ["two cats", "a dog", "no tab here"]
    assert prompts.categories == ["counting", "single", "all"]
    shapes = tmp_path / "s.txt"
    shapes.write_text("a red square\ntwo blue dots\n\nthree purple blobs\n")
    with pytest.raises(ValueError, match=r"s.txt, line 4: .*blobs"):
        load_prompt_set(shapes, categorize=shapes_category)
    shapes.write_text("a red square\ntwo blue dots\n")
    assert load_prompt_set(shapes, categorize=shapes_category).categories == ["single", "counting"]


def test_geneval_metadata_reads_as_it_is(tmp_path):
    rows = [
        {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
        {
            "tag": "counting",
            "include": [{"class": "dog", "count": 2}],
            "exclude": [{"class": "dog", "count": 3}],
            "prompt": "a photo of two dogs",
        },
    ]
    path = tmp_path / "evaluation_metadata.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prompts = load_prompt_set(path)
    assert prompts.categories == ["single_object", "counting"]
    assert prompts.metadata == rows  # kept whole, for GenEval's output layout
    assert prompts.by_category() == {"single_object": ["a photo of a bench"], "counting": ["a photo of two dogs"]}


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a cat", "category": "single"}\n\n{"prompt": "two cats"}\n')
    with pytest.raises(ValueError, match=r"p.jsonl, line 3: the category .* is missing"):
        load_prompt_set(path)
    path.write_text('{"prompt": "a cat", "category": "single"}\n{"prompt": \n')
    with pytest.raises(ValueError, match=r"line 2: not JSON"):
        load_prompt_set(path)
    path.write_text('{"text": "a cat", "category": "single"}\n')
    with pytest.raises(ValueError, match=r"line 1: no 'prompt' field"):
        load_prompt_set(path)
    path.write_text('{"text": "a cat", "kind": "single"}\n')
    assert load_prompt_set(path, prompt_column="text", category_column="kind").to_rows() == [
        {"prompt": "a cat", "category": "single"}
    ]


def test_dataset_folder_and_lists(tmp_path):
    Dataset.from_dict({"prompt": ["a cat", "two dogs"], "category": ["single", "counting"]}).save_to_disk(
        tmp_path / "d"
    )
    prompts = load_prompt_set(str(tmp_path / "d"))
    assert prompts.prompts == ["a cat", "two dogs"] and prompts.category_names == ["single", "counting"]
    Dataset.from_dict({"prompt": ["a cat", ""], "category": ["single", "counting"]}).save_to_disk(tmp_path / "bad")
    with pytest.raises(ValueError, match=r"bad, row 1: the prompt must be a non-empty string"):
        load_prompt_set(str(tmp_path / "bad"))
    assert load_prompt_set([{"prompt": "a", "category": "x"}], max_prompts=1).categories == ["x"]
    with pytest.raises(ValueError, match="holds no prompt"):
        load_prompt_set([])
