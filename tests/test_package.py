"""The package's import surface: light modules stay light, and ``lab.train`` is the function."""
import subprocess
import sys

import pytest

HEAVY = ("pandas", "scipy", "threadpoolctl", "lab.training")


@pytest.mark.parametrize("module", ["lab", "lab.layers", "lab.model", "lab.cli"])
def test_light_modules_do_not_load_the_heavy_ones(module):
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_lab_train_is_the_function_whatever_was_imported_first():
    code = ("import lab.training, lab.cli; from lab import train, RunResult, make_dataset, RunConfig; "
            "import lab; print(callable(train), train is lab.training.train, lab.train is train)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "True"]


def test_exports_and_unknown_names():
    import lab

    for name in lab.__all__:
        assert getattr(lab, name) is not None
    with pytest.raises(AttributeError):
        lab.no_such_name  # noqa: B018
