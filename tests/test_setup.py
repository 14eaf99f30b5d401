"""The setup table: the paper profile is the sources' experiment, setting by setting, or says why not."""
import dataclasses
from pathlib import Path

from landscape_core.cli.commands import profile_params, setup_table
from landscape_core.report.setup import SETTINGS, setup_rows
from landscape_core.report.tables import markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_paper_profile_departs_from_no_stated_setting_without_a_reason():
    rows = setup_table()
    assert len(rows) == len(SETTINGS) >= 25
    bad = [r["setting"] for r in rows if r["paper status"] == "DEPARTS, unexplained"]
    assert not bad, f"the paper profile departs from the sources without a reason: {bad}"
    assert all(r["paper profile"] != "-" for r in rows), [r["setting"] for r in rows if r["paper profile"] == "-"]
    stated = [r for r in rows if r["sources"] != "-"]
    assert sum(r["paper status"] == "as the paper" for r in stated) == len(stated)


def test_a_paper_profile_that_departs_is_named():
    paper = profile_params("paper")
    P = paper["02_gradient_dynamics"]
    changed = dataclasses.replace(P, training=dataclasses.replace(P.training, lr=1e-3, pgd_step=None), first_n=2000)
    rows = {r["setting"]: r for r in setup_rows({"paper": {**paper, "02_gradient_dynamics": changed}})}
    for setting in ("MNIST: optimiser and learning rate", "MNIST: training attack at eps 0.1",
                    "Fig 2 / Fig 8: windows (MNIST)"):
        assert rows[setting]["paper status"] == "DEPARTS, unexplained", setting
    assert rows["MNIST: optimiser and learning rate"]["paper profile"] == "Adam, 1e-3"


def test_the_readme_shows_the_table_as_generated():
    table = markdown(setup_table())
    assert table in README.read_text(), "README's setup table is stale: paste `python -m landscape_core setup`"
