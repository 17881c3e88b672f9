"""Where targeted prompts come from. A prompt source is any object with

    draw(category: str, count: int, rng: random.Random, exclude: set[str]) -> list[str]

returning ``count`` prompts of ``category``, none of them in ``exclude`` (the evaluation prompts). Three ship here:

* :class:`DatasetPromptSource`: a categorised prompt set (anything :func:`~trl_unified.evaluation.load_prompt_set`
  reads); draws without replacement while it can, then repeats.
* :class:`GrammarPromptSource`: a template grammar in YAML (slots for objects, colours, counts, relations, text to
  render; see its docstring for the format).
* :class:`LMPromptSource`: asks a text model (any causal LM with ``generate``, or a unified model in its text mode)
  for new prompts of a category, few-shot from examples, de-duplicated against ``exclude`` and each other.

The shapes world has its own (:class:`trl_unified.shapes.prompt_source.ShapesPromptSource`).
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..evaluation.prompt_sets import PromptSet, load_prompt_set

logger = logging.getLogger(__name__)


class PromptSource(Protocol):
    def draw(self, category: str, count: int, rng: random.Random, exclude: set[str]) -> list[str]: ...


def sample_or_repeat(candidates: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """``count`` distinct candidates if there are enough, else ``count`` draws with replacement."""
    candidates = list(candidates)
    if count > len(candidates):
        return [rng.choice(candidates) for _ in range(count)]
    return rng.sample(candidates, count)


class DatasetPromptSource:
    """Prompts of a categorised prompt set (a path, a Hub id, a list or a :class:`PromptSet`)."""

    def __init__(self, prompts: PromptSet | str | Sequence[Any], **load_kwargs: Any):
        self.prompt_set = load_prompt_set(prompts, **load_kwargs)
        self.by_category = self.prompt_set.by_category()

    @property
    def categories(self) -> list[str]:
        return list(self.by_category)

    def draw(self, category: str, count: int, rng: random.Random, exclude: set[str]) -> list[str]:
        candidates = list(dict.fromkeys(p for p in self.by_category.get(category, []) if p not in exclude))
        if count and not candidates:
            raise ValueError(
                f"the prompt source {self.prompt_set.source or ''} has no prompt of category {category!r} outside the "
                f"evaluation set (its categories: {self.categories})"
            )
        return sample_or_repeat(candidates, count, rng)


_PLACEHOLDER = re.compile(r"\{(\w+)(?:#(\w+))?(?::(\w+))?\}")


class GrammarPromptSource:
    """Prompts from templates with slots, read from YAML::

        slots:
          object: [cat, dog, {singular: bus, plural: buses}]   # a value may have named forms
          colour: [red, green, blue]
          count: [two, three, four]
          relation: [left of, right of, above, below]
          text: [OPEN, SALE]
        categories:
          counting: ["a photo of {count} {object:plural}"]
          position: ["a photo of a {object} {relation} a {object#2}"]
          text: ['a storefront sign that says "{text}"']

    ``{slot}`` takes a value of the slot; ``{slot#tag}`` another value of the same slot, distinct from the other
    tags' in the same prompt; ``{slot:form}`` a named form of the value (a plain string value is its own form
    ``singular``, and ``plural`` adds an ``s``). Draws are distinct while the grammar allows, then repeat.
    """

    def __init__(self, grammar: Mapping[str, Any], max_attempts: int = 50):
        slots, categories = grammar.get("slots") or {}, grammar.get("categories") or {}
        if not categories:
            raise ValueError("the grammar has no `categories`")
        self.slots: dict[str, list[Any]] = {}
        for name, values in slots.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grammar slot {name!r} must be a non-empty list")
            self.slots[name] = values
        self.templates: dict[str, list[str]] = {}
        for category, templates in categories.items():
            templates = [templates] if isinstance(templates, str) else templates
            if not isinstance(templates, list) or not templates:
                raise ValueError(f"grammar category {category!r} needs a list of templates")
            for template in templates:
                tags: dict[str, set[str]] = {}
                for slot, tag, _ in _PLACEHOLDER.findall(template):
                    if slot not in self.slots:
                        raise ValueError(
                            f"grammar category {category!r}: template {template!r} uses the unknown slot {slot!r} "
                            f"(slots: {sorted(self.slots)})"
                        )
                    tags.setdefault(slot, set()).add(tag)
                for slot, used in tags.items():
                    if len(used) > len(self.slots[slot]):
                        raise ValueError(f"grammar template {template!r} needs {len(used)} distinct {slot!r} values")
            self.templates[str(category)] = list(templates)
        self.max_attempts = max_attempts

    @classmethod
    def from_yaml(cls, path: str | Path, **kwargs: Any) -> GrammarPromptSource:
        import yaml

        with open(path, encoding="utf-8") as handle:
            grammar = yaml.safe_load(handle)
        if not isinstance(grammar, dict):
            # a bad file rather than a bad argument: ValueError, as for every other grammar error
            raise ValueError(f"{path}: a grammar is a mapping with `slots` and `categories`")  # noqa: TRY004
        try:
            return cls(grammar, **kwargs)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    @property
    def categories(self) -> list[str]:
        return list(self.templates)

    @staticmethod
    def _form(value: Any, form: str, slot: str) -> str:
        if isinstance(value, Mapping):
            if form and form not in value:
                raise ValueError(f"slot {slot!r} value {dict(value)} has no form {form!r}")
            return str(value[form] if form else next(iter(value.values())))
        if form in ("", "singular"):
            return str(value)
        if form == "plural":
            return f"{value}s"
        raise ValueError(f"slot {slot!r} value {value!r} is a plain string: it has no form {form!r}")

    def fill(self, template: str, rng: random.Random) -> str:
        tags: dict[str, list[str]] = {}
        for slot, tag, _ in _PLACEHOLDER.findall(template):
            if tag not in tags.setdefault(slot, []):
                tags[slot].append(tag)
        chosen = {
            (slot, tag): value
            for slot, names in tags.items()
            for tag, value in zip(names, rng.sample(self.slots[slot], len(names)))
        }
        return _PLACEHOLDER.sub(
            lambda m: self._form(chosen[m.group(1), m.group(2) or ""], m.group(3) or "", m.group(1)), template
        )

    def draw(self, category: str, count: int, rng: random.Random, exclude: set[str]) -> list[str]:
        if category not in self.templates:
            raise ValueError(f"the grammar has no category {category!r} (its categories: {self.categories})")
        found: list[str] = []
        seen = set(exclude)
        for _ in range(self.max_attempts * max(count, 1)):
            if len(found) == count:
                break
            prompt = self.fill(rng.choice(self.templates[category]), rng)
            if prompt not in seen:
                seen.add(prompt)
                found.append(prompt)
        if count and not found:
            raise ValueError(f"the grammar makes no prompt of category {category!r} outside the evaluation set")
        if len(found) < count:
            logger.warning(f"grammar category {category!r}: only {len(found)} distinct prompts; repeating them")
            found += [rng.choice(found) for _ in range(count - len(found))]
        return found


DEFAULT_INSTRUCTION = (
    "Here are image-generation prompts that test the skill '{category}'. Write one more, different from all of them."
)


class LMPromptSource:
    """New prompts of a category, written by a text model from a few examples of that category.

    Args:
        model / tokenizer: any ``transformers`` model with ``generate`` (a causal LM, or a unified model in its text
            mode: put what it needs, e.g. Janus's ``generation_mode="text"`` or ``suppress_tokens`` for image
            codes, in ``generate_kwargs``) and its tokenizer.
        examples: a prompt set (or a ``{category: [prompts]}`` mapping) giving few-shot examples per category.
        validate: an optional check of a candidate (``True`` to keep it), e.g. a grammar parser.
    Candidates are the first line of each continuation, stripped of list markers and quotes; they are kept only if
    new: not in ``exclude`` (the evaluation prompts), not among the examples, not drawn before (case-insensitive).
    After ``max_rounds`` rounds of ``batch_size`` generations, a category may return fewer than asked (logged, and
    visible in the weakness report's ``drawn``).
    """

    def __init__(
        self,
        model,
        tokenizer,
        examples: PromptSet | Mapping[str, Sequence[str]] | str,
        *,
        instruction: str = DEFAULT_INSTRUCTION,
        num_examples: int = 5,
        max_new_tokens: int = 40,
        temperature: float = 1.0,
        top_p: float = 0.95,
        batch_size: int = 8,
        max_rounds: int = 10,
        validate: Callable[[str], bool] | None = None,
        generate_kwargs: Mapping[str, Any] | None = None,
    ):
        self.model, self.tokenizer = model, tokenizer
        if not isinstance(examples, Mapping):
            examples = load_prompt_set(examples).by_category()
        self.examples = {c: list(v) for c, v in examples.items()}
        self.instruction, self.num_examples = instruction, num_examples
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.batch_size, self.max_rounds = batch_size, max_rounds
        self.validate, self.generate_kwargs = validate, dict(generate_kwargs or {})

    @property
    def categories(self) -> list[str]:
        return list(self.examples)

    def context(self, category: str, rng: random.Random) -> str:
        examples = self.examples.get(category) or []
        if not examples:
            raise ValueError(f"no example prompts of category {category!r} to show the text model")
        shown = rng.sample(examples, min(self.num_examples, len(examples)))
        return self.instruction.format(category=category) + "\n" + "".join(f"- {e}\n" for e in shown) + "-"

    def generate(self, contexts: list[str], seed: int) -> list[str]:
        """One continuation per context (the new text only)."""
        import torch

        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            inputs = self.tokenizer(contexts, return_tensors="pt", padding=True)
        finally:
            self.tokenizer.padding_side = side
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            output = self.model.generate(
                **inputs,
                do_sample=True,
                temperature=self.temperature,
                top_p=self.top_p,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=pad,
                **self.generate_kwargs,
            )
        new = output[:, inputs["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    @staticmethod
    def clean(text: str) -> str:
        line = text.strip().split("\n", 1)[0].strip()
        return line.lstrip("-*• ").strip().strip("\"'").strip()

    def draw(self, category: str, count: int, rng: random.Random, exclude: set[str]) -> list[str]:
        seen = {p.lower() for p in exclude} | {p.lower() for p in self.examples.get(category, [])}
        found: list[str] = []
        for _ in range(self.max_rounds):
            if len(found) >= count:
                break
            contexts = [self.context(category, rng) for _ in range(self.batch_size)]
            for text in self.generate(contexts, rng.randrange(2**31)):
                prompt = self.clean(text)
                if not prompt or prompt.lower() in seen or (self.validate and not self.validate(prompt)):
                    continue
                seen.add(prompt.lower())
                found.append(prompt)
        if len(found) < count:
            logger.warning(f"text model wrote {len(found)} new prompts of category {category!r}, {count} asked")
        return found[:count]


__all__ = [
    "DEFAULT_INSTRUCTION",
    "DatasetPromptSource",
    "GrammarPromptSource",
    "LMPromptSource",
    "PromptSource",
    "sample_or_repeat",
]
