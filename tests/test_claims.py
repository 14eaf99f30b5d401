"""Verdicts: holds / fails / untestable at this scale, with the regime a claim's models must be in."""
import json

from landscape_core.analysis.dynamics import Health
from landscape_core.report.claims import Claims, summarise

TRAINED = Health(width=4, constant=False, dead_fraction=0.0, robust_err=0.4, late_fall=0.0, total_fall=0.5)
PLATEAU = Health(width=4, constant=False, dead_fraction=0.0, robust_err=0.88)
CONSTANT = Health(width=4, constant=True, dead_fraction=1.0, robust_err=0.3)   # even with a low error


def test_a_constant_classifier_makes_a_claim_untestable_whatever_its_rule_says():
    c = Claims("nb", "quick")
    c.test("sec6_small_warmup", CONSTANT, TRAINED, 0.3)          # holds: constant stalls, warm-up trains
    c.test("sec6_small_warmup", CONSTANT, PLATEAU, 0.3)          # fails
    c.test("sec6_small_warmup", TRAINED, TRAINED, 0.3)           # premise: constant eps stalled
    assert [x.verdict for x in c.items] == ["holds", "fails", "untestable"]
    assert not c.items[2].holds and "constant eps did not stall" in c.items[2].reason
    assert c.items[0].reason == "" and c.items[0].regime.startswith("the small model stalled")


def test_a_trend_is_tested_over_the_budgets_in_regime_only():
    eps = [0.0, 0.1, 0.2, 0.3, 0.4]
    values = [1.0, 2.0, 3.0, 4.0, 0.5]             # rises while the models train; the plateau model drops
    health = {0.0: TRAINED, 0.1: TRAINED, 0.2: TRAINED, 0.3: TRAINED, 0.4: PLATEAU}
    c = Claims("nb", "quick")
    c.test("fig2b", eps, values, 10)                               # early windows: every model counts: fails
    c.test("fig2d", eps, values, 10, health)                       # converged ones only: holds
    c.test("fig2d", eps, values[::-1], 10, health)                 # wrong direction: fails
    few = {**health, 0.2: PLATEAU, 0.3: CONSTANT}
    c.test("fig2d", eps, values, 10, few)                          # two budgets in regime: untestable
    assert [x.verdict for x in c.items] == ["fails", "holds", "fails", "untestable"]
    assert "over eps [0.00, 0.10, 0.20, 0.30] only" in c.items[1].measured
    assert "eps=0.3: constant classifier" in c.items[3].reason and "eps=0.4: on the plateau" in c.items[3].reason


def test_table_and_summary_count_the_three_verdicts_and_the_two_kinds_apart(tmp_path):
    c = Claims("02_x", "smoke")
    c.test("hessian_scale", [1.0, 1.5])                            # check: holds
    c.test("fig1_kink", {0.6: 0.6, 1.2: 1.0})                 # paper: fails
    c.test("fig2d_zero", [0.0, 0.1], [0.01, 1.0], {0.0: PLATEAU, 0.1: TRAINED})   # paper: untestable
    text = c.table()
    assert text.splitlines()[0].endswith("2 paper claims: 0 hold, 1 fails, 1 untestable at this scale; "
                                         "1 evaluation checks: 1 holds, 0 fail, 0 untestable at this scale")
    assert "[untestable] P2. Fig 2d" in text and "not met:  eps=0: on the plateau (robust train err 0.88)" in text
    c.save(tmp_path)
    saved = json.loads((tmp_path / "02_x.json").read_text())["claims"]
    assert [x["verdict"] for x in saved] == ["holds", "fails", "untestable"] and saved[2]["holds"] is False
    assert saved[0]["kind"] == "check" and saved[1]["key"] == "fig1_kink" and "non-smooth point" in saved[1]["sentence"]
    summary = summarise(tmp_path, "smoke")
    assert ("all notebooks: 2 paper claims: 0 hold, 1 fails, 1 untestable at this scale; 1 evaluation checks: "
            "1 holds, 0 fail, 0 untestable at this scale") in summary
    assert "  [holds] (check) Sec 4.2" in summary
    assert "test the plumbing, not the paper" in summary
    assert "plumbing" not in summarise(tmp_path, "quick")


def test_one_loader_reads_old_claims_files_and_names_a_damaged_one(tmp_path):
    """Files written before verdicts had three values (only ``holds``) and before checks had a ``kind``:
    the summary and the report read them through the one loader; a damaged file is named."""
    import pytest
    from landscape_core.core.io import DamagedFile
    from landscape_core.report.claims import load_claims
    from landscape_core.report.html import build
    old = {"notebook": "02_x", "profile": "smoke", "claims": [
        {"claim": "Fig 1 kink", "measured": "1", "holds": True},
        {"claim": "Fig 2 zero", "measured": "2", "holds": False}]}
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "02_x.json").write_text(json.dumps(old))
    loaded = load_claims(tmp_path / "claims" / "02_x.json")
    assert [(c["verdict"], c["kind"]) for c in loaded["claims"]] == [("holds", "paper"), ("fails", "paper")]
    assert "2 paper claims: 1 holds, 1 fails, 0 untestable" in summarise(tmp_path / "claims", "quick")
    page = build(tmp_path, tmp_path / "runs", "old files").read_text()
    assert "Fig 2 zero" in page and 'class="fails"' in page
    (tmp_path / "claims" / "02_x.json").write_text('{"notebook": "02_x", "claims": [{"claim": 1}]}')
    with pytest.raises(DamagedFile, match="02_x.json"):
        summarise(tmp_path / "claims", "quick")
