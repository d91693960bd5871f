"""`align3r.configs.find_config`: the one way every command finds its configs (the user's
--config-dir first, then the shipped configs; a .yaml path from its own folder)."""

from __future__ import annotations

import pytest

from align3r.configs import config_dir, config_names, find_config
from align3r.errors import InputError


def test_shipped_configs_by_name_and_group():
    assert find_config("infer").folder == config_dir() and find_config("infer").name == "infer"
    table = find_config("supp_t3", group="eval/table")
    assert (table.folder, table.name, table.search_path) == (config_dir(), "eval/table/supp_t3", ())
    train = find_config("tiny", shipped="train")
    assert (train.folder, train.name) == (config_dir("train"), "tiny")
    assert "supp_t3" in config_names([config_dir()], "eval/table")


def test_a_user_folder_comes_first_and_keeps_the_shipped_ones_on_the_search_path(tmp_path):
    (tmp_path / "eval" / "table").mkdir(parents=True)
    (tmp_path / "eval" / "table" / "mine.yaml").write_text("table: {}\n")
    (tmp_path / "infer.yaml").write_text("size: 224\n")
    mine = find_config("mine", user_dir=tmp_path, group="eval/table")
    assert (mine.folder, mine.name, mine.search_path) == (tmp_path.resolve(), "eval/table/mine", (config_dir(),))
    assert find_config("infer", user_dir=tmp_path).folder == tmp_path.resolve()
    shipped = find_config("supp_t3", user_dir=tmp_path, group="eval/table")  # only shipped: composed from there
    assert (shipped.folder, shipped.search_path) == (config_dir(), (tmp_path.resolve(),))
    assert config_names([tmp_path.resolve(), config_dir()], "eval/table")[:1] == ["camera_pose"]
    assert "mine" in config_names([tmp_path.resolve(), config_dir()], "eval/table")


def test_a_path_is_composed_from_its_folder(tmp_path):
    path = tmp_path / "x" / "my.yaml"
    path.parent.mkdir()
    path.write_text("defaults: [align3r_depthpro, _self_]\n")
    found = find_config(str(path), shipped="train")
    assert (found.folder, found.name, found.search_path) == (path.parent, "my", (config_dir("train"),))


def test_errors_name_the_path_or_the_close_matches(tmp_path):
    with pytest.raises(InputError, match=r"no table 'supp_t9' in .*eval/table; available: supp_t4, supp_t3, supp_t2, supp_t1, "):
        find_config("supp_t9", group="eval/table", what="table")
    with pytest.raises(InputError, match=r"--config-dir .*: folder .* not found"):
        find_config("infer", user_dir=tmp_path / "absent")
    with pytest.raises(InputError, match=r"training config file /nonexistent\.yaml not found"):
        find_config("/nonexistent.yaml", shipped="train", what="training config")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(InputError, match=r"is not a \.yaml file"):
        find_config(str(tmp_path / "notes.txt"))
