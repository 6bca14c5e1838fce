"""Define-XML 2.1 for the SDTM export (the metadata file a reviewer opens next to the XPTs).

What is written follows the CDISC Define-XML v2.1 specification (2019-05-15) on the ODM 1.3.2
base and validates against its XML schema (``define2-1-0.xsd``; test in
tests/store/test_sdtm_define.py against the schema frozen in tests/fixtures/cdisc-define-2.1):

- ``ODM`` with ``def:Context="Submission"``; one ``Study`` with its ``GlobalVariables``; one
  ``MetaDataVersion`` with ``def:DefineVersion="2.1.0"`` and ``def:Standards``: SDTMIG
  :data:`~celltrial.store.sdtm.spec.SDTMIG_VERSION` (IG) and CDISC/NCI SDTM Controlled
  Terminology :data:`~celltrial.store.sdtm.ct.CT_RELEASE` (CT);
- one ``ItemGroupDef`` per dataset (Purpose ``Tabulation``, ``def:Structure``, ``def:Class``
  of the SDTMIG class, ``Repeating="Yes"`` for more than one record per subject (not DM and
  the trial design datasets), ``IsReferenceData="Yes"`` for the trial design ones, the custom
  domain XC ``def:IsNonStandard="Yes"`` without a standard, ``def:leaf`` to its XPT file),
  its ``ItemRef`` in SDTMIG order with ``Mandatory`` (Req variables), ``KeySequence`` (the
  dataset's keys) and ``MethodOID`` for derived variables;
- one ``ItemDef`` per variable: ``DataType`` and ``Length`` read from the data (text: the
  longest value in bytes; integer/float: digits; ``date``/``datetime`` for ISO 8601 --DTC,
  ``durationDatetime`` for TEDUR), the SDTMIG label, ``CodeListRef`` and ``def:Origin``
  (``Assigned`` by the sponsor, ``Derived`` by the export, ``Protocol`` for the trial design,
  ``Collected`` from the investigator otherwise);
- value-level metadata for LB and PC: ``--STRESN`` described per ``--TESTCD`` value present
  (``def:ValueListDef`` with ``def:WhereClauseDef`` ``--TESTCD EQ <code>``), each with the
  standard unit(s) it is reported in;
- one ``CodeList`` per CDISC codelist used, holding the values that occur in the data, each
  ``EnumeratedItem`` with its NCI code (``Alias Context="nci:ExtCodeID"``) or
  ``def:ExtendedValue="Yes"`` for a declared sponsor extension;
- ``MethodDef`` for every derivation the export makes (docs/data-model.md, SDTM section).

:func:`define_html` renders the XML as plain HTML (no XSL stylesheet needed): standards,
datasets, variables with their value-level metadata, codelists and methods.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
import xml.etree.ElementTree as etree
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from celltrial.errors import StoreError
from celltrial.store.sdtm import ct
from celltrial.store.sdtm.spec import SDTMIG_VERSION, SdtmDataset, dataset_spec

ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.1"
XLINK = "http://www.w3.org/1999/xlink"
DEFINE_VERSION = "2.1.0"
TRIAL_DESIGN = ("TE", "TA", "TI", "TS", "TV")
CUSTOM = ("XC",)
"""Custom domains (SDTMIG 3.4 section 2.6): not in the IG, so ``def:IsNonStandard``."""

CLASSES = {"Special-Purpose": "SPECIAL PURPOSE", "Findings": "FINDINGS", "Events": "EVENTS",
           "Interventions": "INTERVENTIONS", "Trial Design": "TRIAL DESIGN",
           "Relationship": "RELATIONSHIP"}
"""SDTMIG dataset class -> Define-XML 2.1 ``def:Class`` name (define-enumerations.xsd)."""

STRUCTURES = {
    "DM": "One record per subject",
    "SC": "One record per characteristic per subject",
    "EX": "One record per infusion fraction per subject",
    "AE": "One record per adverse event per subject",
    "LB": "One record per lab test per time point per subject",
    "VS": "One record per vital sign measurement per time point per subject",
    "XC": "One record per CRS/ICANS grading input per day per subject",
    "RS": "One record per response assessment per time point per subject",
    "TU": "One record per identified lesion per subject",
    "TR": "One record per lesion measurement per time point per subject",
    "PC": "One record per analyte per sample per subject",
    "IS": "One record per test per sample per subject",
    "PR": "One record per procedure per subject",
    "CM": "One record per medication occurrence per subject",
    "DS": "One record per disposition event per subject",
    "TE": "One record per planned element",
    "TA": "One record per planned element per arm",
    "TI": "One record per eligibility criterion",
    "TS": "One record per trial summary parameter value",
    "TV": "One record per planned visit",
}
"""``def:Structure`` of each dataset (SDTMIG 3.4 dataset descriptions)."""
SUPP_STRUCTURE = "One record per IDVAR, IDVARVAL, and QNAM value per subject"

ASSIGNED = frozenset({"STUDYID", "DOMAIN", "RDOMAIN", "IDVAR", "QNAM", "QLABEL", "QORIG"})
"""Variables the sponsor assigns (def:Origin Assigned, Source Sponsor)."""

METHODS: dict[str, str] = {
    "SEQ": "Sequence number of the record within the subject and dataset, in the order the "
           "store keeps the records (SDTMIG 3.4 section 4.1.5).",
    "TEST": "CDISC CT test name paired with the --TESTCD code (same NCI code), or the declared "
            "sponsor name of a sponsor code (ct-extensions.tsv).",
    "STRESC": "--STRESN as text, or the standardized character result (CT submission value).",
    "ORRES": "The store keeps the standard result only: original result and unit = standard.",
    "COUNTRY": "Country of the study sites given to the export (ISO 3166-1 alpha-3); the store "
               "keeps no country.",
    "RFXSTDTC": "Date of the first infusion fraction given (EX, EXDOSE > 0).",
    "RFXENDTC": "Date of the last infusion fraction given (EX, EXDOSE > 0).",
    "RFENDTC": "RFXENDTC (end of treatment).",
    "ACTARM": "The planned arm once an infusion fraction was given, else null.",
    "ARMNRS": "SCREEN FAILURE when DS has a screen failure, ASSIGNED, NOT TREATED when an arm "
              "is assigned and no infusion was given, NOT ASSIGNED otherwise (SDTMIG 3.4 "
              "section 5.2).",
    "EXDOSFRM": "SUSPENSION: CAR-T cells are infused as a cell suspension.",
    "EXROUTE": "INTRAVENOUS: CAR-T cells are infused intravenously.",
    "DRVFL": "Y when the store's evaluator is DERIVED (computed response).",
    "DSCAT": "DISPOSITION EVENT for every disposition record.",
    "CLAS": "Class and WHO ATC code of the controlled medication name "
            "(celltrial/clinical/data/cm_drugs.csv).",
}
"""MethodDef descriptions of the derivations of :func:`celltrial.store.sdtm.convert.to_sdtm`,
keyed by variable name without its domain prefix."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --- building blocks shared with the ADaM define.xml (celltrial.derive.adam_export) --------


def qname(ns: str, tag: str) -> str:
    """The ElementTree name of ``tag`` in namespace ``ns`` (``{ns}tag``)."""
    return f"{{{ns}}}{tag}"


def sub(parent: etree.Element, tag: str, ns: str = ODM, **attrs: Any) -> etree.Element:
    """A child ``tag`` (namespace ``ns``) of ``parent`` with ``attrs``: ``def_X`` is ``def:X``,
    ``xlink_X`` is ``xlink:X``; None values are left out."""
    node = etree.SubElement(parent, qname(ns, tag))
    for key, value in attrs.items():
        if value is None:
            continue
        name = qname(DEF, key[4:]) if key.startswith("def_") else (
            qname(XLINK, key[6:]) if key.startswith("xlink_") else key)
        node.set(name, str(value))
    return node


def describe(parent: etree.Element, text: str) -> None:
    """``Description/TranslatedText xml:lang="en"`` of ``parent``."""
    node = sub(sub(parent, "Description"), "TranslatedText")
    node.set(qname("http://www.w3.org/XML/1998/namespace", "lang"), "en")
    node.text = text


def item_def(oid: str, name: str, attrs: Mapping[str, Any], label: str) -> etree.Element:
    """An ``ItemDef`` (not yet placed: ItemDefs follow every ItemGroupDef) with its DataType/
    Length/... ``attrs`` (``def_X`` is ``def:X``) and its label as Description."""
    item = etree.Element(qname(ODM, "ItemDef"))
    item.set("OID", oid)
    item.set("Name", name)
    item.set("SASFieldName", name)
    for key, value in attrs.items():
        item.set(qname(DEF, key[4:]) if key.startswith("def_") else key, str(value))
    describe(item, label)
    return item


def where_clause(dataset: str, variable: str, value: str) -> tuple[str, etree.Element]:
    """(OID, ``def:WhereClauseDef``) of the condition ``<dataset>.<variable> EQ value`` (not
    yet placed: the WhereClauseDefs follow the ValueListDefs)."""
    oid = f"WC.{dataset}.{variable}.{value}"
    where = etree.Element(qname(DEF, "WhereClauseDef"))
    where.set("OID", oid)
    check = sub(where, "RangeCheck", Comparator="EQ", SoftHard="Soft",
                def_ItemOID=f"IT.{dataset}.{variable}")
    sub(check, "CheckValue").text = value
    return oid, where


def method_def(parent: etree.Element, oid: str, name: str, text: str) -> None:
    """A ``MethodDef`` of Type Computation described by ``text``."""
    describe(sub(parent, "MethodDef", OID=oid, Name=name, Type="Computation"), text)


def _values(frame: pd.DataFrame, name: str) -> list[Any]:
    if name not in frame.columns:
        return []
    return [v for v in frame[name].tolist()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
            and not (isinstance(v, str) and not v.strip())]


def _number_text(value: float) -> str:
    return np.format_float_positional(float(value), trim="-")


def data_type(name: str, sas_type: str, values: list[Any]) -> dict[str, Any]:
    """DataType, Length and SignificantDigits of variable ``name`` of SAS type ``Char`` or
    ``Num`` from its non-missing values: text the longest value in bytes, integer/float their
    digits, ISO 8601 ``*DTC`` text ``date``/``datetime``, TEDUR ``durationDatetime``."""
    if sas_type == "Num":
        texts = [_number_text(v) for v in values]
        if all(float(v).is_integer() for v in values):
            return {"DataType": "integer",
                    "Length": max((len(t) for t in texts), default=1)}
        decimals = max(len(t.partition(".")[2]) for t in texts)
        digits = max(len(t.replace("-", "").replace(".", "")) for t in texts)
        return {"DataType": "float", "Length": max(digits, 1), "SignificantDigits": decimals}
    if name.endswith("DTC") and values:
        return {"DataType": "date" if all(_DATE.match(v) for v in values) else "datetime"}
    if name in ("TEDUR",) and values:
        return {"DataType": "durationDatetime"}
    return {"DataType": "text",
            "Length": max((len(str(v).encode("utf-8")) for v in values), default=1)}


def _method_key(dataset: str, var: str) -> str | None:
    """The METHODS key of a derived variable of ``dataset``, or None when it is not derived."""
    from celltrial.store.sdtm.convert import DERIVED

    if var.endswith("SEQ") and var[:-3] in (dataset, "") and dataset not in TRIAL_DESIGN:
        return "SEQ"
    if var not in DERIVED.get(dataset, ()):
        return None
    for key in (var, var[len(dataset):], "CLAS" if var.startswith("CMCLAS") else "",
                "ACTARM" if var.startswith("ACTARM") else ""):
        if key in METHODS:
            return key
    suffix = var[2:]
    return suffix if suffix in METHODS else ("ORRES" if suffix.startswith("ORRES") else None)


def _origin(parent: etree.Element, dataset: str, var: str, method: str | None) -> None:
    if var in ASSIGNED:
        sub(parent, "Origin", DEF, Type="Assigned", Source="Sponsor")
    elif method is not None:
        sub(parent, "Origin", DEF, Type="Derived", Source="Sponsor")
    elif dataset in TRIAL_DESIGN:
        sub(parent, "Origin", DEF, Type="Protocol", Source="Sponsor")
    else:
        sub(parent, "Origin", DEF, Type="Collected", Source="Investigator")


def ct_codelist(parent: etree.Element, name: str, used: set[str]) -> None:
    """``CodeList`` ``CL.<name>`` of a codelist of :mod:`celltrial.store.sdtm.ct` holding the
    ``used`` values, each with its NCI code or marked a sponsor extension."""
    codes = ct.codelists()
    released = name in codes
    node = sub(parent, "CodeList", OID=f"CL.{name}", Name=name, DataType="text",
               def_StandardOID="STD.CT" if released else None,
               def_IsNonStandard=None if released else "Yes")
    terms = {t.value: t for t in ct.terms() if t.codelist == name}
    for value in sorted(used):
        term = terms.get(value)
        if term is None:
            raise StoreError(f"Invalid `{name}` value: got `{value!r}`, must be a CDISC CT "
                             f"{ct.CT_RELEASE} term or a declared extension "
                             "(celltrial/store/sdtm/data/ct-extensions.tsv) to be written in "
                             "define.xml; `celltrial db validate` lists such values (SD0004)")
        item = sub(node, "EnumeratedItem", CodedValue=value,
                   def_ExtendedValue="Yes" if term.code is None and released else None)
        if term.code:
            sub(item, "Alias", Context="nci:ExtCodeID", Name=term.code)
    if released:
        sub(node, "Alias", Context="nci:ExtCodeID", Name=codes[name][0])


def _value_lists(mdv: etree.Element, datasets: Mapping[str, pd.DataFrame]
                 ) -> dict[str, list[etree.Element]]:
    """def:ValueListDef/def:WhereClauseDef of LB and PC --STRESN by --TESTCD; returns the
    value-level ItemDefs to add after the dataset ItemDefs, by dataset."""
    items: dict[str, list[etree.Element]] = {}
    where_clauses = []
    for dataset in ("LB", "PC"):
        frame = datasets.get(dataset)
        if frame is None or frame.empty:
            continue
        d = dataset
        codes = sorted({str(c) for c in _values(frame, f"{d}TESTCD")})
        if not codes:
            continue
        vl = sub(mdv, "ValueListDef", DEF, OID=f"VL.{d}.{d}STRESN")
        spec_var = dataset_spec(d).variable(f"{d}STRESN")
        for order, code in enumerate(codes, start=1):
            rows = frame[frame[f"{d}TESTCD"] == code]
            oid = f"IT.{d}.{d}STRESN.{code}"
            ref = sub(vl, "ItemRef", ItemOID=oid, OrderNumber=order, Mandatory="No")
            where_oid, where = where_clause(d, f"{d}TESTCD", code)
            sub(ref, "WhereClauseRef", DEF, WhereClauseOID=where_oid)
            where_clauses.append(where)
            values = _values(rows, f"{d}STRESN")
            units = sorted({str(u) for u in _values(rows, f"{d}STRESU")})
            test = next(iter(_values(rows, f"{d}TEST")), code)
            item = item_def(oid, f"{d}STRESN", data_type(spec_var.name, spec_var.type, values),
                            f"{test} in standard units ({', '.join(units) or 'no result'})")
            _origin(item, d, f"{d}STRESN", None)
            items.setdefault(d, []).append(item)
    for where in where_clauses:
        mdv.append(where)
    return items


def define_skeleton(study_id: str, *, package: str, ig: tuple[str, str], purpose: str,
                    title: str | None = None, created: dt.datetime | None = None
                    ) -> tuple[Any, Any]:
    """The ODM 1.3.2 root of a Define-XML 2.1 document (Snapshot, Context Submission) with its
    Study, GlobalVariables and MetaDataVersion (``ig``: implementation guide name and version;
    ``package``: ``SDTM`` or ``ADAM`` in the FileOID); returns (root, MetaDataVersion)."""
    created = created or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    for prefix, uri in (("", ODM), ("def", DEF), ("xlink", XLINK)):
        etree.register_namespace(prefix, uri)
    root = etree.Element(qname(ODM, "ODM"))
    for key, value in (("FileType", "Snapshot"), ("FileOID", f"DEFINE.{study_id}.{package}"),
                       ("ODMVersion", "1.3.2"), ("CreationDateTime", created.isoformat()),
                       ("Originator", "celltrial"), ("SourceSystem", "celltrial")):
        root.set(key, value)
    root.set(qname(DEF, "Context"), "Submission")
    study = sub(root, "Study", OID=f"ST.{study_id}")
    glob = sub(study, "GlobalVariables")
    sub(glob, "StudyName").text = study_id
    sub(glob, "StudyDescription").text = title or study_id
    sub(glob, "ProtocolName").text = study_id
    name, version = ig
    mdv = sub(study, "MetaDataVersion", OID=f"MDV.{study_id}.{name}.{version}",
              Name=f"{study_id} {name} {version} {purpose} datasets",
              def_DefineVersion=DEFINE_VERSION)
    return root, mdv


def define_xml(datasets: Mapping[str, pd.DataFrame], study_id: str, *,
               title: str | None = None, created: dt.datetime | None = None) -> bytes:
    """Define-XML 2.1 of the SDTM ``datasets`` (as :func:`celltrial.store.sdtm.sdtm_datasets`
    gives them) of ``study_id``; ``title`` is the study description (the protocol title)."""
    root, mdv = define_skeleton(study_id, package="SDTM", ig=("SDTMIG", SDTMIG_VERSION),
                                purpose="tabulation", title=title, created=created)
    standards = sub(mdv, "Standards", DEF)
    sub(standards, "Standard", DEF, OID="STD.SDTMIG", Name="SDTMIG", Type="IG",
        Version=SDTMIG_VERSION, Status="Final")
    sub(standards, "Standard", DEF, OID="STD.CT", Name="CDISC/NCI", Type="CT",
        PublishingSet="SDTM", Version=ct.CT_RELEASE, Status="Final")
    vlm_items = _value_lists(mdv, datasets)
    specs: dict[str, SdtmDataset] = {name: dataset_spec(name) for name in datasets}
    methods: set[str] = set()
    used: dict[str, set[str]] = {}
    item_defs: list[etree.Element] = []
    for name, frame in datasets.items():
        spec = specs[name]
        supp = name.startswith("SUPP")
        group = sub(mdv, "ItemGroupDef", OID=f"IG.{name}", Name=name,
                    Repeating="No" if name == "DM" or name in TRIAL_DESIGN else "Yes",
                    IsReferenceData="Yes" if name in TRIAL_DESIGN else "No",
                    SASDatasetName=name, Domain=name[4:] if supp else name,
                    Purpose="Tabulation",
                    def_Structure=SUPP_STRUCTURE if supp else STRUCTURES[name],
                    def_ArchiveLocationID=f"LF.{name}",
                    def_StandardOID=None if name in CUSTOM else "STD.SDTMIG",
                    def_IsNonStandard="Yes" if name in CUSTOM else None)
        describe(group, spec.label)
        for order, var in enumerate(spec.variables, start=1):
            method = None if supp else _method_key(name, var.name)
            if method:
                methods.add(method)
            sub(group, "ItemRef", ItemOID=f"IT.{name}.{var.name}", OrderNumber=order,
                Mandatory="Yes" if var.core == "Req" else "No",
                KeySequence=spec.key.index(var.name) + 1 if var.name in spec.key else None,
                MethodOID=f"MT.{method}" if method else None)
            values = _values(frame, var.name)
            item = item_def(f"IT.{name}.{var.name}", var.name,
                            data_type(var.name, var.type, values), var.label)
            if var.codelist and values:
                sub(item, "CodeListRef", CodeListOID=f"CL.{var.codelist}")
                used.setdefault(var.codelist, set()).update(str(v) for v in values)
            _origin(item, name, var.name, method)
            if name in vlm_items and var.name == f"{name}STRESN":
                sub(item, "ValueListRef", DEF, ValueListOID=f"VL.{name}.{name}STRESN")
            item_defs.append(item)
        sub(group, "Class", DEF, Name=CLASSES[spec.klass])
        leaf = sub(group, "leaf", DEF, ID=f"LF.{name}", xlink_href=f"{name.lower()}.xpt")
        sub(leaf, "title", DEF).text = f"{name.lower()}.xpt"
    for item in item_defs + [i for items in vlm_items.values() for i in items]:
        mdv.append(item)
    for codelist in sorted(used):
        ct_codelist(mdv, codelist, used[codelist])
    for key in sorted(methods):
        method_def(mdv, f"MT.{key}", f"Algorithm for {key}", METHODS[key])
    etree.indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _text(node: etree.Element | None) -> str:
    found = None if node is None else node.find(f"{{{ODM}}}Description/{{{ODM}}}TranslatedText")
    return "" if found is None or found.text is None else found.text


def _table(head: list[str], rows: list[list[str]], anchor: str | None = None) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    ident = f' id="{html.escape(anchor)}"' if anchor else ""
    return f"<table{ident}><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def define_html(xml: bytes) -> str:
    """A stylesheet-free HTML rendering of a define.xml written by :func:`define_xml`, read
    from the XML itself: standards, datasets, variables per dataset (with value-level
    metadata), codelists and methods, cross-linked by anchors."""
    root = etree.fromstring(xml)
    o, d = f"{{{ODM}}}", f"{{{DEF}}}"
    e = html.escape
    mdv = root.find(f"{o}Study/{o}MetaDataVersion")
    items = {i.get("OID"): i for i in mdv.iter(f"{o}ItemDef")}
    methods = {m.get("OID"): m for m in mdv.iter(f"{o}MethodDef")}
    value_lists = {v.get("OID"): v for v in mdv.iter(f"{d}ValueListDef")}
    wheres = {w.get("OID"): w for w in mdv.iter(f"{d}WhereClauseDef")}
    study = root.find(f"{o}Study/{o}GlobalVariables/{o}StudyName").text or ""
    parts = [f"<h1>Define-XML {e(mdv.get(f'{d}DefineVersion') or '')}: {e(study)}</h1>",
             f"<p>{e(root.find(f'{o}Study/{o}GlobalVariables/{o}StudyDescription').text or '')}"
             "</p>", "<h2>Standards</h2>",
             _table(["Name", "Type", "Version", "Status"],
                    [[e(s.get(k) or "") for k in ("Name", "Type", "Version", "Status")]
                     for s in mdv.iter(f"{d}Standard")])]
    groups = list(mdv.iter(f"{o}ItemGroupDef"))
    parts += ["<h2>Datasets</h2>", _table(
        ["Dataset", "Label", "Class", "Structure", "Keys", "Location"],
        [[f'<a href="#{e(g.get("OID"))}">{e(g.get("Name"))}</a>', e(_text(g)),
          e(g.find(f"{d}Class").get("Name")), e(g.get(f"{d}Structure") or ""),
          e(", ".join(items[r.get("ItemOID")].get("Name") for r in sorted(
              (r for r in g.iter(f"{o}ItemRef") if r.get("KeySequence")),
              key=lambda r: int(r.get("KeySequence"))))),
          e(g.find(f"{d}leaf").get(f"{{{XLINK}}}href"))] for g in groups])]

    def variable_row(ref: etree.Element, item: etree.Element) -> list[str]:
        codelist = item.find(f"{o}CodeListRef")
        origin = item.find(f"{d}Origin")
        method = methods.get(ref.get("MethodOID") or "")
        return [e(item.get("Name")), e(_text(item)), e(item.get("DataType")),
                e(item.get("Length") or ""), "" if codelist is None else
                f'<a href="#{e(codelist.get("CodeListOID"))}">'
                f'{e(codelist.get("CodeListOID")[3:])}</a>',
                e("" if origin is None else origin.get("Type")),
                "" if method is None else f'<a href="#{e(method.get("OID"))}">'
                                          f'{e(method.get("Name"))}</a>']

    head = ["Variable", "Label", "Type", "Length", "Codelist", "Origin", "Method"]
    for g in groups:
        rows = []
        for ref in g.iter(f"{o}ItemRef"):
            item = items[ref.get("ItemOID")]
            rows.append(variable_row(ref, item))
            vl = item.find(f"{d}ValueListRef")
            for vref in [] if vl is None else value_lists[vl.get("ValueListOID")].iter(
                    f"{o}ItemRef"):
                check = wheres[vref.find(f"{d}WhereClauseRef").get("WhereClauseOID")].find(
                    f"{o}RangeCheck")
                where = (f"{items[check.get(f'{d}ItemOID')].get('Name')} = "
                         f"{check.find(f'{o}CheckValue').text}")
                rows.append([f"where {e(where)}",
                             *variable_row(vref, items[vref.get("ItemOID")])[1:]])
        parts += [f"<h2>{e(g.get('Name'))}: {e(_text(g))}</h2>",
                  _table(head, rows, g.get("OID"))]
    parts.append("<h2>Codelists</h2>")
    for cl in mdv.iter(f"{o}CodeList"):
        code = cl.find(f"{o}Alias")
        rows = []
        for item in cl:
            if item.tag not in (f"{o}EnumeratedItem", f"{o}CodeListItem"):
                continue
            alias = item.find(f"{o}Alias")
            decode = item.find(f"{o}Decode/{o}TranslatedText")
            rows.append([e(item.get("CodedValue")), e("" if decode is None else decode.text or ""),
                         e("" if alias is None else alias.get("Name")),
                         "sponsor extension" if item.get(f"{d}ExtendedValue") else ""])
        title = f"{cl.get('Name')}" + ("" if code is None else f" ({code.get('Name')})")
        parts += [f"<h3>{e(title)}</h3>",
                  _table(["Value", "Decode", "NCI code", "Note"], rows, cl.get("OID"))]
    parts += ["<h2>Methods</h2>", _table(
        ["Method", "Type", "Description"],
        [[f'<span id="{e(m.get("OID"))}">{e(m.get("Name"))}</span>', e(m.get("Type")),
          e(_text(m))] for m in methods.values()])]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>define.xml {e(study)}</title></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_define(datasets: Mapping[str, pd.DataFrame], study_id: str, folder: str | Path, *,
                 title: str | None = None) -> Path:
    """Write ``define.xml`` of ``datasets`` into ``folder`` (beside their XPT files) and its
    HTML rendering ``define.html``; returns the XML file."""
    file = Path(folder) / "define.xml"
    xml = define_xml(datasets, study_id, title=title)
    file.write_bytes(xml)
    (Path(folder) / "define.html").write_text(define_html(xml), encoding="utf-8")
    return file


def export_define(store: Any, study_id: str, out_dir: str | Path, *,
                  country: str | None = None) -> Path:
    """Write ``define.xml`` of a stored study's SDTM export (the datasets
    :func:`celltrial.store.xpt.export_xpt` writes with the same ``country``) into ``out_dir``;
    the study description is its registered title."""
    from celltrial.store.sdtm import sdtm_datasets
    from celltrial.store.studies import get_study

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return write_define(sdtm_datasets(store, study_id, country=country), study_id, out,
                        title=get_study(store, study_id).title)
