"""Per-category evaluation of unified models, comparisons with intervals, and a sample report to look at.

* :func:`evaluate_model` (``trl-unified evaluate``): sample a categorised prompt set in a mode, score with rewards or
  verifiers, per-category scores with 95% intervals, switch rate, reasoning length, the rows and their images.
* :func:`compare_evaluations` (``trl-unified compare``): evaluations side by side with differences and intervals.
* :func:`write_report`: a self-contained ``report.html`` (filter by category and by fixed / broken / still wrong).
* :func:`report_samples`: samples table and images to the user's reporters (``report_to``).

See ``docs/targeting.md``.
"""

from .compare import Comparison, compare_evaluations
from .evaluate import CategoryResult, EvalResult, evaluate_model, load_evaluation, repeat_per_category
from .grid import image_grid
from .intervals import Interval, difference_interval, score_interval, t_interval, wilson_interval
from .prompt_sets import PromptSet, load_prompt_set
from .report_html import write_report
from .reporting import report_samples, report_samples_to_trainer

__all__ = [
    "CategoryResult",
    "Comparison",
    "EvalResult",
    "Interval",
    "PromptSet",
    "compare_evaluations",
    "difference_interval",
    "evaluate_model",
    "image_grid",
    "load_evaluation",
    "load_prompt_set",
    "repeat_per_category",
    "report_samples",
    "report_samples_to_trainer",
    "score_interval",
    "t_interval",
    "wilson_interval",
    "write_report",
]
