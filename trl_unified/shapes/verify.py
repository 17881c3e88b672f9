"""The image verdict: does an image show exactly what a prompt asks for?

Mirrors the spec's correctness rule so that it can serve as an exact reward and benchmark metric, and adds a
graded `partial_credit` for reward shaping that is 1.0 exactly when the verdict is correct.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .parse import ParsedObject, parse_image
from .prompts import PromptSpec, as_spec
from .scene import relation_holds


@dataclass(frozen=True)
class Verdict:
    """Outcome of `verify`.

    `missing` / `extra` list (colour, shape) instances with multiplicity; `unknown` holds the parsed objects whose
    cells form no shape; `relation_ok` is None for prompts without a relation.
    """

    correct: bool
    partial_credit: float
    missing: list[tuple[str, str]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[ParsedObject] = field(default_factory=list)
    relation_ok: bool | None = None
    objects: list[ParsedObject] = field(default_factory=list)


def match_objects(requested: Counter, found: Counter) -> tuple[int, list, list]:
    """(number matched, missing instances, extra instances) between two multisets of (colour, shape)."""
    matched = sum((requested & found).values())
    missing = sorted((requested - found).elements())
    extra = sorted((found - requested).elements())
    return matched, missing, extra


def verify(prompt: str | PromptSpec, image_or_codes) -> Verdict:
    """Judge an image (PIL / array) or its 64 codes against a prompt (text or `PromptSpec`).

    Correct iff the parsed (colour, shape) multiset equals the requested one (nothing missing, no extra, no
    unknown object) and, for `position`, the relation holds between the centroids of A and B.

    For `position`, `relation_ok` is True iff A and B are both present and the relation holds for every
    (A, B) pair of parsed objects with those (colour, shape)s (strict when duplicates are drawn).

    partial_credit = (M + P) / (R + S + X + U), where R = requested instances, M = requested instances matched
    (multiset intersection), X = extra known-shape objects, U = unknown objects, S = 1 for `position` prompts
    (the relation is one more thing to get right) else 0, and P = 1 if S = 1 and the relation holds else 0.
    It lies in [0, 1] and equals 1 exactly when the verdict is correct.
    """
    spec = as_spec(prompt)
    objects = parse_image(image_or_codes)
    unknown = [obj for obj in objects if obj.shape == "unknown"]
    known = Counter(obj.key for obj in objects if obj.shape != "unknown")
    requested = spec.requested()
    matched, missing, extra = match_objects(requested, known)
    relation_ok = None
    if spec.relation is not None:
        key_a, key_b = spec.objects[0].key, spec.objects[1].key
        found_a = [obj for obj in objects if obj.key == key_a]
        found_b = [obj for obj in objects if obj.key == key_b]
        relation_ok = bool(found_a and found_b) and all(
            relation_holds(spec.relation, a.centroid, b.centroid) for a in found_a for b in found_b
        )
    slot = 1 if relation_ok is not None else 0
    point = 1 if relation_ok else 0
    total = sum(requested.values()) + slot + len(extra) + len(unknown)
    partial = (matched + point) / total
    correct = not missing and not extra and not unknown and relation_ok is not False
    return Verdict(
        correct=correct,
        partial_credit=partial,
        missing=missing,
        extra=extra,
        unknown=unknown,
        relation_ok=relation_ok,
        objects=objects,
    )
