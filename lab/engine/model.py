"""A multi-layer perceptron assembled from layer objects.

Layer l (1-based) is an Affine followed by an activation for l < L; layer L is the
output Affine, followed by the loss.  z_l is layer l's pre-activation, the input of
its activation.  With the cures of ``lab.engine.normalization`` (all off by default), hidden
layer l computes

    z_l = norm(h_{l-1} W_l + b_l)                  norm: none, BatchNorm or LayerNorm
    a_l = dropout(phi(z_l))
    h_l = a_l,  or  h_{l-1} + alpha * a_l          (residual, for 2 <= l <= L-1; layer 1 changes the width)

All weights and biases live in one flat buffer (``flat_params``) and all their
gradients in another (``flat_grads``); each Affine holds views of its slices, and
after the last affine come gamma_l, beta_l of every normalized layer, so the optimizer
updates them with the weights (``layer_slices`` still finds each W_l where it was).
The optimizer updates the flat buffer in place, so a step costs a few vector operations
instead of a few per layer.  Replace a parameter array and the link breaks: only
ever write into them.

Modes of a pass (``mode``): "train" (batch statistics, running averages updated, dropout
on), "probe" (batch statistics, averages left alone, dropout off: the record pass, which
must be deterministic) and "eval" (running averages, dropout off: validation, prediction).
"""
from __future__ import annotations

import math

import numpy as np

from lab.seeds import bias_generators, dropout_generator

from .activations import Activation, get_activation
from .config import RunConfig
from .init import init_weight, resolve_gain
from .layers import LOSSES, ActivationLayer, Affine
from .normalization import NORMS, Dropout

MODES = ("train", "probe", "eval")
RUNNING_STATS = ("running_mean", "running_var")  # what batch norm uses in evaluation instead of the batch's


class HiddenBlock:
    """Hidden layer l: z_l = norm(h_{l-1} W_l + b_l), a_l = dropout(phi(z_l)), h_l = a_l or h_{l-1} + alpha a_l.

    Each part is a layer object with its own ``forward`` and ``backward`` (``norm`` and ``dropout`` may be None,
    ``alpha`` is None for a layer without a shortcut); the block chains them one way and back the other."""

    def __init__(self, affine: Affine, act: ActivationLayer, norm=None, dropout=None, alpha: float | None = None):
        self.affine, self.act, self.norm, self.dropout, self.alpha = affine, act, norm, dropout, alpha

    def forward(self, h, keep: list | None, mode: str, cache: bool):
        z = self.affine.forward(h)
        if self.norm is not None:
            # z is the affine's new array, read by nobody else: the norm may write into it
            z = self.norm.forward(z, training=mode != "eval", track=mode == "train", overwrite_x=True)
            if not cache:
                self.norm.forget()
        a = self.act.forward(z, overwrite=keep is None)  # z is the affine's (or the norm's) new array
        if not cache:
            self.affine.x = self.act.z = self.act.h = None
        if keep is not None:
            keep.append((z, a))
        if self.dropout is not None:
            a = self.dropout.forward(a, training=mode == "train")
        if self.alpha is not None:  # h + alpha * a, in a new array (a is the activation's, h the affine's)
            a = a * self.alpha
            a += h
        return a

    def backward(self, dh, keep: list | None):
        """dL/dh_l -> dL/dh_{l-1}; ``keep`` collects dL/dz_l."""
        da = dh * self.alpha if self.alpha is not None else dh
        if self.dropout is not None:
            da = self.dropout.backward(da)
        # da is this pass's own array (the affine's dx, or a new one from the shortcut or dropout):
        # dL/dz is computed in it
        dz = self.act.backward(da, overwrite=True)
        if keep is not None:
            keep.append(dz)
        if self.norm is not None:
            dz = self.norm.backward(dz)
        dx = self.affine.backward(dz)
        if self.alpha is not None:
            dx += dh  # dx: the affine's new array
        return dx


class MLP:
    """Fully connected network: hidden blocks 1..L-1, then the output affine and the loss.
    ``affines[l]`` maps layer l's input to its pre-activation, W_l (fan_in, fan_out)."""

    def __init__(self, affines: list[Affine], activation: Activation, loss_name: str, flat_params, flat_grads,
                 norms: list | None = None, dropouts: list | None = None, residual_scale: float | None = None):
        """norms, dropouts: one layer (or None) per hidden layer; residual_scale: alpha, or None for no shortcuts
        (layer 1 changes the width and never has one)."""
        hidden = len(affines) - 1
        norms, dropouts = norms or [None] * hidden, dropouts or [None] * hidden
        self.blocks = [HiddenBlock(affines[i], ActivationLayer(activation), norms[i], dropouts[i],
                                   residual_scale if residual_scale is not None and i > 0 else None)
                       for i in range(hidden)]
        self.output = affines[-1]
        self.affines = affines
        self.flat_params, self.flat_grads = flat_params, flat_grads
        self.activation = activation
        self.loss_layer = LOSSES[loss_name]()
        self.residual_scale = residual_scale

    # the parts of the hidden blocks, one per hidden layer, for the code that reads them layer by layer
    @property
    def acts(self) -> list[ActivationLayer]:
        return [b.act for b in self.blocks]

    @acts.setter
    def acts(self, layers) -> None:
        for block, layer in zip(self.blocks, layers, strict=True):
            block.act = layer

    @property
    def norms(self) -> list:
        return [b.norm for b in self.blocks]

    @property
    def dropouts(self) -> list:
        return [b.dropout for b in self.blocks]

    @property
    def depth(self) -> int:
        """Number of weight layers L (hidden layers + output)."""
        return len(self.affines)

    def layer_slices(self) -> list[slice]:
        """Where W_l sits in the flat buffers, l = 1..L."""
        out, off = [], 0
        for a in self.affines:
            size = a.params["W"].size
            out.append(slice(off, off + size))
            off += size + a.params["b"].size
        return out

    def named_parameters(self):
        """(name, parameter, its gradient) for every parameter array, in the flat buffer's order: W1, b1, ...,
        WL, bL, then gamma_l and beta_l of each normalized hidden layer.  The arrays are the model's own views."""
        for l, affine in enumerate(self.affines, start=1):
            for key in ("W", "b"):
                yield f"{key}{l}", affine.params[key], affine.grads[key]
        for l, norm in enumerate(self.norms, start=1):
            if norm is not None:
                for key in ("gamma", "beta"):
                    yield f"{key}{l}", norm.params[key], norm.grads[key]

    def forward(self, X, keep: list | None = None, mode: str = "eval", cache: bool = True):
        """X (N, D_in) -> logits (N, K).  ``keep`` collects (z_l, phi(z_l)) of hidden layers.

        cache=False: no backward pass follows, so no layer keeps its input (a pass over many examples would
        otherwise hold every layer's activations until the next pass: 800 MB for 4000 examples through
        100 layers of 512)."""
        h = X
        for block in self.blocks:
            h = block.forward(h, keep, mode, cache)
        logits = self.output.forward(h)
        if not cache:
            self.output.x = None
        return logits

    def loss(self, X, t, mode: str = "eval", cache: bool = True) -> float:
        return self.loss_layer.forward(self.forward(X, mode=mode, cache=cache), t)

    def backward(self, keep: list | None = None) -> None:
        """Back-propagate the mean loss, layer by layer in reverse; ``keep`` collects dL/dz_l for l = L, ..., 1."""
        d = self.loss_layer.backward()
        if keep is not None:
            keep.append(d)
        dh = self.output.backward(d)
        for block in reversed(self.blocks):
            dh = block.backward(dh, keep)

    def loss_and_grads(self, X, t, mode: str = "train") -> float:
        loss = self.loss(X, t, mode)
        self.backward()
        return loss

    def predict(self, X) -> np.ndarray:
        return self.forward(X, mode="eval", cache=False).argmax(axis=1)

    def weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of (W_l, b_l), l = 1..L."""
        return [(a.params["W"].copy(), a.params["b"].copy()) for a in self.affines]

    def norm_state(self) -> list[dict]:
        """Copies of what each hidden layer's norm computes with in evaluation, l = 1..L-1 ({} where there is
        none): gamma and beta, and for batch norm its running_mean and running_var.  With ``weights()``
        this is all ``mlp_from_weights`` needs to rebuild the network's evaluation pass."""
        out = []
        for n in self.norms:
            state = {} if n is None else {k: v.copy() for k, v in n.params.items()}
            for k in RUNNING_STATS:
                if hasattr(n, k):
                    state[k] = getattr(n, k).copy()
            out.append(state)
        return out


def _flat_affines(shapes, dtype, norm: str = "none"):
    """Affines whose W, b, dW, db are views into two flat buffers, then the norm layers of the
    hidden layers (None for "none"), whose gamma, beta and their gradients follow in the same
    buffers; returns (affines, norms, params, grads)."""
    norm_cls = NORMS[norm]
    hidden = [fo for _, fo in shapes[:-1]] if norm_cls is not None else []
    total = sum(fi * fo + fo for fi, fo in shapes) + 2 * sum(hidden)
    flat = np.zeros(total, dtype=dtype)
    flat_grad = np.zeros(total, dtype=dtype)
    affines, off = [], 0
    for l, (fi, fo) in enumerate(shapes):
        views = []
        for buf in (flat, flat_grad):
            views.append(buf[off : off + fi * fo].reshape(fi, fo))
            views.append(buf[off + fi * fo : off + fi * fo + fo])
        W, b, dW, db = views
        affines.append(Affine(W, b, need_dx=l > 0, dW=dW, db=db))
        off += fi * fo + fo
    norms = [None] * (len(shapes) - 1)
    for l, width in enumerate(hidden):
        gamma, beta = flat[off : off + width], flat[off + width : off + 2 * width]
        dgamma, dbeta = flat_grad[off : off + width], flat_grad[off + width : off + 2 * width]
        gamma[...] = 1.0
        norms[l] = norm_cls(width, dtype=dtype, gamma=gamma, beta=beta, dgamma=dgamma, dbeta=dbeta)
        off += 2 * width
    return affines, norms, flat, flat_grad


def build_mlp(config: RunConfig, n_inputs: int, n_classes: int, rng: np.random.Generator) -> MLP:
    """Draw the weights of the network that ``config`` describes.

    rng: the init stream; the weights come from it in layer order, and the biases (when
    ``bias_std`` > 0) from one child stream per layer (``lab.seeds`` states the layout).
    """
    activation = get_activation(config.activation, config.leaky_slope)
    gain = resolve_gain(config.init, config.gain, activation)
    shapes = config.layer_shapes(n_inputs, n_classes)
    affines, norms, flat, flat_grad = _flat_affines(shapes, config.np_dtype, config.norm)
    for affine, shape in zip(affines, shapes):
        affine.params["W"][...] = init_weight(config.init, shape, rng, gain, config.init_scale)
    if config.bias_std > 0:
        for affine, bias_rng in zip(affines, bias_generators(rng, len(affines))):
            affine.params["b"][...] = bias_rng.standard_normal(affine.params["b"].shape) * config.bias_std
    dropouts = None
    if config.dropout > 0:
        drop_rng = dropout_generator(rng)
        dropouts = [Dropout(config.dropout, drop_rng) for _ in norms]
    return MLP(affines, activation, config.loss, flat, flat_grad, norms=norms, dropouts=dropouts,
               residual_scale=config.residual_scale if config.residual else None)


def mlp_from_weights(weights, activation: Activation, loss_name: str, norm: str = "none",
                     norm_state: list[dict] | None = None, residual_scale: float | None = None) -> MLP:
    """Rebuild a network from (W, b) pairs, e.g. a run's final weights (copied), for evaluation.

    norm, norm_state: the kind of normalization ("none", "batch", "layer") and, per hidden layer, what
    ``MLP.norm_state`` saved (gamma, beta, and for batch norm the running statistics; copied);
    residual_scale: alpha, or None for no shortcuts.  Dropout is left out: in evaluation it is the
    identity, so the rebuilt network's "eval" pass is the saved network's.
    """
    affines, norms, flat, flat_grad = _flat_affines([W.shape for W, _ in weights], weights[0][0].dtype, norm)
    for affine, (W, b) in zip(affines, weights):
        affine.params["W"][...] = W
        affine.params["b"][...] = b
    if norm != "none":
        if norm_state is None or len(norm_state) != len(norms):
            raise ValueError(f"a {norm}-normalized network needs the state of its {len(norms)} norm layers, "
                             f"got {'none' if norm_state is None else len(norm_state)}")
        for layer, state in zip(norms, norm_state):
            for k, v in layer.params.items():
                v[...] = state[k]
            for k in RUNNING_STATS:
                if hasattr(layer, k):
                    getattr(layer, k)[...] = state[k]
    return MLP(affines, activation, loss_name, flat, flat_grad, norms=norms, residual_scale=residual_scale)


def mlp_from_config(config: RunConfig, weights, norm_state: list[dict] | None = None) -> MLP:
    """The evaluation network of a run of ``config``, from its saved weights and norm state."""
    return mlp_from_weights(weights, get_activation(config.activation, config.leaky_slope), config.loss,
                            config.norm, norm_state, config.residual_scale if config.residual else None)


BOUNDARY_FLOPS = 4e9  # the grid's forward pass costs at most this (about 0.2 s), whatever the network


def boundary_resolution(weights, most: int = 120, least: int = 24) -> int:
    """Grid points per side for the decision boundary: ``most`` for small networks, fewer for
    large ones, so that drawing a depth-100, width-512 network does not take a minute."""
    flops_per_point = 2.0 * sum(W.size for W, _ in weights)
    side = int(math.sqrt(BOUNDARY_FLOPS / max(flops_per_point, 1.0)))
    return max(least, min(most, side))


def decision_grid(model: MLP, X: np.ndarray, resolution: int | None = None, margin: float = 0.3):
    """The class a 2-input network predicts (evaluation mode) over the plane around X (N, 2), ``margin``
    beyond its points.

    Returns xs (R,), ys (R,) and the predicted class (R, R), row i at ys[i]; R is ``resolution``
    (default: ``boundary_resolution`` of the model's weights).
    """
    weights = [(a.params["W"], a.params["b"]) for a in model.affines]
    resolution = resolution or boundary_resolution(weights)
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    xs = np.linspace(lo[0], hi[0], resolution)
    ys = np.linspace(lo[1], hi[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.c_[gx.ravel(), gy.ravel()]
    with np.errstate(all="ignore"):
        pred = model.predict(grid.astype(model.flat_params.dtype)).reshape(gx.shape)
    return xs, ys, pred
