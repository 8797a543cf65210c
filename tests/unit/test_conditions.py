from typing import Any

import pytest

from geo_engine.decision.conditions import compile_condition
from geo_engine.decision.errors import InvalidDefinition
from geo_engine.decision.templates import check, render

EXAMPLE = {
    "all": [
        {"field": "profile.segment", "op": "in", "value": ["champions", "loyal"]},
        {"field": "context.local_hour", "op": "between", "value": [9, 19]},
    ]
}


def test_example_evaluates() -> None:
    p = compile_condition(EXAMPLE)
    assert p({"profile.segment": "loyal", "context.local_hour": 10.5})
    assert not p({"profile.segment": "lost", "context.local_hour": 10.5})
    assert not p({"profile.segment": "loyal", "context.local_hour": 20})
    assert not p({"profile.segment": "loyal"})  # missing fact: false


def test_any_not_and_dynamic_affinity() -> None:
    p = compile_condition(
        {
            "any": [
                {"field": "profile.affinity.shoes", "op": "gte", "value": 0.3},
                {"not": {"field": "profile.churn_risk", "op": "eq", "value": "none"}},
            ]
        }
    )
    assert p({"profile.affinity.shoes": 0.5, "profile.churn_risk": "none"})
    assert p({"profile.churn_risk": "high"})
    assert not p({"profile.churn_risk": "none"})


@pytest.mark.parametrize(
    ("cond", "path"),
    [
        ({"field": "profile.nope", "op": "eq", "value": 1}, "conditions.field"),
        ({"field": "profile.segment", "op": "gt", "value": 1}, "conditions.op"),
        ({"field": "profile.segment", "op": "eq", "value": "vip"}, "conditions.value"),
        (
            {"all": [{"field": "context.local_hour", "op": "lt", "value": "9"}]},
            "conditions.all.0.value",
        ),
        (
            {"all": [EXAMPLE, {"field": "context.local_hour", "op": "between", "value": [19, 9]}]},
            "conditions.all.1.value",
        ),
        ({"all": []}, "conditions.all"),
        ({"field": "profile.segment", "op": "in", "value": ["loyal", 3]}, "conditions.value.1"),
        ({"foo": 1}, "conditions"),
        ([], "conditions"),
    ],
)
def test_refused_with_path(cond: Any, path: str) -> None:
    with pytest.raises(InvalidDefinition) as e:
        compile_condition(cond)
    assert e.value.field == path


def test_templates() -> None:
    assert check("Bonjour {first_name}, -10% à {store_name}", "t") == ("first_name", "store_name")
    with pytest.raises(InvalidDefinition, match="unknown placeholder"):
        check("Bonjour {prenom}", "t")
    with pytest.raises(InvalidDefinition, match="brace"):
        check("Bonjour {first_name", "t")
    assert render("Hi {first_name} at {store_name}", {"first_name": "Léa"}) == "Hi Léa at "
