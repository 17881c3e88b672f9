"""Installed versions of the packages a run depends on, for model and dataset cards."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("trl-unified", "trl", "transformers", "torch", "datasets", "peft")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """``{package: version}`` for the installed ones."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
