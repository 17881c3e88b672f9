"""Prompt grammar of the shapes world: structured `PromptSpec`, its text form, a strict parser and a generator.

The grammar is small and closed so that every prompt can be checked exactly: an object phrase is
`<count> <colour> <shape>` (count `a`/`one`/`two`/`three`/`four`, plural `s` above 1), combined into one of five
categories. Anything outside the grammar is rejected loudly rather than guessed at, because a guessed prompt would
silently change what the reward checks.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from .palette import COLOURS, SHAPES, check_colour, check_shape

CATEGORIES: tuple[str, ...] = ("single", "two_object", "counting", "color_attr", "position")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
ARTICLES: tuple[str, ...] = ("a", "one")
"""The two ways to say a count of 1."""
COUNT_WORDS: dict[str, int] = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4}
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
_PLURALS = {shape + "s": shape for shape in SHAPES}

PROMPT_WORDS: tuple[str, ...] = (
    *COUNT_WORDS,
    *COLOURS,
    *SHAPES,
    *_PLURALS,
    "and",
    "left",
    "right",
    "of",
    "above",
    "below",
)
"""Every word a prompt can contain."""


@dataclass(frozen=True)
class ObjectPhrase:
    """`<count> <colour> <shape>`; `article` records whether a count of 1 is said `a` or `one`."""

    count: int
    colour: str
    shape: str
    article: str = "a"

    def __post_init__(self) -> None:
        check_colour(self.colour)
        check_shape(self.shape)
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= 4:
            raise ValueError(f"count must be an integer from 1 to 4, got {self.count!r}")
        if self.article not in ARTICLES:
            raise ValueError(f"article must be one of {ARTICLES}, got {self.article!r}")
        if self.count > 1 and self.article != "a":
            object.__setattr__(self, "article", "a")  # only counts of 1 have two spellings

    @property
    def key(self) -> tuple[str, str]:
        """The (colour, shape) this phrase asks for."""
        return (self.colour, self.shape)

    def to_text(self) -> str:
        if self.count == 1:
            return f"{self.article} {self.colour} {self.shape}"
        return f"{_NUMBER_WORDS[self.count]} {self.colour} {self.shape}s"


@dataclass(frozen=True)
class PromptSpec:
    """A prompt as data: its category, one or two object phrases, and the relation for `position` prompts."""

    category: str
    objects: tuple[ObjectPhrase, ...]
    relation: str | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        _check_spec(self)

    def to_text(self) -> str:
        words = [phrase.to_text() for phrase in self.objects]
        if self.category == "position":
            return f"{words[0]} {self.relation} {words[1]}"
        return " and ".join(words)

    def instances(self) -> list[tuple[str, str]]:
        """Every requested object instance as (colour, shape), in prompt order, repeated by count."""
        return [phrase.key for phrase in self.objects for _ in range(phrase.count)]

    def requested(self) -> Counter:
        """The multiset of (colour, shape) the image must show."""
        return Counter(self.instances())

    def request_key(self) -> tuple:
        """What the prompt asks for, ignoring wording: `a`/`one`, phrase order of `and`, and mirrored relations
        (`A right of B` == `B left of A`). Used so held-out prompts cannot leak into training as a rewording."""
        objects = [(p.colour, p.shape, p.count) for p in self.objects]
        relation = self.relation
        if self.category == "position":
            if relation in ("right of", "below"):
                objects.reverse()
                relation = "left of" if relation == "right of" else "above"
        else:
            objects.sort()
        return (self.category, tuple(objects), relation)

    def __str__(self) -> str:
        return self.to_text()


def _check_spec(spec: PromptSpec) -> None:
    """Raise ValueError unless the spec follows the rules of its category."""
    category, objects, relation = spec.category, spec.objects, spec.relation
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    if not all(isinstance(phrase, ObjectPhrase) for phrase in objects):
        raise ValueError("objects must be ObjectPhrase instances")
    expected = 1 if category in ("single", "counting") else 2
    if len(objects) != expected:
        raise ValueError(f"a {category} prompt has {expected} object phrase(s), got {len(objects)}")
    if (category == "position") != (relation is not None):
        raise ValueError(f"only position prompts have a relation (category {category!r}, relation {relation!r})")
    if relation is not None and relation not in RELATIONS:
        raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")
    if category == "counting":
        if objects[0].count < 2:
            raise ValueError("a counting prompt asks for 2 to 4 objects")
        return
    if any(phrase.count != 1 for phrase in objects):
        raise ValueError(f"every object of a {category} prompt has count 1 ('a' or 'one')")
    if category == "single":
        return
    first, second = objects
    if first.key == second.key:
        raise ValueError(f"the two phrases name the same object {first.colour} {first.shape}")
    if category == "two_object" and first.shape == second.shape:
        raise ValueError("a two_object prompt names two different shapes (same shape is color_attr)")
    if category == "color_attr" and first.shape != second.shape:
        raise ValueError("a color_attr prompt names one shape in two colours (different shapes is two_object)")


def _parse_phrase(words: list[str], start: int) -> ObjectPhrase:
    """Parse the three words of an object phrase starting at word index `start`."""
    if start + 3 > len(words):
        raise ValueError(f"prompt ends inside an object phrase at word {start + 1}; expected <count> <colour> <shape>")
    count_word, colour, shape_word = words[start : start + 3]
    if count_word not in COUNT_WORDS:
        raise ValueError(f"expected a count word {tuple(COUNT_WORDS)} at word {start + 1}, got {count_word!r}")
    if colour not in COLOURS:
        raise ValueError(f"expected a colour {COLOURS} at word {start + 2}, got {colour!r}")
    count = COUNT_WORDS[count_word]
    if count == 1:
        if shape_word not in SHAPES:
            hint = " (a count of 1 takes the singular)" if shape_word in _PLURALS else ""
            raise ValueError(f"expected a singular shape {SHAPES} at word {start + 3}, got {shape_word!r}{hint}")
        return ObjectPhrase(1, colour, shape_word, article=count_word)
    if shape_word not in _PLURALS:
        hint = " (a count above 1 takes the plural 's')" if shape_word in SHAPES else ""
        raise ValueError(f"expected a plural shape {tuple(_PLURALS)} at word {start + 3}, got {shape_word!r}{hint}")
    return ObjectPhrase(count, colour, _PLURALS[shape_word])


def parse_prompt(text: str) -> PromptSpec:
    """Parse prompt text into a `PromptSpec`; raise ValueError saying where the text leaves the grammar.

    Surrounding whitespace is ignored; inside, words must be lowercase and separated by single spaces.
    """
    if not isinstance(text, str):
        raise ValueError(f"prompt must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty prompt")
    words = stripped.split(" ")
    if "" in words:
        raise ValueError(f"words must be separated by single spaces: {text!r}")
    first = _parse_phrase(words, 0)
    if len(words) == 3:
        return PromptSpec("single" if first.count == 1 else "counting", (first,))
    joiner = words[3]
    if joiner == "and":
        relation, rest = None, 4
    elif joiner in ("above", "below"):
        relation, rest = joiner, 4
    elif joiner in ("left", "right"):
        if len(words) < 5 or words[4] != "of":
            raise ValueError(f"expected 'of' after {joiner!r} at word 5")
        relation, rest = f"{joiner} of", 5
    else:
        raise ValueError(f"expected 'and' or a relation {RELATIONS} at word 4, got {joiner!r}")
    second = _parse_phrase(words, rest)
    if len(words) != rest + 3:
        raise ValueError(f"unexpected words after the second object phrase: {' '.join(words[rest + 3 :])!r}")
    if relation is not None:
        category = "position"
    else:
        category = "color_attr" if first.shape == second.shape else "two_object"
    return PromptSpec(category, (first, second), relation)


def as_spec(prompt: str | PromptSpec) -> PromptSpec:
    """Accept prompt text or a spec and return the spec."""
    return prompt if isinstance(prompt, PromptSpec) else parse_prompt(prompt)


@cache
def all_prompt_specs(category: str) -> tuple[PromptSpec, ...]:
    """Every prompt of a category (each distinct text once), in a fixed order."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    keys = [(colour, shape) for colour in COLOURS for shape in SHAPES]
    specs: list[PromptSpec] = []
    if category in ("single", "counting"):
        counts = (1,) if category == "single" else (2, 3, 4)
        for colour, shape in keys:
            for count in counts:
                for article in ARTICLES if count == 1 else ("a",):
                    specs.append(PromptSpec(category, (ObjectPhrase(count, colour, shape, article),)))
        return tuple(specs)
    for a in keys:
        for b in keys:
            if a == b:
                continue
            if category == "two_object" and a[1] == b[1]:
                continue
            if category == "color_attr" and a[1] != b[1]:
                continue
            for art_a in ARTICLES:
                for art_b in ARTICLES:
                    phrases = (ObjectPhrase(1, *a, article=art_a), ObjectPhrase(1, *b, article=art_b))
                    for relation in RELATIONS if category == "position" else (None,):
                        specs.append(PromptSpec(category, phrases, relation))
    return tuple(specs)


def _stratum(spec: PromptSpec) -> tuple:
    """Grammar features a generator should cover early: articles, counts and relation (varying fastest)."""
    return (
        tuple(ARTICLES.index(p.article) for p in spec.objects),
        tuple(p.count for p in spec.objects),
        RELATIONS.index(spec.relation) if spec.relation else -1,
    )


@cache
def _strata(category: str) -> tuple[tuple[tuple[PromptSpec, tuple], ...], ...]:
    """A category's prompts with their request keys, grouped by `_stratum` in sorted stratum order (cached)."""
    groups: dict[tuple, list] = {}
    for spec in all_prompt_specs(category):
        groups.setdefault(_stratum(spec), []).append((spec, spec.request_key()))
    return tuple(tuple(groups[key]) for key in sorted(groups))


def _request_keys(prompts: Iterable[str | PromptSpec]) -> set[tuple]:
    return {as_spec(prompt).request_key() for prompt in prompts}


def generate_prompts(
    n: int,
    categories: Sequence[str] | None = None,
    seed: int = 0,
    exclude: Iterable[str | PromptSpec] = (),
    as_text: bool = False,
) -> list[PromptSpec] | list[str]:
    """`n` distinct prompts, deterministic in `seed`, spread evenly over `categories` (default: all five).

    Within a category, prompts are dealt round-robin over strata (article `a`/`one` per phrase, count, relation), so
    even a few dozen prompts cover every count, relation and both spellings of 1. Any prompt asking for the same thing
    as one in `exclude` (see `PromptSpec.request_key`) is skipped. Raises ValueError if fewer than `n` remain.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if isinstance(categories, str):
        categories = (categories,)
    categories = tuple(dict.fromkeys(CATEGORIES if categories is None else categories))
    for category in categories:
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    excluded = _request_keys(exclude)
    rng = random.Random(seed)
    streams = []
    for category in categories:
        lists = []
        for stratum in _strata(category):
            items = [spec for spec, key in stratum if key not in excluded]
            rng.shuffle(items)
            lists.append(items)
        streams.append(_round_robin(lists))
    chosen = list(_round_robin_iters(streams, n))
    if len(chosen) < n:
        raise ValueError(f"only {len(chosen)} prompts available in {categories} after exclusions, asked for {n}")
    return [spec.to_text() for spec in chosen] if as_text else chosen


def _round_robin(lists: list[list[PromptSpec]]):
    """Yield one item from each list in turn until all are exhausted."""
    for index in range(max((len(items) for items in lists), default=0)):
        for items in lists:
            if index < len(items):
                yield items[index]


def _round_robin_iters(iterators: list, limit: int):
    """Take items from each iterator in turn (skipping exhausted ones) until `limit` items or all exhausted."""
    active = list(iterators)
    taken = 0
    while active and taken < limit:
        for iterator in list(active):
            if taken >= limit:
                return
            item = next(iterator, None)
            if item is None:
                active.remove(iterator)
                continue
            taken += 1
            yield item


def is_held_out(prompt: str | PromptSpec, eval_fraction: float = 0.1, seed: int = 0) -> bool:
    """Whether a prompt belongs to the held-out eval split: a stable hash of its request key, so the answer never
    depends on which other prompts are in the list, and rewordings of one request always land on the same side."""
    if not 0.0 <= eval_fraction <= 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1], got {eval_fraction}")
    digest = hashlib.sha256(f"{seed}|{as_spec(prompt).request_key()!r}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def split_prompts(prompts: Sequence[str | PromptSpec], eval_fraction: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """Split prompts into (train, eval) with `is_held_out`; disjoint, order-preserving and deterministic."""
    train, held_out = [], []
    for prompt in prompts:
        (held_out if is_held_out(prompt, eval_fraction, seed) else train).append(prompt)
    return train, held_out


def make_train_eval_prompts(
    n_train: int, n_eval: int, categories: Sequence[str] | None = None, seed: int = 0, as_text: bool = True
) -> tuple[list, list]:
    """Generate `n_eval` held-out prompts, then `n_train` training prompts that ask for none of the same things."""
    eval_prompts = generate_prompts(n_eval, categories, seed=seed + 1, as_text=as_text)
    train_prompts = generate_prompts(n_train, categories, seed=seed, exclude=eval_prompts, as_text=as_text)
    return train_prompts, eval_prompts
