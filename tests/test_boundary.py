"""The decision boundary: its cost is bounded for any network, and CSV labels stay text."""
import numpy as np

from lab import RunConfig, make_dataset, train
from lab.charts import boundary_figure
from lab.model import BOUNDARY_FLOPS, boundary_resolution


def _weights(depth, width):
    return [(np.zeros((2 if l == 0 else width, width)), np.zeros(width)) for l in range(depth)]


def test_grid_shrinks_with_the_network_so_its_cost_is_bounded():
    assert boundary_resolution(_weights(2, 16)) == 120
    for depth, width in [(10, 256), (100, 128), (100, 512)]:
        side = boundary_resolution(_weights(depth, width))
        flops = side**2 * 2 * (2 * width + (depth - 1) * width * width)
        assert side == 24 or flops <= BOUNDARY_FLOPS * 1.01, (depth, width, side)
    assert boundary_resolution(_weights(100, 512)) == 24


def test_csv_labels_are_escaped_in_the_legend(tmp_path):
    path = tmp_path / "d.csv"
    link, bold = '<a href=""http://x"">click</a>', "**b**"  # CSV-quoted below
    rows = [f'{x},{y},"{link if x * y > 0 else bold}"' for x, y in np.random.default_rng(0).uniform(-1, 1, (60, 2))]
    path.write_text("x1,x2,label\n" + "\n".join(rows) + "\n")
    config = RunConfig(dataset="csv", data_path=str(path), label="label", epochs=1, depth=2, width=4)
    result = train(config, data=make_dataset(config))
    names = [t.name for t in boundary_figure(result).data if t.name]
    assert any("&lt;a href=" in n for n in names)
    assert not any("<a" in n for n in names)


def test_run_names_are_escaped_in_comparison_charts():
    from lab.charts import compare_loss_figure, profiles_grid

    result = train(RunConfig(samples=64, epochs=2, depth=2, width=4))
    name = '<a href="http://x">run</a> <img src=x>'
    loss = compare_loss_figure({name: result.history}, {name: name})
    grid = profiles_grid({name: result.layers}, {name: name})
    texts = [t.name or "" for t in loss.data + grid.data] + [a.text or "" for a in grid.layout.annotations]
    assert any("&lt;a href=" in t for t in texts)
    assert not any("<a " in t or "<img" in t for t in texts)


def test_decision_grid_is_the_models_prediction_over_the_plane():
    from lab.activations import get_activation
    from lab.model import decision_grid, mlp_from_weights

    result = train(RunConfig(samples=200, epochs=2, depth=2, width=8))
    X = result.data.X_train
    xs, ys, pred = decision_grid(result.weights, get_activation("relu"), "cross_entropy", X, resolution=30)
    assert xs.shape == ys.shape == (30,) and pred.shape == (30, 30)
    assert xs[0] == X[:, 0].min() - 0.3 and ys[-1] == X[:, 1].max() + 0.3
    model = mlp_from_weights(result.weights, get_activation("relu"), "cross_entropy")
    for i, j in [(0, 0), (3, 17), (29, 29)]:
        assert pred[i, j] == model.predict(np.array([[xs[j], ys[i]]]))[0]
