"""T/NK-cell aplasia: threshold (strictly below), onset, recovery on 2 consecutive values,
censoring without recovery; thresholds carry their source."""

from __future__ import annotations

import pytest

from celltrial.clinical.aplasia import THRESHOLDS, AplasiaThreshold, assess_aplasia
from celltrial.errors import InvalidValue

# (marker, counts, aplastic, onset, recovery, duration, recovered)
ROWS = [
    ("CD4", [(0, 500), (14, 200), (28, 250)], False, None, None, None, False),  # 200 is not < 200
    ("CD4", [(0, 500), (14, 199), (28, 250), (42, 300)], True, 14.0, 28.0, 14.0, True),
    ("CD4", [(0, 500), (14, 50), (28, 250), (42, 150), (56, 210), (70, 220)],
     True, 14.0, 56.0, 42.0, True),               # one value >= 200 does not end aplasia
    ("CD4", [(0, 500), (14, 50), (28, 250)], True, 14.0, None, 14.0, False),  # censored
    ("CD3", [(-7, 100), (0, 300), (7, 150), (14, 200), (21, 400)], True, 7.0, 14.0, 7.0, True),
    ("CD8", [(0, 300), (7, 99.9), (14, 100), (21, 100)], True, 7.0, 14.0, 7.0, True),
    ("CD56", [(0, 120), (7, 50), (14, 60)], False, None, None, None, False),
    ("CD56", [(0, 120), (7, 49), (14, 60), (21, 70)], True, 7.0, 14.0, 7.0, True),
]


@pytest.mark.parametrize(("marker", "counts", "aplastic", "onset", "recovery", "duration",
                          "recovered"), ROWS)
def test_aplasia_table(marker, counts, aplastic, onset, recovery, duration, recovered):
    r = assess_aplasia(marker, counts)
    assert (r.aplastic, r.onset_day, r.recovery_day, r.duration_days, r.recovered) == \
        (aplastic, onset, recovery, duration, recovered)


def test_every_threshold_has_a_source():
    assert set(THRESHOLDS) == {"CD3", "CD4", "CD8", "CD56"}
    assert all(t.source.strip() for t in THRESHOLDS.values())


def test_declared_threshold():
    table = {"CD19": AplasiaThreshold("CD19", 10.0, "protocol-declared", recovery_consecutive=1)}
    r = assess_aplasia("CD19", [(0, 100), (7, 5), (14, 10)], thresholds=table)
    assert (r.onset_day, r.recovery_day, r.nadir_per_ul) == (7.0, 14.0, 5.0)


@pytest.mark.parametrize(("marker", "counts"), [("CD5", [(0, 1)]), ("CD4", [(0, -1)]),
                                                ("CD4", [("a", 1)])])
def test_invalid(marker, counts):
    with pytest.raises(InvalidValue):
        assess_aplasia(marker, counts)
