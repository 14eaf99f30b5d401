"""Verdicts: holds / fails / untestable at this scale, with the regime a claim's models must be in."""
import json

from landscape_core.analysis.dynamics import Health
from landscape_core.report.claims import Claims, Regime, summarise

TRAINED = Health(width=4, constant=False, dead_fraction=0.0, robust_err=0.4)
PLATEAU = Health(width=4, constant=False, dead_fraction=0.0, robust_err=0.88)
CONSTANT = Health(width=4, constant=True, dead_fraction=1.0, robust_err=0.3)   # even with a low error


def test_a_constant_classifier_makes_a_claim_untestable_whatever_its_rule_says():
    c = Claims("nb", "quick")
    regime = Regime.trained({"eps=0.1": TRAINED, "eps=0.4": CONSTANT})
    c.check("rule true", True, "m", "r", regime)
    c.check("rule false", False, "m", "r", regime)
    assert [x.verdict for x in c.items] == ["untestable", "untestable"]
    assert not any(x.holds for x in c.items)
    assert "eps=0.4: constant classifier" in c.items[0].reason and "eps=0.1" not in c.items[0].reason
    c.check("in regime", False, "m", "r", Regime.trained({"eps=0.1": TRAINED}))
    c.check("no regime", True, "m")
    assert [x.verdict for x in c.items[2:]] == ["fails", "holds"]


def test_regime_need_counts_trained_models():
    assert Regime.trained({"a": TRAINED, "b": PLATEAU}, need=1).met
    assert not Regime.trained({"a": TRAINED, "b": PLATEAU}, need=2).met
    assert not Regime.trained({"a": TRAINED, "b": PLATEAU}).met


def test_a_trend_is_tested_over_the_trained_budgets_only():
    eps = [0.0, 0.1, 0.2, 0.3, 0.4]
    values = [1.0, 2.0, 3.0, 4.0, 0.5]             # rises while the models train; the plateau model drops
    health = {0.0: TRAINED, 0.1: TRAINED, 0.2: TRAINED, 0.3: TRAINED, 0.4: PLATEAU}
    c = Claims("nb", "quick")
    c.trend("rises", eps, values, +1, "v", "v")                        # every model counts: fails
    c.trend("rises", eps, values, +1, "v", "v", health=health)         # trained ones only: holds
    c.trend("falls", eps, values, -1, "v", "v", health=health)         # wrong direction: fails
    few = {**health, 0.2: PLATEAU, 0.3: CONSTANT}
    c.trend("rises", eps, values, +1, "v", "v", health=few)            # two trained budgets: untestable
    assert [x.verdict for x in c.items] == ["fails", "holds", "fails", "untestable"]
    assert "over eps [0.00, 0.10, 0.20, 0.30] only" in c.items[1].measured
    assert "eps=0.3: constant classifier" in c.items[3].reason and "eps=0.4: on the plateau" in c.items[3].reason


def test_table_and_summary_count_the_three_verdicts_apart(tmp_path):
    c = Claims("02_x", "smoke")
    c.check("a", True, "m")
    c.check("b", False, "m")
    c.check("c", True, "m", regime=Regime.trained({"eps=0.4": PLATEAU}))
    text = c.table()
    assert text.splitlines()[0].endswith("1 holds, 1 fails, 1 untestable at this scale")
    assert "[untestable] 3. c" in text and "not met:  eps=0.4: on the plateau (robust train err 0.88)" in text
    c.save(tmp_path)
    saved = json.loads((tmp_path / "02_x.json").read_text())["claims"]
    assert [x["verdict"] for x in saved] == ["holds", "fails", "untestable"] and saved[2]["holds"] is False
    summary = summarise(tmp_path, "smoke")
    assert "all notebooks: 3 claims: 1 holds, 1 fails, 1 untestable at this scale" in summary
    assert "test the plumbing, not the paper" in summary
    assert "plumbing" not in summarise(tmp_path, "quick")
