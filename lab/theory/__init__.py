"""The theory floor: what mean-field theory predicts at initialization, as numbers.  It reads the engine's
registries (activations, initializers) and never a measured run's words.

- ``gaussian``: Gaussian expectations E[f(sqrt(q) z)] for every activation.
- ``meanfield``: q*, chi, the per-layer factor and whether the theory applies to a config (``applicability``).
- ``phase``: the depth by weight-scale phase diagram, measured; ``phase_grid``: its grid and counts.
"""
