import os

import pytest

pytest_plugins = ["tests.hub_server"]  # the `local_hub` fixture: a Hub-compatible server on 127.0.0.1

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models: thread hand-offs cost more than the matmuls (and the machines have 2 cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_lm():
    from trl_unified.testing.causal_lm import tiny_causal_lm

    return tiny_causal_lm(seed=0)
