from dataclasses import dataclass

import pytest

from landscape_core.studies import LinearTheoryParams
from landscape_core.core.spec import ParameterError, Spec, param


@dataclass(frozen=True)
class Inner(Spec):
    width: int = param(4, ge=1)


@dataclass(frozen=True)
class Outer(Spec):
    eps: float = param(0.3, ge=0.0, doc="budget")
    kind: str = param("cosine", choices=("constant", "cosine", "linear"))
    grid: tuple[float, ...] = param((0.0, 0.1), each=dict(ge=0.0), min_len=1)
    steps: int | None = param(None, ge=1)
    flag: bool = param(False)
    inner: Inner = param(Inner())


def test_defaults_and_coercion():
    s = Outer.from_params({"eps": 1, "grid": [0, 0.5], "inner": {"width": 8}})
    assert s.eps == 1.0 and isinstance(s.eps, float)
    assert s.grid == (0.0, 0.5) and s.inner == Inner(width=8)
    assert s.to_dict()["grid"] == [0.0, 0.5]


@pytest.mark.parametrize("params, name, fragment", [
    ({"eps": -1}, "eps", ">= 0.0"),
    ({"eps": "1e-3"}, "eps", "write 1.0e-3"),
    ({"eps": True}, "eps", "must be a number"),
    ({"kind": "cosin"}, "kind", "one of"),
    ({"grid": [0.1, -0.2]}, "grid[1]", ">= 0.0"),
    ({"grid": []}, "grid", "at least 1"),
    ({"steps": 0}, "steps", ">= 1"),
    ({"steps": 2.5}, "steps", "integer"),
    ({"flag": "true"}, "flag", "boolean"),
    ({"inner": {"width": 0}}, "width", ">= 1"),
    ({"inner": {"widht": 2}}, "widht", "did you mean 'width'"),
    ({"epss": 0.1}, "epss", "did you mean 'eps'"),
])
def test_bad_values_name_parameter_value_and_rule(params, name, fragment):
    with pytest.raises(ParameterError) as err:
        Outer.from_params(params, where="nb")
    assert err.value.name == name
    assert f"'{name}'" in str(err.value) and fragment in str(err.value)


def test_from_namespace_rejects_injected_typo():
    before = {"np", "torch"}
    ns = {"np": object, "torch": object, "eps": 0.2, "kind": "linear", "epsilon": 0.5, "_private": 1}
    with pytest.raises(ParameterError, match="epsilon"):
        Outer.from_namespace(ns, before)
    ok = Outer.from_namespace({k: v for k, v in ns.items() if k != "epsilon"}, before)
    assert ok.eps == 0.2 and ok.kind == "linear"


def test_digest_is_stable_and_value_sensitive():
    a, b = Outer(), Outer.from_params({"eps": 0.3})
    assert a.digest() == b.digest()
    assert a.digest() != Outer(eps=0.31).digest()


def test_notebook_params_cross_checks():
    with pytest.raises(ParameterError, match="eps_grid"):
        LinearTheoryParams(eps_grid=(0.2, 0.1, 0.3))
    with pytest.raises(ParameterError, match="profile"):
        LinearTheoryParams(profile="fast")
    assert "eps_grid" in LinearTheoryParams.describe()
