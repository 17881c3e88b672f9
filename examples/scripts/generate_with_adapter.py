"""Draw images with a trained adapter: load the base model and the adapter, sample in unified mode, save PNGs.

    python examples/scripts/generate_with_adapter.py --model_name_or_path BASE --adapter ADAPTER \
        --prompt "two blue dots left of a red square" --output_dir samples

The code it runs is `trl_unified/templates/quick_start.py` with these four settings filled in: the quick start that
every model card written by trl-unified shows (so the card's code is this script's code, and the test of this script
runs it).
"""

from __future__ import annotations

import argparse

from trl_unified.cards import quick_start_code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_name_or_path", required=True, help="Base model: Hub id or local folder.")
    parser.add_argument("--adapter", required=True, help="The trained adapter: Hub id or local folder.")
    parser.add_argument("--prompt", required=True, help="What to draw.")
    parser.add_argument("--output_dir", default=".", help="Where the PNGs go (sample_<i>.png).")
    args = parser.parse_args(argv)
    code = quick_start_code(args.model_name_or_path, args.adapter, args.prompt, args.output_dir)
    exec(compile(code, "quick_start.py", "exec"), {"__name__": "__quick_start__"})  # noqa: S102 - our own template


if __name__ == "__main__":
    main()
