"""The source text's worked examples, small enough to follow by hand.

- ``graphs``: the fruit-shop computational graph from ``MulLayer`` and ``AddLayer``.
- ``softmax_steps``: softmax with cross-entropy for one example, in the text's small steps.
"""
