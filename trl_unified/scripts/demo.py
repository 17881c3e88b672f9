"""`trl-unified demo`: the whole method on the embedded shapes world (see `trl_unified.shapes.demo`).

trl-unified demo --output-dir outputs/demo          # the default run (minutes on a laptop CPU)
trl-unified demo --quick --output-dir /tmp/demo     # a small version, for tests
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from trl import TrlParser

    from ..cli import concise_errors
    from ..shapes.demo import DemoConfig, run_demo

    parser = concise_errors(TrlParser((DemoConfig,), prog="trl-unified demo"))
    (config,) = parser.parse_args_and_config(args=argv)
    run_demo(config)
