"""The sweep's choice: the best validation accuracy, the first variant on a tie."""

from __future__ import annotations

from tasks.train import best_variant


def score(variant: int, accuracy: float) -> dict:
    return {"variant": variant, "validation_accuracy": accuracy}


def test_the_best_validation_accuracy_wins():
    scores = [score(0, 0.91), score(1, 0.95), score(2, 0.93)]
    assert best_variant(scores)["variant"] == 1


def test_a_tie_goes_to_the_first_variant_whatever_the_order():
    scores = [score(2, 0.95), score(0, 0.90), score(1, 0.95)]
    assert best_variant(scores)["variant"] == 1
    assert best_variant(list(reversed(scores)))["variant"] == 1
