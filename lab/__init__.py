"""Backprop Lab engine: a numpy MLP that records how the error signal flows through every layer."""
from .config import ConfigError, RunConfig
from .data import DataError
from .data import make_dataset
from .results import RunResult
from .train import train

__all__ = ["ConfigError", "DataError", "RunConfig", "RunResult", "make_dataset", "train"]
