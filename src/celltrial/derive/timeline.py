"""Dates, study days and domain access shared by the ADaM builders.

Conventions (docs/data-model.md): dates are ISO 8601 strings in the SDTM frames; study day 0 is
the first CAR-T infusion; a study day is ``date - first infusion date`` in whole days (no day 0
skip, unlike SDTM --DY, because the protocols count day 0 as the infusion day). Time in
kinetics (ADPC ``TIME``) is in days as a float, exact to the minute where both the sample and
the first infusion carry a clock time, else from the dates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

Domains = Mapping[str, pd.DataFrame]
DAY = np.timedelta64(1, "D")


def domain(domains: Domains, name: str, columns: Iterable[str] = ()) -> pd.DataFrame:
    """The domain's frame (empty when absent), guaranteed to hold ``columns`` (missing ones NA)."""
    frame = domains.get(name)
    if frame is None:
        frame = domains.get(name.lower())
    frame = pd.DataFrame() if frame is None else frame
    missing = [c for c in ("USUBJID", *columns) if c not in frame.columns]
    if missing:
        frame = frame.assign(**{c: pd.Series([None] * len(frame), index=frame.index, dtype=object)
                                for c in missing})
    return frame


def to_datetime(values: pd.Series) -> pd.Series:
    """ISO 8601 text (date or date-time) to datetime64; empty or malformed values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[us]")
    text = values.astype(object).where(values.notna(), None)
    return pd.to_datetime(text, errors="coerce", format="ISO8601").astype("datetime64[us]")


def to_date(values: pd.Series) -> pd.Series:
    """Dates (time of day dropped)."""
    return to_datetime(values).dt.normalize()


def has_clock_time(values: pd.Series) -> pd.Series:
    """True where the ISO value carries a time of day (``YYYY-MM-DDThh:mm``)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.notna() & (values != values.dt.normalize())
    return values.astype(object).map(lambda v: isinstance(v, str) and len(v) > 10).astype(bool)


def days_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    """Whole days from ``earlier`` to ``later`` (dates only); NaN where either is missing."""
    delta = (later.dt.normalize() - earlier.dt.normalize()) / DAY
    return delta.astype(float)


def lookup(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """``keys.map(mapping)`` that also works when ``mapping`` is an empty date series (pandas
    cannot map through an empty datetime64 series): missing keys give NaN/NaT of its dtype."""
    if len(mapping) == 0:
        return pd.Series(index=keys.index, dtype=mapping.dtype)
    return keys.map(mapping)


def to_number(values: pd.Series) -> pd.Series:
    """Numbers as float; text that is not a number becomes NaN."""
    return pd.to_numeric(values, errors="coerce").astype(float)


def flag(condition: pd.Series) -> pd.Series:
    """ADaM Y/N flag from a boolean series (NA counts as N)."""
    return pd.Series(np.where(condition.fillna(False).astype(bool), "Y", "N"),
                     index=condition.index, dtype=object)


def attach_subject(frame: pd.DataFrame, adsl: pd.DataFrame,
                   columns: Iterable[str] = ("TRT01A", "TRT01AN", "TRTSDT", "SAFFL"),
                   ) -> pd.DataFrame:
    """Left-join the named ADSL columns onto ``frame`` by USUBJID."""
    cols = ["USUBJID", *[c for c in columns if c in adsl.columns and c not in frame.columns]]
    return frame.merge(adsl[cols], on="USUBJID", how="left")
