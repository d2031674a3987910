"""The pages' session-state keys (pages/ui/state.py): one name each, and none swept with the widgets."""
from pages.ui import state

PREFIXES = [state.TRAIN_WIDGETS, state.COMPARE_WIDGETS, state.GRADCHECK_WIDGETS,
            state.explorer_widgets("A"), state.explorer_widgets("B")]


def keys() -> dict[str, str]:
    prefixes = set(PREFIXES)
    return {name: value for name, value in vars(state).items()
            if name.isupper() and isinstance(value, str) and value not in prefixes}


def test_every_key_is_distinct():
    assert len(set(keys().values())) == len(keys()) >= 13


def test_no_key_is_dropped_with_a_pages_widgets():
    # forget_widgets(prefix) deletes every key starting with the prefix: a stored run or link must survive it
    for name, value in keys().items():
        assert not any(value.startswith(p) for p in PREFIXES), name


def test_widget_key_joins_prefix_and_setting():
    assert state.widget_key(state.TRAIN_WIDGETS, "dataset") == "w_dataset"
    assert state.widget_key(state.explorer_widgets("B"), "depth") == "xB_depth"
