"""The engine: the network, its training and what a run records.  Numbers in, numbers out; no words but errors.

- ``settings``: every setting's bounds and choices, declared once; ``config``: the frozen ``RunConfig``.
- ``activations``, ``layers``, ``normalization``, ``init``: the layer objects and initializers.
- ``model``: the MLP assembled from them; ``pieces``: elementwise work over its flat buffers.
- ``optim``, ``regularize``: the optimizers, gradient clipping and weight decay.
- ``training``: the Trainer loop; ``recorder``: what a run keeps at its record points; ``probe``: the record pass.
- ``results``: ``RunResult``; ``divergence``: when a run has diverged; ``gradcheck``: backprop against central
  differences; ``threads``: the process a run lives in (BLAS threads, the record pass's thread, the C heap).
"""
