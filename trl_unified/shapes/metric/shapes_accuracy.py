"""Shapes accuracy: the fraction of generated shapes images that are exactly correct for their prompts.

An `evaluate` metric module so benchmarks and trainers can report the shapes world like any other metric:
`evaluate.load(trl_unified.shapes.shapes_metric_path())` works offline because the module is a local file.
Each import stays on its own line: evaluate's loader checks dependencies by reading import lines one at a time.
"""

import datasets
import evaluate

from trl_unified.shapes.prompts import CATEGORIES
from trl_unified.shapes.prompts import parse_prompt
from trl_unified.shapes.verify import verify

_DESCRIPTION = """
Exact-match accuracy of shapes-world images: an image (64 palette codes, row-major) is correct iff the objects it
shows are exactly the (colour, shape) multiset its prompt asks for and, for `position` prompts, the relation holds
between the two objects' centroids. Also reports accuracy per prompt category and the mean partial credit.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `int`): 64 image codes (0-7) per generated image.
    references (`list` of `str`): the prompt each image was generated for.
Returns:
    accuracy (`float`): fraction of correct images.
    accuracy_<category> (`float`): the same within each prompt category present
        (single, two_object, counting, color_attr, position).
    partial_credit (`float`): mean of the verifier's partial credit.
    num_samples (`int`): number of images judged.
Examples:
    >>> metric = evaluate.load(shapes_metric_path())
    >>> metric.compute(predictions=[codes], references=["a red square"])["accuracy"]
"""

_CITATION = """
@misc{trl_unified_shapes,
  title = {The shapes world of trl-unified},
  note = {A miniature of GenEval: fully checkable text-to-image prompts on an 8x8 palette grid.}
}
"""


class ShapesAccuracy(evaluate.Metric):
    """Exact-match accuracy of shapes-world images against their prompts, overall and per category."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Value("string"),
                }
            ),
        )

    def _compute(self, predictions, references):
        if len(predictions) != len(references):
            raise ValueError(f"got {len(predictions)} predictions but {len(references)} references")
        totals = {category: 0 for category in CATEGORIES}
        correct = {category: 0 for category in CATEGORIES}
        credit = 0.0
        for codes, prompt in zip(predictions, references):
            spec = parse_prompt(prompt)
            verdict = verify(spec, list(codes))
            totals[spec.category] += 1
            correct[spec.category] += int(verdict.correct)
            credit += verdict.partial_credit
        count = len(references)
        result = {
            "accuracy": sum(correct.values()) / count if count else 0.0,
            "partial_credit": credit / count if count else 0.0,
            "num_samples": count,
        }
        for category in CATEGORIES:
            if totals[category]:
                result[f"accuracy_{category}"] = correct[category] / totals[category]
        return result
