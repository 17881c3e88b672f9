"""The `trl-unified` command line: `trl-unified <command> [--config FILE] [options]` (`--help` on each command)."""

from __future__ import annotations

import importlib
import sys

#: command -> (module with `main(argv)`, one-line help)
COMMANDS = {
    "train": ("trl_unified.scripts.train", "reward-weighted post-training on a scored dataset"),
    "generate": ("trl_unified.scripts.generate", "self-generate K scored samples per prompt into a dataset"),
    "evaluate": ("trl_unified.scripts.evaluate", "per-category scores with 95% intervals, samples and report.html"),
    "compare": ("trl_unified.scripts.compare", "evaluations side by side: differences, intervals, plot, report.html"),
    "target": ("trl_unified.scripts.target", "weakness report of an evaluation -> a targeted prompt pool"),
    "demo": ("trl_unified.scripts.demo", "the whole method end to end on the embedded shapes world (CPU, minutes)"),
}


def usage() -> str:
    lines = ["usage: trl-unified <command> [--config FILE] [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `trl-unified <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"trl-unified: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    importlib.import_module(COMMANDS[command][0]).main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
