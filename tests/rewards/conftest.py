"""Session fixtures: the tiny judge models of ``trl_unified.testing.judges``, saved once to local folders."""

from __future__ import annotations

import pytest

from trl_unified.testing.judges import (
    CHAT_TEMPLATE,
    random_images,
    save_tiny_clip,
    save_tiny_llava,
    save_tiny_text_judge,
)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory):
    return save_tiny_llava(tmp_path_factory.mktemp("tiny_llava"), CHAT_TEMPLATE)


@pytest.fixture(scope="session")
def llava_plain_dir(tmp_path_factory):
    """Same kind of model, but a processor without a chat template (plain-prompt path)."""
    return save_tiny_llava(tmp_path_factory.mktemp("tiny_llava_plain"), None)


@pytest.fixture(scope="session")
def judge_dir(tmp_path_factory):
    return save_tiny_text_judge(tmp_path_factory.mktemp("tiny_judge"))


@pytest.fixture()
def images():
    return random_images(3)
