import pytest

from trl_unified.evaluation import EvalResult


def make_result(
    name: str, correct: dict[str, list[int]], mode: str = "unified", scores: dict | None = None
) -> EvalResult:
    """An evaluation made from verdicts per category (no model): prompts `<category> <i>`."""
    rows = []
    for category, verdicts in correct.items():
        for i, ok in enumerate(verdicts):
            score = scores[category][i] if scores else float(ok)
            rows.append(
                {
                    "prompt": f"{category} prompt {i}",
                    "category": category,
                    "prompt_index": len(rows),
                    "sample_index": 0,
                    "mode": mode,
                    "reasoning": f"plan {i}",
                    "reasoning_tokens": 2,
                    "image": f"images/{len(rows):05d}.png",
                    "switched": bool(i % 2),
                    "forced_switch": not bool(i % 2),
                    "rewards": {"image/verdict": float(ok)},
                    "text_reward": 0.0,
                    "image_reward": float(ok),
                    "score": score,
                    "correct": bool(ok),
                    "reward_errors": [],
                }
            )
    return EvalResult.from_rows(name, mode, rows, "image_reward", 0.5)


@pytest.fixture
def shapes_model():
    from trl_unified.shapes.model import load_shapes_model

    return load_shapes_model()
