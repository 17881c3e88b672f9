"""Rows in the documented dataset format, for tests (tiny vocabulary, random codes and rewards)."""

import random


def make_rows(n=8, *, num_image_tokens=16, codebook_size=8, seed=0, text_only=(), groups=2):
    """Rows in the documented format: prompts/reasoning from the tiny vocabulary, random codes and rewards."""
    rng = random.Random(seed)
    words = "red green blue dot square left right above below".split()
    rows = []
    for i in range(n):
        rows.append(
            {
                "prompt": " ".join(rng.choice(words) for _ in range(rng.randint(2, 4))),
                "reasoning": " ".join(["plan", ":"] + [rng.choice(words) for _ in range(rng.randint(0, 6))]),
                "image_tokens": None
                if i in text_only
                else [rng.randrange(codebook_size) for _ in range(num_image_tokens)],
                "text_reward": rng.uniform(0, 1),
                "image_reward": rng.uniform(0, 1),
                "prompt_id": i % groups,
            }
        )
    return rows
