"""``python -m lab``: the command line, over the same engine the pages use.

- ``main``: the entry point and its error handling; ``options``: the parser and the run options.
- ``commands``: train, compare, sweep, gradcheck, gradients, theory, jacobian; ``runs``: the run store's commands.
"""
