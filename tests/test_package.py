"""The package's import surface: light modules stay light, and ``lab.train`` is the notebook API's function."""
import subprocess
import sys

import pytest

HEAVY = ("pandas", "scipy", "threadpoolctl", "lab.engine.training")


@pytest.mark.parametrize("module", ["lab", "lab.engine.layers", "lab.engine.model", "lab.cli.main"])
def test_light_modules_do_not_load_the_heavy_ones(module):
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_lab_train_is_the_function_whatever_was_imported_first():
    code = ("import lab.engine.training, lab.cli.main; from lab import train, RunResult, make_dataset, RunConfig; "
            "import lab, lab.api; print(callable(train), train is lab.api.train, lab.train is train)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]


def test_exports_and_unknown_names():
    import importlib

    import lab

    for name in lab.__all__:  # each name is the class or function of the module that defines it, not a stand-in
        obj = getattr(lab, name)
        assert obj.__module__.startswith("lab.") and obj.__name__ == name, (name, obj)
        assert getattr(importlib.import_module(obj.__module__), name) is obj
    with pytest.raises(AttributeError):
        lab.no_such_name  # noqa: B018


# lab.report.summaries is not here: train prints its verdict sentence (issue 22); the theory and scipy behind the
# theory captions stay out
RUN_HEAVY = ("scipy", "lab.theory.meanfield", "plotly", "streamlit", "dask")


def test_the_parser_loads_no_pandas():
    """--help and a mistyped option answer without pandas, even though the sweep's help lists its axes."""
    code = f"import sys, lab.cli.main; lab.cli.options.build_parser(); print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_a_train_command_loads_only_what_it_uses(tmp_path):
    argv = ["train", "--samples", "40", "--epochs", "1", "--depth", "2", "--width", "4", "--out", str(tmp_path / "o"),
            "--store", str(tmp_path / "runs.sqlite")]
    code = (f"import sys, lab.cli.main; assert lab.cli.main.main({argv!r}) == 0; "
            f"print(' '.join(m for m in {RUN_HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1].strip() == ""
    assert (tmp_path / "o" / "layers.csv").is_file()
