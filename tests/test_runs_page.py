"""The Runs page and the pages' writes to the run store, through AppTest with a temporary store."""

import pytest

pytest.importorskip("streamlit")

from apptest import app  # noqa: E402

from lab import RunConfig, train  # noqa: E402
from lab.store.runstore import open_store  # noqa: E402

SMALL = RunConfig(samples=200, epochs=3, depth=3, width=8, dtype="float64")


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(path))  # read at every use: no handle kept between tests
    return path


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    return at


def fill(path, configs):
    with open_store(path) as store:
        return [store.save(train(c), name, "cli") for name, c in configs.items()]


def pick(at, *ids):
    return ok(at.multiselect(key="runs_pick").set_value(list(ids)).run())


def test_a_run_trained_on_train_is_listed_after_a_restart(store_path):
    at = app("pages/train.py", SMALL)
    ok(at.sidebar.form_submit_button[0].click().run())
    trained = at.session_state["result"]
    [name] = at.session_state["stored_ids"]
    # a new session (the app started again), on the same store
    at = app("pages/runs.py")
    table = at.dataframe[0].value
    assert list(table["name"]) == [name] and list(table["source"]) == ["train"]
    assert table["final loss"].iloc[0] == pytest.approx(trained.history["loss"].iloc[-1])
    assert store_path.exists()


def test_filter_overlay_rename_delete_and_undo(store_path):
    ids = fill(store_path, {"tanh run": SMALL.replace(activation="tanh"),
                            "relu run": SMALL.replace(activation="relu", epochs=2)})
    at = app("pages/runs.py")
    assert list(at.dataframe[0].value["name"]) == ["relu run", "tanh run"]  # newest first
    ok(at.selectbox(key="runs_f_activation").set_value("tanh").run())
    assert list(at.dataframe[0].value["name"]) == ["tanh run"]
    ok(at.selectbox(key="runs_f_activation").set_value("(any)").run())
    ok(at.text_input(key="runs_search").input("RELU").run())
    assert list(at.dataframe[0].value["name"]) == ["relu run"]
    ok(at.text_input(key="runs_search").input("").run())
    pick(at, *ids)
    assert [c.key for c in at.get("plotly_chart")] == ["runs_loss", "runs_profiles"]
    loss = at.get("plotly_chart")[0].proto.spec
    assert "tanh run" in loss and "relu run" in loss
    # rename one, with tags and a note
    pick(at, ids[0])
    at.text_input(key=f"runs_name_{ids[0]}").input("renamed")
    at.text_input(key=f"runs_tags_{ids[0]}").input("good, tanh")
    ok(at.form_submit_button[0].click().run())
    assert at.multiselect(key="runs_pick").value == [ids[0]]  # still selected under its new name
    with open_store(store_path) as store:
        record = store.record(ids[0])
    assert record["name"] == "renamed" and record["tags"] == ["good", "tanh"]
    ok(at.selectbox(key="runs_f_tags").set_value("good").run())
    assert list(at.dataframe[0].value["name"]) == ["renamed"]
    ok(at.selectbox(key="runs_f_tags").set_value("(any)").run())
    # delete both, then undo
    pick(at, *ids)
    ok(at.button(key="runs_delete").click().run())
    assert at.dataframe[0].value.empty if at.dataframe else True
    with open_store(store_path) as store:
        assert store.runs().empty
    ok(at.button(key="runs_undo").click().run())
    assert sorted(at.dataframe[0].value["name"]) == ["relu run", "renamed"]
    assert any("Brought back 2 runs" in s.value for s in at.success)


def test_open_in_train_shows_the_stored_run_without_training(store_path, monkeypatch):
    [run_id] = fill(store_path, {"stored": SMALL})
    at = app("pages/runs.py")

    def refuse(*_, **__):
        raise AssertionError("Open in Train trained the run again")

    monkeypatch.setattr("pages.ui.playback.Trainer", refuse)
    monkeypatch.setattr("pages.ui.running.train", refuse)
    pick(at, run_id)
    ok(at.button(key="runs_open").click().run())
    shown = at.session_state["result"]
    with open_store(store_path) as store:
        stored = store.load(run_id)
    assert shown.history.equals(stored.history) and shown.config == SMALL
    assert "trainer" not in at.session_state
    assert at.session_state["train_settings"] == SMALL
    assert [c.key for c in at.get("plotly_chart")] == ["loss", "profile", "network", "heat", "hists", "delta_hists",
                                                      "boundary"]


def test_compare_and_explorer_write_to_the_store(store_path):
    at = app("pages/init_explorer.py")
    ok(at.run())  # a rerun does not store the probes again
    at.switch_page("pages/compare.py").run()
    at.selectbox(key="c_axis").set_value("depth").run()
    at.text_input(key="c_text_depth").input("2, 3")
    ok(at.form_submit_button[0].click().run())
    with open_store(store_path) as store:
        runs = store.runs()
    assert sorted(runs["source"]) == ["compare", "compare", "explorer", "explorer"]
    assert runs.loc[runs["source"] == "compare", "group"].nunique() == 1


def test_a_corrupt_store_is_reported_once_and_left_as_it_is(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    junk = b"this is not a database\n" * 100
    path.write_bytes(junk)
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(path))
    at = app("pages/train.py", SMALL)
    ok(at.sidebar.form_submit_button[0].click().run())
    assert at.session_state["result"] is not None and len(at.session_state["runs"]) == 1
    said = [w.value for w in at.warning if "run store cannot be used" in w.value]
    assert len(said) == 1
    at.switch_page("pages/runs.py").run()
    ok(at.switch_page("pages/runs.py").run())
    assert not [w for w in at.warning if "run store cannot be used" in w.value]  # once per session
    assert path.read_bytes() == junk


def test_no_store_says_how_to_turn_it_on():
    at = app("pages/runs.py")  # conftest turns the store off
    assert any("BACKPROP_LAB_STORE" in i.value and "off" in i.value for i in at.info)


def test_compares_session_panel_shows_the_runs_as_the_store_has_them(store_path):
    at = app("pages/train.py", SMALL)
    ok(at.sidebar.form_submit_button[0].click().run())
    [(name, run_id)] = at.session_state["stored_ids"].items()
    with open_store(store_path) as store:
        store.rename(run_id, "kept for later")  # as the Runs page (or another session) would
    ok(at.switch_page("pages/compare.py").run())
    [row] = at.dataframe[0].value.to_dict("records")
    assert row["run"] == name and row["in the store"] == f"#{run_id} kept for later"
    at.multiselect(key="delete_pick").set_value([name])
    ok(at.form_submit_button(key="FormSubmitter:delete-Delete").click().run())
    with open_store(store_path) as store:
        assert store.runs().empty and len(store.runs(include_deleted=True)) == 1  # undone on the Runs page


def test_a_deleted_run_leaves_the_selection(store_path):
    ids = fill(store_path, {"first": SMALL, "second": SMALL.replace(epochs=2), "third": SMALL.replace(epochs=1)})
    at = app("pages/runs.py")
    pick(at, ids[0], ids[1])
    with open_store(store_path) as store:  # deleted elsewhere: another tab, or Compare's session panel
        store.delete([ids[0]])
    ok(at.run())
    assert at.multiselect(key="runs_pick").value == [ids[1]]
    assert all(f"#{ids[0]}" not in o for o in at.multiselect(key="runs_pick").options)
    ok(at.button(key="runs_delete").click().run())  # deleted here: the chip goes with it
    assert at.multiselect(key="runs_pick").value == []
    ok(at.button(key="runs_undo").click().run())
    assert at.multiselect(key="runs_pick").value == []


def test_dropout_clipping_and_weight_decay_are_columns_and_filters(store_path):
    fill(store_path, {"plain": SMALL, "dropped": SMALL.replace(dropout=0.2),
                      "clipped": SMALL.replace(clip_norm=1.0, weight_decay=1e-4)})
    with open_store(store_path) as store:
        listed = store.runs().set_index("name")
    assert listed.loc["dropped", "dropout"] == 0.2 and listed.loc["plain", "dropout"] == 0.0
    assert listed.loc["clipped", "clip_norm"] == 1.0 and listed.loc["clipped", "weight_decay"] == 1e-4
    at = app("pages/runs.py")
    table = at.dataframe[0].value
    assert {"dropout", "clip_norm", "weight_decay"} <= set(table.columns)
    ok(at.selectbox(key="runs_f_dropout").set_value(0.2).run())
    assert list(at.dataframe[0].value["name"]) == ["dropped"]
    ok(at.selectbox(key="runs_f_dropout").set_value("(any)").run())
    ok(at.selectbox(key="runs_f_weight_decay").set_value(1e-4).run())
    assert list(at.dataframe[0].value["name"]) == ["clipped"]
    ok(at.selectbox(key="runs_f_weight_decay").set_value("(any)").run())
    ok(at.selectbox(key="runs_f_clip_norm").set_value(1.0).run())
    assert list(at.dataframe[0].value["name"]) == ["clipped"]
