"""Numbers from the environment: defaults, bounds, and a message that names the variable."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nodes.environment import decimal, real, whole


def test_defaults_when_unset_and_values_when_set():
    assert whole({}, "N", 5, least=1) == 5 and whole({"N": "7"}, "N", 5, least=1) == 7
    assert real({"X": "0.25"}, "X", 1.0, above=0) == 0.25
    assert decimal({"D": "1.20"}, "D", "0") == Decimal("1.20") and decimal({}, "D", "0.0012") == Decimal("0.0012")


@pytest.mark.parametrize(
    ("read", "text", "wants"),
    [
        (lambda e: whole(e, "N", 5, least=1, most=10), "0", "a whole number at least 1 at most 10, such as 5"),
        (lambda e: whole(e, "N", 5, least=1, most=10), "2.5", "a whole number"),
        (lambda e: whole(e, "N", 5, least=1, most=10), "+5", "a whole number"),
        (lambda e: whole(e, "N", 5, least=1, most=10), " 5", "a whole number"),
        (lambda e: real(e, "N", 5.0, above=0), "0", "a number above 0"),
        (lambda e: real(e, "N", 5.0), "nan", "a number"),
        (lambda e: real(e, "N", 5.0), "inf", "a number"),
        (lambda e: decimal(e, "N", "0.01", least=Decimal(0), below=Decimal(1)), "1", "below 1"),
        (lambda e: decimal(e, "N", "1"), "one", "a decimal number"),
        (lambda e: decimal(e, "N", "1"), "", "a decimal number"),
    ],
)
def test_a_wrong_value_names_the_variable_and_what_it_wants(read, text, wants):
    with pytest.raises(ValueError, match="N=") as err:
        read({"N": text})
    assert wants in str(err.value)
