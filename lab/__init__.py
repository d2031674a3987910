"""Backprop Lab engine: a numpy MLP that records how the error signal flows through every layer.

The names below load on first use (PEP 562), so ``import lab.engine.layers`` or ``python -m lab --help``
does not pay for pandas, scipy and threadpoolctl.  ``lab.train`` is the function; the training
loop's module is ``lab.engine.training``.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ConfigError": "engine.settings",
    "DataError": "data.datasets",
    "RunConfig": "engine.config",
    "RunResult": "api",
    "make_dataset": "data.datasets",
    "train": "api",
    "compare": "api",
    "sweep": "api",
    "runs": "api",
    "load": "api",
    "plot_profiles": "api",
    "Trainer": "engine.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name == "theory":  # the theory package, which called is the API's theory: lab.theory(depth=30)
        return importlib.import_module(".theory", __name__)
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # loaded once; later look-ups do not come here
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})
