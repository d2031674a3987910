"""Experiments of many runs: comparisons, sweeps and the classic presets.

- ``compare``: one setting varies, everything else stays fixed; ``sweep``: a grid of two settings.
- ``workers``: local worker processes that stop when told to; ``_forkserver_watch``: their forkserver's preload.
- ``presets``: the classic initialization experiments and the cures paired with what they cure.
"""
