"""Sizes that follow the data (asrdistill.sizes, suggest-sizes)."""
import json

import pytest

from asrdistill.data.make_data_dir import MakeDataDirConfig, make_data_dir
from asrdistill.errors import UserFacingError
from test_make_data_dir import _corpus


def test_suggest_sizes_follow_the_data(tmp_path, capsys):
    from asrdistill.cli import main
    from asrdistill.sizes import DataStats, suggest_sizes

    small, big = suggest_sizes(DataStats(200, 4, 0.13, "x")), suggest_sizes(DataStats(28000, 250, 100.0, "x"))
    assert small.sizes["tri_leaves"] < big.sizes["tri_leaves"] == 2500 and big.sizes["tri_gauss"] == 15000
    assert small.sizes["mono_subset"] == 0 and big.sizes["mono_subset"] == 2000
    assert small.sizes["preset"] == "tiny" and big.sizes["beam"] == 13
    wsj = suggest_sizes(DataStats(7138, 83, 15.0, "x"))
    assert (wsj.sizes["tri_leaves"], wsj.sizes["tri_gauss"]) == (2000, 10000)
    sizes = [suggest_sizes(DataStats(100, 4, h, "x")).sizes for h in (0.05, 0.5, 2, 8, 40, 300, 900)]
    assert all(a["tri_leaves"] <= b["tri_leaves"] and a["tri_gauss"] <= b["tri_gauss"]
               for a, b in zip(sizes, sizes[1:]))
    user = suggest_sizes(DataStats(200, 4, 0.13, "x"), user={"tri_leaves": "300", "preset": "small"})
    assert user.sizes["tri_leaves"] == 300 and user.chosen_by["tri_leaves"] == "user"
    assert user.chosen_by["tri_gauss"] == "rule"
    with pytest.raises(UserFacingError, match="preset"):
        suggest_sizes(DataStats(200, 4, 0.13, "x"), user={"preset": "huge"})

    audio, trans = _corpus(tmp_path)
    make_data_dir([audio], tmp_path / "d", [trans], MakeDataDirConfig(speaker_pattern="^([a-z]+)_"))
    assert main(["suggest-sizes", "--train", str(tmp_path / "d"), "--json", str(tmp_path / "s.json"),
                 "--recipe-options", "--set", "epochs=2"]) == 0
    opts = capsys.readouterr().out.split()
    assert opts[opts.index("--epochs") + 1] == "2"
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["data"]["utterances"] == 20 and record["data"]["duration_source"] == "utt2dur"
    assert record["chosen_by"]["epochs"] == "user" and record["sizes"]["epochs"] == 2
