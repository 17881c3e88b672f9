"""Named extensions found through Python entry points, so the core never has to name the packages that provide them.

A package (this one's shapes world included) declares, in its ``pyproject.toml``::

    [project.entry-points."trl_unified.rewards"]
    my_reward = "my_package.rewards:my_reward"
    [project.entry-points."trl_unified.image_codecs"]
    my_codec = "my_package.codec:MyCodec"

and ``--image_rewards my_reward`` or ``"image_codec": "my_codec"`` then find them once it is installed.
"""

from __future__ import annotations

from importlib.metadata import entry_points

REWARDS = "trl_unified.rewards"
IMAGE_CODECS = "trl_unified.image_codecs"


def registered(group: str) -> dict[str, str]:
    """``name -> "module:attribute"`` of every installed entry point in ``group``."""
    return {point.name: point.value for point in entry_points(group=group)}
