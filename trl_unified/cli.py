"""The `trl-unified` command line: `trl-unified <command> [--config FILE] [options]` (`--help` on each command).

Errors are reported here, once for every command: a bad input (a `ValueError` from a config check, a data check or a
path check) prints one line naming what is wrong and exits with 2; any other failure prints one line with its type
and exits with 1. A bare `--debug` (or `TRL_UNIFIED_DEBUG=1`) shows the traceback instead. (`--debug <option>`, with a
value, is still `TrainingArguments.debug`.)
"""

from __future__ import annotations

import importlib
import os
import sys

#: command -> (module with `main(argv)`, one-line help)
COMMANDS = {
    "train": ("trl_unified.scripts.train", "reward-weighted post-training on a scored dataset"),
    "generate": ("trl_unified.scripts.generate", "self-generate K scored samples per prompt into a dataset"),
    "evaluate": ("trl_unified.scripts.evaluate", "per-category scores with 95% intervals, samples and report.html"),
    "compare": ("trl_unified.scripts.compare", "evaluations side by side: differences, intervals, plot, report.html"),
    "target": ("trl_unified.scripts.target", "weakness report of an evaluation -> a targeted prompt pool"),
    "demo": ("trl_unified.scripts.demo", "the whole method end to end on the embedded shapes world (CPU, minutes)"),
    "ablate": ("trl_unified.scripts.ablate", "the method's four findings with seeds on the shapes world (the study)"),
}

#: Exit status for bad input (argparse's own status for bad options).
BAD_INPUT = 2


def usage() -> str:
    lines = ["usage: trl-unified <command> [--config FILE] [options] [--debug]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `trl-unified <command> --help` for a command's options; --debug shows tracebacks."]
    return "\n".join(lines)


def split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Remove a bare `--debug` (one not followed by a value) from ``argv``."""
    out, debug = [], os.environ.get("TRL_UNIFIED_DEBUG", "") not in ("", "0")
    for i, arg in enumerate(argv):
        bare = arg == "--debug" and (i + 1 == len(argv) or argv[i + 1].startswith("-"))
        debug |= bare
        if not bare:
            out.append(arg)
    return out, debug


def concise_errors(parser):
    """Make an argparse parser report a bad option in one line (not the whole usage), still with exit status 2."""

    def error(message: str):
        print(f"{parser.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(BAD_INPUT)

    parser.error = error
    return parser


def _bad_input_types() -> tuple[type[BaseException], ...]:
    return (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    argv, debug = split_debug(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"trl-unified: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return BAD_INPUT
    try:
        importlib.import_module(COMMANDS[command][0]).main(rest)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"trl-unified {command}: interrupted", file=sys.stderr)
        return 130
    except _bad_input_types() as error:
        if debug:
            raise
        print(f"trl-unified {command}: error: {error}", file=sys.stderr)
        return BAD_INPUT
    except Exception as error:
        if debug:
            raise
        print(
            f"trl-unified {command}: failed: {type(error).__name__}: {error} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
