"""The theory floor: what mean-field theory predicts at initialization, as numbers.  It reads the engine's
registries (activations, initializers) and never a measured run's words.

- ``gaussian``: Gaussian expectations E[f(sqrt(q) z)] for every activation.
- ``meanfield``: q*, chi, the per-layer factor and whether the theory applies to a config (``applicability``).
- ``phase``: the depth by weight-scale phase diagram, measured; ``phase_grid``: its grid and counts.
"""
import sys
import types


class _TheoryPackage(types.ModuleType):
    """``lab.theory`` is this package and, called, the notebook API's ``theory``: ``lab.theory(depth=30,
    activation="tanh")`` gives the predicted profile, as ``python -m lab theory`` prints it."""

    def __call__(self, config=None, **settings):
        from lab.engine.config import configure

        from .meanfield import predict_for

        return predict_for(configure(config, **settings))


sys.modules[__name__].__class__ = _TheoryPackage
