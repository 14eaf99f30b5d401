"""The notebook regression check: numbers masked for nbval, compared within their quantity's tolerance."""
import configparser
import re

import pytest

from landscape_core.core.io import repo_root
from landscape_core.report.regression import (DEFAULT, ERRORS, MASK, NUMBER, RULES, compare_outputs, compare_texts, numbers,
                                              tolerance_for)

METHODS = """| method | eps | clean err (%) | PGD err (%) | local Lipschitz (test) | end of training |
|---|---|---|---|---|---|
| natural | 0.10 | 76.00 | 84.00 | 2.81 | on the plateau (robust train err 0.84) |
| TRADES beta=6 | 0.10 | 79.00 | 85.00 | 2.62 | on the plateau (robust train err 0.86) |
"""


def _sanitize_cfg() -> dict[str, str]:
    text = (repo_root() / "tests" / "sanitize.cfg").read_text()
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(text)
    return {s: (cfg[s]["regex"], cfg[s]["replace"]) for s in cfg.sections()}


def test_nbval_masks_numbers_with_the_pattern_the_check_reads():
    regex, replace = _sanitize_cfg()["numbers"]
    assert regex == NUMBER.pattern and replace == MASK
    masked = re.sub(regex, replace, "lenet-2, conv1 and fc2: eps=0.1, L 2.63, 1.2e-03, nan, 07_local [0.1, 0.4]")
    assert masked == "lenet-<n>, conv1 and fc2: eps=<n>, L <n>, <n>, nan, 07_local [<n>, <n>]"


def test_numbers_are_named_by_their_column_and_row_or_the_words_before_them():
    found = {n.text: n.quantity for n in numbers(METHODS)}
    assert found["2.62"] == "local Lipschitz (test) [TRADES beta=6 | 0.10]"
    assert found["79.00"] == "clean err (%) [TRADES beta=6 | 0.10]"
    aligned = " eps  | adv loss | HVP passes | top eigenvalue raw\n 0.40 |   2.3132 |         44 |      0.304\n"
    assert {n.text: n.quantity for n in numbers(aligned)}["0.304"] == "top eigenvalue raw [0.40]"
    line = "local Lipschitz (test), AT eps=0.1: ascent 0.586, released update 0.062"
    assert numbers(line)[1].quantity == "local Lipschitz (test), AT eps=0.1: ascent"


def test_each_quantity_gets_its_rule():
    assert tolerance_for("local Lipschitz (test) [AT | 0.10]").rel == 0.02
    assert tolerance_for("PGD err (%)") is ERRORS
    assert tolerance_for("something nobody named") is DEFAULT
    # in text, the words nearest the number name it: a scheduler called cosine is not a cosine similarity
    text = "TRADES beta=1: L 2.85, clean 79.0%; TRADES beta=6: L 2.71\nrobust error at lr 0.001: constant 89, cosine 100"
    (l1, clean, l2, lr, constant, cosine) = [n for n in numbers(text) if n.text not in ("1", "6")]
    assert l1.tolerance.rel == 0.02 and l2.tolerance.rel == 0.02 and clean.percent and clean.tolerance is ERRORS
    assert cosine.tolerance is ERRORS and not cosine.fraction
    assert all(n.tolerance is ERRORS for n in numbers("ours (smoke)  89.00(0)    100.00(143)"))
    cell = [n for n in numbers(METHODS) if n.text == "0.84"][0]
    assert cell.quantity == "end of training: on the plateau (robust train err [natural | 0.10]"
    assert cell.tolerance is ERRORS and cell.fraction
    (err,) = numbers("on the plateau (robust train err 0.84)")
    assert err.fraction and ERRORS.allowed(0.84, err.unit, err.fraction) == pytest.approx(0.04)
    assert all(t.why for _, t in RULES) and DEFAULT.why


def test_float_noise_and_rounding_flips_pass():
    new = METHODS.replace("2.62", "2.63").replace("76.00", "75.00")    # a rounding flip, one flipped point
    assert compare_texts(METHODS, new, "07 cell 4") == []


def test_a_lipschitz_constant_off_by_5_percent_fails_naming_quantity_values_and_tolerance():
    new = METHODS.replace("2.62", f"{2.62 * 1.05:.2f}")
    (bad,) = compare_texts(METHODS, new, "07_local_lipschitzness.ipynb cell 4")
    text = str(bad)
    assert "07_local_lipschitzness.ipynb cell 4" in text and "local Lipschitz (test) [TRADES beta=6 | 0.10]" in text
    assert "is 2.75, reference 2.62" in text and "rel 2%" in text


def test_errors_moving_by_more_than_four_points_fail():
    assert compare_texts(METHODS, METHODS.replace("84.00", "88.00"), "x") == []
    (bad,) = compare_texts(METHODS, METHODS.replace("84.00", "88.50"), "x")
    assert bad.quantity == "PGD err (%) [natural | 0.10]"


def test_a_changed_word_or_a_number_that_became_nan_is_a_mismatch():
    assert compare_texts("[holds] 1. rho 0.9", "[FAILS] 1. rho 0.9", "x")[0].quantity == "the text around the numbers"
    assert compare_texts("rho 0.90", "rho nan", "x")


def test_cell_outputs_compare_streams_and_text_and_skip_images():
    ref = [{"output_type": "stream", "name": "stdout", "text": "L 2.62\n"},
           {"output_type": "display_data", "data": {"image/png": "AAAA", "text/plain": "<Figure size 840x320>"}}]
    new = [{"output_type": "stream", "name": "stdout", "text": ["L ", "2.63\n"]},
           {"output_type": "display_data", "data": {"image/png": "BBBB", "text/plain": "<Figure size 840x320>"}}]
    assert compare_outputs(ref, new, "x") == []
    assert compare_outputs(ref, new[:1], "x")[0].quantity == "the number of outputs"
    with pytest.raises(AssertionError):
        assert compare_outputs(ref, [{**new[0], "text": "L 3.00\n"}, new[1]], "x") == []
