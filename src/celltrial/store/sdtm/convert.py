"""Store domains <-> SDTMIG 3.4 datasets (the XPT and Dataset-JSON exports and imports).

:func:`to_sdtm` writes what SDTMIG 3.4 asks of each domain the store keeps (variables and order
of :mod:`celltrial.store.sdtm.spec`):

- ``DOMAIN`` in every dataset; ``--TEST`` named from CDISC CT by the test code; ``--STRESC``
  from the standard result; ``VSORRES``/``TRORRES`` (the store keeps standard units only, so
  the original result is the standard one); grades and reference limits as character
  (SDTMIG: AETOXGR, LBTOXGR, LBORNRLO, LBORNRHI are Char);
- DM: ``COUNTRY`` (ISO 3166-1 alpha-3, given to the export: the store keeps no country),
  ``RFXSTDTC``/``RFXENDTC`` (first/last infusion given, EX), ``RFENDTC`` (= RFXENDTC, the
  sponsor's definition), ``ACTARMCD``/``ACTARM`` (the planned arm when an infusion was given)
  and, per SDTMIG 3.4 section 5.2 (the DM assumptions on ARMNRS), a subject with no arm has
  ``ARMCD``, ``ARM``, ``ACTARMCD``, ``ACTARM`` null and ``ARMNRS`` ``SCREEN FAILURE`` (DS
  says so) or ``NOT ASSIGNED``; an assigned subject never infused has ``ARMNRS``
  ``ASSIGNED, NOT TREATED``;
- CDISC CT submission values for coded values (:mod:`celltrial.store.sdtm.recode`);
- store variables that are not SDTMIG variables of their domain in ``SUPP--`` (SDTMIG 3.4
  section 8.4), one row per non-missing value;
- CM: ``CMCLAS``/``CMCLASCD``, the class and WHO ATC code of a controlled medication name
  (:mod:`celltrial.clinical.medications`);
- XC, the daily ASTCT CRS/ICANS observation kept as one row with one column per input, as the
  custom findings domain XC: one row per input (XCTESTCD), ``XCGRPID`` holding the store's
  XCSEQ, ``XCSTAT`` ``NOT DONE`` for an input not assessed.

:func:`from_sdtm` reads such datasets (or store-shaped ones) back to the store's domains:
CT values to the store's canonical ones, SUPP-- merged into the parent, XC pivoted back, the
derived variables above dropped, the trial design datasets (TE, TA, TI: rebuilt from the
protocol, :mod:`celltrial.store.sdtm.design`) ignored. A variable the store does not keep
(e.g. ``RACE`` in CDISC's own example dm.json) is refused naming it, unless ``drop_unkept``
is set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pandas as pd

from celltrial.errors import StoreError
from celltrial.store.domains import DOMAINS
from celltrial.store.sdtm import ct, recode
from celltrial.store.sdtm.design import TRIAL_DESIGN
from celltrial.store.sdtm.spec import dataset_spec

SCREEN_FAILURE_ARM = "Screen failure"
"""ARM the store keeps for a screen failure (celltrial.kinetics.virtual); SDTM leaves ARM null."""

DERIVED: dict[str, tuple[str, ...]] = {
    "DM": ("COUNTRY", "RFENDTC", "RFXSTDTC", "RFXENDTC", "ACTARMCD", "ACTARM", "ARMNRS"),
    "SC": ("SCTEST", "SCSTRESC"),
    "EX": ("EXDOSFRM", "EXROUTE"),
    "LB": ("LBSTRESC",),
    "VS": ("VSTEST", "VSORRES", "VSORRESU", "VSSTRESC"),
    "RS": ("RSTEST", "RSDRVFL"),
    "TU": ("TUTEST", "TUSTRESC"),
    "TR": ("TRTEST", "TRORRES", "TRORRESU", "TRSTRESC"),
    "PC": ("PCTEST", "PCORRESU", "PCSTRESC"),
    "IS": ("ISTEST",),
    "CM": ("CMCLAS", "CMCLASCD"),
    "DS": ("DSCAT",),
}
"""Variables the export derives (recomputed on every export, not kept by the store)."""

PC_TESTS = {"CARTQPCR": "CAR Transgene Copies by qPCR",
            "CARTPCT": "CAR+ T Cells/CD3+ T Cells",
            "CARTABS": "CAR+ T Cells"}
"""PCTEST of the sponsor's PCTESTCD (PCTESTCD has no CDISC codelist: analytes are sponsor's)."""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def num_text(value: Any) -> str | None:
    """A number as SDTM character text: whole numbers without a decimal point, others in the
    shortest form that reads back to the same double (Python ``repr``); None when missing."""
    if _missing(value):
        return None
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _shift(value: Any, digits: int) -> Any:
    """``value`` times 10**digits, shifted in decimal (exact for the digits written)."""
    if _missing(value):
        return None
    return float(Decimal(repr(float(value))).scaleb(digits))


def _text_map(series: pd.Series, fn: Any) -> pd.Series:
    return pd.Series([None if _missing(v) else fn(v) for v in series.tolist()],
                     index=series.index, dtype=object)


def dataset_frame(name: str, data: pd.DataFrame) -> pd.DataFrame:
    """``data`` with the spec's columns in order (absent ones null), numbers as float."""
    spec = dataset_spec(name)
    out = {}
    for var in spec.variables:
        column = data[var.name] if var.name in data.columns else pd.Series(
            [None] * len(data), index=data.index, dtype=object)
        if var.type == "Num":
            out[var.name] = pd.to_numeric(column, errors="raise").astype("float64")
        else:
            out[var.name] = _text_map(column, str)
    return pd.DataFrame(out, columns=list(spec.columns)).reset_index(drop=True)


def _test_names(codes: pd.Series, codelist: str) -> pd.Series:
    def name(code: str) -> str | None:
        try:
            return ct.test_name(codelist, code)
        except KeyError:
            return None
    return _text_map(codes, name)


def _supp(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    seq = DOMAINS[name].seq
    rows = []
    for record in frame.to_dict("records"):
        for var, qnam, qlabel, qorig in recode.SUPP[name]:
            value = record.get(var)
            if _missing(value):
                continue
            kind = DOMAINS[name].variable(var).type
            rows.append({"STUDYID": record["STUDYID"], "RDOMAIN": name,
                         "USUBJID": record["USUBJID"], "IDVAR": seq,
                         "IDVARVAL": None if seq is None else num_text(record[seq]),
                         "QNAM": qnam, "QLABEL": qlabel,
                         "QVAL": num_text(value) if kind in ("int", "float") else str(value),
                         "QORIG": qorig, "QEVAL": None})
    return dataset_frame(f"SUPP{name}", pd.DataFrame(rows))


def _dm(dm: pd.DataFrame, ex: pd.DataFrame, ds: pd.DataFrame, country: str | None
        ) -> pd.DataFrame:
    out = dm.copy()
    given = ex[pd.to_numeric(ex["EXDOSE"], errors="coerce").fillna(0) > 0]
    dates = given.dropna(subset=["EXSTDTC"]).groupby("USUBJID")["EXSTDTC"]
    out["RFXSTDTC"] = out["USUBJID"].map(dates.min())
    out["RFXENDTC"] = out["USUBJID"].map(dates.max())
    out["RFENDTC"] = out["RFXENDTC"]
    failed = set(ds.loc[ds["DSDECOD"] == "SCREEN FAILURE", "USUBJID"])
    treated = set(given["USUBJID"])
    arm_nrs, act_cd, act = [], [], []
    for usubjid, armcd, arm in zip(out["USUBJID"], out["ARMCD"], out["ARM"], strict=True):
        if _missing(armcd):
            arm_nrs.append("SCREEN FAILURE" if usubjid in failed else "NOT ASSIGNED")
            act_cd.append(None)
            act.append(None)
        elif usubjid in treated:
            arm_nrs.append(None)
            act_cd.append(armcd)
            act.append(arm)
        else:
            arm_nrs.append("ASSIGNED, NOT TREATED")
            act_cd.append(None)
            act.append(None)
    out["ARMNRS"], out["ACTARMCD"], out["ACTARM"] = arm_nrs, act_cd, act
    out.loc[out["ARMCD"].map(_missing), "ARM"] = None
    out["COUNTRY"] = country
    return out


def _xc(xc: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for record in xc.to_dict("records"):
        for var, (code, name, unit) in recode.XC_TESTS.items():
            value = record.get(var)
            kind = DOMAINS["XC"].variable(var).type
            text = num_text(value) if kind in ("int", "float") else (
                None if _missing(value) else str(value))
            numeric = kind in ("int", "float") and text is not None
            rows.append({"STUDYID": record["STUDYID"], "USUBJID": record["USUBJID"],
                         "XCGRPID": num_text(record["XCSEQ"]), "XCTESTCD": code,
                         "XCTEST": name, "XCORRES": text, "XCORRESU": unit if text else None,
                         "XCSTRESC": text, "XCSTRESN": float(value) if numeric else None,
                         "XCSTRESU": unit if numeric else None,
                         "XCSTAT": None if text is not None else "NOT DONE",
                         "XCDTC": record["XCDTC"]})
    out = pd.DataFrame(rows, columns=["STUDYID", "USUBJID", "XCGRPID", "XCTESTCD", "XCTEST",
                                      "XCORRES", "XCORRESU", "XCSTRESC", "XCSTRESN",
                                      "XCSTRESU", "XCSTAT", "XCDTC"])
    out["XCSEQ"] = out.groupby("USUBJID").cumcount() + 1 if len(out) else []
    return out


def _standard_ranges(lb: pd.DataFrame) -> pd.DataFrame:
    """LBSTNRLO/LBSTNRHI as stored, or where empty LBORNRLO/HI converted from LBORRESU to
    LBSTRESU (:func:`celltrial.store.consistency.standard_range`; rows written before
    migration 0009 have only the original-unit range)."""
    from celltrial.store.consistency import standard_range

    out = lb.copy()
    for var in ("LBSTNRLO", "LBSTNRHI"):
        if var not in out.columns:
            out[var] = None
    cols = ["LBTESTCD", "LBORRESU", "LBSTRESU", "LBORNRLO", "LBORNRHI", "LBSTNRLO",
            "LBSTNRHI"]
    los, his = [], []
    for row in out[cols].itertuples(index=False):
        values = [None if _missing(v) else v for v in row]
        lo, hi = (standard_range(str(values[0]), *values[1:]) if values[0] is not None
                  else (None, None))
        los.append(lo)
        his.append(hi)
    out["LBSTNRLO"] = pd.Series(los, index=out.index, dtype=float)
    out["LBSTNRHI"] = pd.Series(his, index=out.index, dtype=float)
    return out


def _finding(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Recode and derive the variables of a findings, events or interventions domain."""
    out = frame.copy()
    if name == "LB":  # in the store's units, before they are recoded to CDISC CT
        out = _standard_ranges(out)
    d = name
    if f"{d}ORRESU" in out:
        out[f"{d}ORRESU"] = _text_map(out[f"{d}ORRESU"], recode.UNITS.to_ct)
    if f"{d}STRESU" in out:
        out[f"{d}STRESU"] = _text_map(out[f"{d}STRESU"], recode.UNITS.to_ct)
    if name == "LB":
        out["LBTESTCD"] = _text_map(out["LBTESTCD"], recode.LBTESTCD.to_ct)
        out["LBTEST"] = _test_names(out["LBTESTCD"], "LBTESTCD").where(
            lambda s: s.notna(), out["LBTEST"])
        out["LBMETHOD"] = _text_map(out["LBMETHOD"], recode.METHOD.to_ct)
        for var in ("LBORNRLO", "LBORNRHI", "LBTOXGR"):
            out[var] = _text_map(out[var], num_text)
        out["LBSTRESC"] = _text_map(out["LBSTRESN"], num_text).where(
            lambda s: s.notna(), out["LBORRES"])
    elif name in ("VS", "TR"):
        if name == "TR":
            out["TRTESTCD"] = _text_map(out["TRTESTCD"], recode.TRTESTCD.to_ct)
        out[f"{d}TEST"] = _test_names(out[f"{d}TESTCD"], f"{d}TESTCD")
        out[f"{d}ORRES"] = _text_map(out[f"{d}STRESN"], num_text)
        out[f"{d}ORRESU"] = out[f"{d}STRESU"]
        out[f"{d}STRESC"] = out[f"{d}ORRES"]
    elif name == "PC":
        out["PCTEST"] = _text_map(out["PCTESTCD"], PC_TESTS.get)
        out["PCORRESU"] = out["PCSTRESU"]
        out["PCSTRESC"] = _text_map(out["PCSTRESN"], num_text).where(
            lambda s: s.notna(), out["PCORRES"])
    elif name == "SC":
        out["SCTESTCD"] = _text_map(out["SCTESTCD"], recode.SCTESTCD.to_ct)
        out["SCTEST"] = _test_names(out["SCTESTCD"], "SCTESTCD")
        out["SCSTRESC"] = out["SCORRES"]
    elif name == "RS":
        out["RSTESTCD"] = _text_map(out["RSTESTCD"], recode.RSTESTCD.to_ct)
        out["RSTEST"] = _test_names(out["RSTESTCD"], "ONCRTSCD")
        out["RSSTRESC"] = _text_map(out["RSSTRESC"], recode.RSSTRESC.to_ct)
        derived = out["RSEVAL"] == "DERIVED"
        out["RSDRVFL"] = [("Y" if flag else None) for flag in derived]
        out.loc[derived, "RSEVAL"] = None
    elif name == "TU":
        out["TUTEST"] = _test_names(out["TUTESTCD"], "TUTESTCD")
        out["TUSTRESC"] = out["TUORRES"]
    elif name == "IS":
        out["ISTESTCD"] = _text_map(out["ISTESTCD"], recode.ISTESTCD.to_ct)
        out["ISTEST"] = _test_names(out["ISTESTCD"], "ISTESTCD")
    elif name == "AE":
        out["AETOXGR"] = _text_map(out["AETOXGR"], num_text)
    elif name == "EX":
        store_unit, ct_unit, digits = recode.EXDOSE_UNIT
        mine = out["EXDOSU"] == store_unit
        out["EXDOSE"] = [(_shift(v, -digits) if m else v)
                         for v, m in zip(out["EXDOSE"], mine, strict=True)]
        out.loc[mine, "EXDOSU"] = ct_unit
        for var, value in recode.EX_CONSTANTS.items():
            out[var] = value
    elif name == "DS":
        out["DSCAT"] = "DISPOSITION EVENT"
    elif name == "CM":
        from celltrial.clinical.medications import medication

        names = out["CMDECOD"].where(out["CMDECOD"].notna(), out["CMTRT"])
        out["CMCLAS"] = _text_map(names, lambda n: getattr(medication(n), "klass", None))
        out["CMCLASCD"] = _text_map(names, lambda n: getattr(medication(n), "atc", None))
    return out


def to_sdtm(frames: Mapping[str, pd.DataFrame], *, country: str | None = None
            ) -> dict[str, pd.DataFrame]:
    """SDTMIG 3.4 datasets of a study's store domains (as :func:`read_domains` returns them):
    DM always, every other domain and SUPP-- with records, in SDTM column order."""
    out: dict[str, pd.DataFrame] = {}
    for name, frame in frames.items():
        if frame.empty and name != "DM":
            continue
        if name == "DM":
            data = _dm(frame, frames["EX"], frames["DS"], country)
        elif name == "XC":
            data = _xc(frame)
        else:
            data = _finding(name, frame)
        data = data.assign(DOMAIN=name)
        out[name] = dataset_frame(name, data)
        if name in recode.SUPP:
            supp = _supp(name, frame)
            if len(supp):
                out[f"SUPP{name}"] = supp
    return out


# ---------------------------------------------------------------------------------------------
# reading back


def _refuse(origin: str, column: str, got: Any, rule: str, row: int | None = None
            ) -> StoreError:
    where = f"{origin} row {row}" if row is not None else origin
    return StoreError(f"{where}, column {column}: Invalid `{column}`: got `{got!r}`, "
                      f"must be {rule}")


def _back(name: str, frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """One SDTM (or store-shaped) dataset as the store's domain ``name``."""
    out = frame.copy()
    d = name
    if "DOMAIN" in out.columns:
        wrong = [i for i, v in enumerate(out["DOMAIN"].tolist()) if v != name]
        if wrong:
            raise _refuse(origin, "DOMAIN", out["DOMAIN"].iloc[wrong[0]],
                          f"`{name}`, the dataset's name", wrong[0] + 1)
        out = out.drop(columns="DOMAIN")
    for var in (f"{d}ORRESU", f"{d}STRESU", "SCORRESU"):
        if var in out.columns:
            out[var] = _text_map(out[var], recode.UNITS.to_store)
    if name == "DM" and "ARMNRS" in out.columns:
        failed = out["ARMNRS"] == "SCREEN FAILURE"
        if "ARM" in out.columns:
            out.loc[failed & out["ARM"].map(_missing), "ARM"] = SCREEN_FAILURE_ARM
    elif name == "LB":
        out["LBTESTCD"] = _text_map(out["LBTESTCD"], recode.LBTESTCD.to_store)
        if "LBTEST" in out.columns:
            out["LBTEST"] = _text_map(out["LBTEST"], recode.LBTEST.to_store)
        if "LBMETHOD" in out.columns:
            out["LBMETHOD"] = _text_map(out["LBMETHOD"], recode.METHOD.to_store)
    elif name == "SC":
        out["SCTESTCD"] = _text_map(out["SCTESTCD"], recode.SCTESTCD.to_store)
    elif name == "TR":
        out["TRTESTCD"] = _text_map(out["TRTESTCD"], recode.TRTESTCD.to_store)
    elif name == "IS":
        out["ISTESTCD"] = _text_map(out["ISTESTCD"], recode.ISTESTCD.to_store)
    elif name == "RS":
        out["RSTESTCD"] = _text_map(out["RSTESTCD"], recode.RSTESTCD.to_store)
        if "RSSTRESC" in out.columns:
            out["RSSTRESC"] = _text_map(out["RSSTRESC"], recode.RSSTRESC.to_store)
        if "RSDRVFL" in out.columns:
            out.loc[out["RSDRVFL"] == "Y", "RSEVAL"] = "DERIVED"
    elif name == "EX" and "EXDOSU" in out.columns:
        store_unit, ct_unit, digits = recode.EXDOSE_UNIT
        theirs = out["EXDOSU"] == ct_unit
        if "EXDOSE" in out.columns:
            out["EXDOSE"] = [(_shift(v, digits) if m else v)
                             for v, m in zip(out["EXDOSE"], theirs, strict=True)]
        out.loc[theirs, "EXDOSU"] = store_unit
    elif name == "XC" and "XCTESTCD" in out.columns:
        out = _xc_back(out, origin)
    return out.drop(columns=[c for c in DERIVED.get(name, ()) if c in out.columns])


def _xc_back(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    by_code = {code: var for var, (code, _, _) in recode.XC_TESTS.items()}
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for row, record in enumerate(frame.to_dict("records"), start=1):
        code = record.get("XCTESTCD")
        if code not in by_code:
            raise _refuse(origin, "XCTESTCD", code, f"one of {', '.join(by_code)}", row)
        group = record.get("XCGRPID")
        if _missing(group):
            raise _refuse(origin, "XCGRPID", group, "the store's XCSEQ of the observation",
                          row)
        key = (record["USUBJID"], str(group))
        target = records.setdefault(key, {"STUDYID": record.get("STUDYID"),
                                          "USUBJID": record["USUBJID"], "XCSEQ": group,
                                          "XCDTC": record.get("XCDTC")})
        target[by_code[code]] = None if _missing(record.get("XCORRES")) else record["XCORRES"]
    return pd.DataFrame(list(records.values()))


def _merge_supp(parent: pd.DataFrame, name: str, supp: pd.DataFrame, origin: str,
                drop_unkept: bool) -> pd.DataFrame:
    by_qnam = {qnam: var for var, qnam, _, _ in recode.SUPP.get(name, ())}
    seq = DOMAINS[name].seq
    out = parent.copy()
    keys = [(u, None if seq is None else num_text(s)) for u, s in zip(
        out["USUBJID"], out[seq] if seq else [None] * len(out), strict=True)]
    index = {k: i for i, k in enumerate(keys)}
    for row, record in enumerate(supp.to_dict("records"), start=1):
        var = by_qnam.get(record.get("QNAM"))
        if var is None:
            if drop_unkept:
                continue
            raise _refuse(origin, "QNAM", record.get("QNAM"), "one of "
                          f"{', '.join(by_qnam) or 'none'} (the SUPP{name} qualifiers the "
                          "store keeps)", row)
        idvarval = record.get("IDVARVAL")
        key = (record.get("USUBJID"), None if seq is None or _missing(idvarval)
               else num_text(float(idvarval)))
        if key not in index:
            raise _refuse(origin, "IDVARVAL", idvarval, f"the {seq or 'USUBJID'} of a {name} "
                          "record of the same subject", row)
        if var not in out.columns:
            out[var] = pd.Series([None] * len(out), dtype=object)
        out.loc[index[key], var] = record.get("QVAL")
    return out


def from_sdtm(datasets: Mapping[str, pd.DataFrame], origins: Mapping[str, str], *,
              drop_unkept: bool = False) -> dict[str, pd.DataFrame]:
    """The store's domains of SDTM datasets (by dataset name; ``origins`` names their files
    for messages). SUPP-- rows go to their parent's variables. A variable the store does not
    keep is refused naming it, or left out when ``drop_unkept``."""
    out: dict[str, pd.DataFrame] = {}
    for name, frame in datasets.items():
        if name.startswith("SUPP") and name[4:] in DOMAINS:
            continue
        if name in TRIAL_DESIGN:  # rebuilt from the protocol on export, not kept
            continue
        if name not in DOMAINS:
            raise StoreError(f"Invalid `dataset`: got `{name!r}` in {origins[name]}, must be "
                             f"one of {', '.join(DOMAINS)} or their SUPP-- datasets")
        out[name] = _back(name, frame, origins[name])
    for name, frame in datasets.items():
        if name.startswith("SUPP") and name[4:] in DOMAINS:
            parent = name[4:]
            if parent not in out:
                raise StoreError(f"Invalid `dataset`: got `{name!r}` in {origins[name]} "
                                 f"without its parent {parent}")
            out[parent] = _merge_supp(out[parent], parent, frame, origins[name], drop_unkept)
    for name, frame in out.items():
        kept = DOMAINS[name].columns
        unkept = [c for c in frame.columns if c not in kept]
        if unkept and not drop_unkept:
            raise _refuse(origins[name], unkept[0], unkept[0],
                          f"one of the {name} variables the store keeps ({', '.join(kept)}); "
                          "import with --drop-unkept to leave out SDTM variables the store "
                          "does not keep")
        out[name] = frame.drop(columns=unkept)
    return out
