"""define.xml (Define-XML 2.1) of the SDTM export: valid against CDISC's Define-XML 2.1 schema
frozen in tests/fixtures/cdisc-define-2.1 (README.md there says where it came from), and true
to the XPT files beside it (datasets, variables in order, lengths, codelist values).

The five shipped protocols' virtual studies come from the ``virtual_exports`` fixture
(tests/store/sdtm_studies.py); the path through a store with ``export_xpt`` is tested too."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pyreadstat
import pytest
from lxml import etree

from celltrial.store.sdtm import ct
from celltrial.store.sdtm.define import define_xml
from celltrial.store.sdtm.spec import dataset_spec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cdisc-define-2.1"
XSD = FIXTURES / "cdisc-define-2.1" / "define2-1-0.xsd"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1",
      "xlink": "http://www.w3.org/1999/xlink"}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def _errors(schema: etree.XMLSchema, doc: etree._Element) -> list[str]:
    schema.validate(doc)
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def test_the_frozen_schema_is_the_one_the_readme_names():
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    pinned = dict((path, digest) for digest, path in
                  re.findall(r"\| `([0-9a-f]{64})` \| `([^`]+)` \|", readme))
    files = sorted(str(f.relative_to(FIXTURES)) for f in FIXTURES.rglob("*.xsd"))
    assert sorted(pinned) == files
    for path, digest in pinned.items():
        assert hashlib.sha256((FIXTURES / path).read_bytes()).hexdigest() == digest, path


def test_every_study_define_xml_is_valid_define_xml_2_1(virtual_exports, schema):
    for study in virtual_exports.studies:
        doc = etree.parse(str(virtual_exports.folder(study, "xpt") / "define.xml"))
        assert _errors(schema, doc.getroot()) == [], study


def test_the_schema_refuses_what_define_xml_2_1_forbids(virtual_exports, schema):
    """The validation can fail: a define.xml without def:Context, with an unknown dataset
    class or without a dataset's def:Structure is refused."""
    study = virtual_exports.studies[0]
    text = (virtual_exports.folder(study, "xpt") / "define.xml").read_bytes()
    for broken in (text.replace(b' def:Context="Submission"', b""),
                   text.replace(b'def:Class Name="FINDINGS"', b'def:Class Name="FINDING"', 1),
                   re.sub(rb' def:Structure="[^"]*"', b"", text, count=1)):
        assert broken != text
        assert _errors(schema, etree.fromstring(broken)) != []


def test_define_xml_describes_the_xpt_files_beside_it(virtual_exports):
    for study in virtual_exports.studies:
        folder = virtual_exports.folder(study, "xpt")
        doc = etree.parse(str(folder / "define.xml")).getroot()
        groups = {g.get("Name"): g for g in doc.iterfind(".//odm:ItemGroupDef", NS)}
        files = {f.stem.upper(): f for f in folder.glob("*.xpt")}
        assert set(groups) == set(files), study
        items = {i.get("OID"): i for i in doc.iterfind(".//odm:ItemDef", NS)}
        codelists = {c.get("OID"): {e.get("CodedValue") for e in c.iterfind("odm:EnumeratedItem",
                                                                              NS)}
                     for c in doc.iterfind(".//odm:CodeList", NS)}
        for name, group in groups.items():
            frame, meta = pyreadstat.read_xport(str(files[name]))
            leaf = group.find("def:leaf", NS)
            assert leaf.get(f"{{{NS['xlink']}}}href") == files[name].name
            refs = group.findall("odm:ItemRef", NS)
            assert [items[r.get("ItemOID")].get("Name") for r in refs] == list(frame.columns)
            spec = dataset_spec(name)
            keys = {items[r.get("ItemOID")].get("Name"): int(r.get("KeySequence"))
                    for r in refs if r.get("KeySequence")}
            assert keys == {k: i for i, k in enumerate(spec.key, start=1)}, name
            for ref in refs:
                item = items[ref.get("ItemOID")]
                var = spec.variable(item.get("Name"))
                assert ref.get("Mandatory") == ("Yes" if var.core == "Req" else "No")
                column = frame[var.name]
                if meta.readstat_variable_types[var.name] == "string":
                    values = {v for v in column if v}
                    if item.get("DataType") == "text":
                        longest = max((len(v.encode("utf-8")) for v in values), default=1)
                        assert int(item.get("Length")) == longest, (name, var.name)
                    codelist = item.find("odm:CodeListRef", NS)
                    if codelist is not None:  # the codelist holds exactly the values used
                        assert values <= codelists[codelist.get("CodeListOID")], var.name
                else:
                    assert item.get("DataType") in ("integer", "float"), (name, var.name)
                    if item.get("DataType") == "integer":
                        assert column.dropna().map(float.is_integer).all()
                origin = item.find("def:Origin", NS).get("Type")
                assert origin == ("Derived" if ref.get("MethodOID") else origin)
            design = name in ("TE", "TA", "TI", "TS", "TV")
            assert (group.get("IsReferenceData") == "Yes") == design
            # more than one record per subject: every subject dataset but DM
            assert (group.get("Repeating") == "Yes") == (not design and name != "DM")
            # SUPP--: Domain is the parent domain (Define-XML 2.1 example define.xml)
            assert group.get("Domain") == name.removeprefix("SUPP")


def test_codelists_carry_the_ct_release_codes_and_mark_extensions(virtual_exports):
    study = "nct04762485"
    doc = etree.parse(str(virtual_exports.folder(study, "xpt") / "define.xml")).getroot()
    standards = {s.get("Name"): s for s in doc.iterfind(".//def:Standard", NS)}
    assert standards["SDTMIG"].get("Version") == "3.4"
    assert standards["CDISC/NCI"].get("Version") == ct.CT_RELEASE
    lbtestcd = doc.find(".//odm:CodeList[@OID='CL.LBTESTCD']", NS)
    items = {e.get("CodedValue"): e for e in lbtestcd.iterfind("odm:EnumeratedItem", NS)}
    assert items["INTLK6"].find("odm:Alias", NS).get("Name") == "C74834"
    assert items["CD7ABS"].get(f"{{{NS['def']}}}ExtendedValue") == "Yes"
    assert items["CD7ABS"].find("odm:Alias", NS) is None
    assert lbtestcd.find("odm:Alias", NS).get("Name") == ct.codelists()["LBTESTCD"][0]
    xc = doc.find(".//odm:ItemGroupDef[@Name='XC']", NS)
    assert xc.get(f"{{{NS['def']}}}IsNonStandard") == "Yes"
    assert xc.get(f"{{{NS['def']}}}StandardOID") is None


def test_value_level_metadata_of_lb_and_pc(virtual_exports):
    study = "nct04762485"
    folder = virtual_exports.folder(study, "xpt")
    doc = etree.parse(str(folder / "define.xml")).getroot()
    for name in ("LB", "PC"):
        frame, _ = pyreadstat.read_xport(str(folder / f"{name.lower()}.xpt"))
        vl = doc.find(f".//def:ValueListDef[@OID='VL.{name}.{name}STRESN']", NS)
        refs = vl.findall("odm:ItemRef", NS)
        assert len(refs) == frame[f"{name}TESTCD"].nunique()
        for ref in refs:
            where_oid = ref.find("def:WhereClauseRef", NS).get("WhereClauseOID")
            where = doc.find(f".//def:WhereClauseDef[@OID='{where_oid}']", NS)
            check = where.find("odm:RangeCheck", NS)
            assert check.get(f"{{{NS['def']}}}ItemOID") == f"IT.{name}.{name}TESTCD"
            code = check.find("odm:CheckValue", NS).text
            item = doc.find(f".//odm:ItemDef[@OID='{ref.get('ItemOID')}']", NS)
            units = set(frame.loc[frame[f"{name}TESTCD"] == code, f"{name}STRESU"]) - {""}
            text = item.find("odm:Description/odm:TranslatedText", NS).text
            assert all(u in text for u in units), (code, units, text)
        stresn = doc.find(f".//odm:ItemDef[@OID='IT.{name}.{name}STRESN']", NS)
        assert stresn.find("def:ValueListRef", NS).get("ValueListOID") == vl.get("OID")


def test_define_of_hand_made_frames_is_valid(schema):
    from celltrial.store.conform import conform
    from celltrial.store.sdtm import to_sdtm

    from .conftest import STUDY, make_frames

    stored = {n: conform(n, f.assign(STUDYID=STUDY), n) for n, f in make_frames().items()}
    doc = etree.fromstring(define_xml(to_sdtm(stored, country="CHN"), STUDY))
    assert _errors(schema, doc) == []
    methods = {m.get("OID") for m in doc.iterfind(".//odm:MethodDef", NS)}
    referenced = {r.get("MethodOID") for r in doc.iterfind(".//odm:ItemRef", NS)} - {None}
    assert referenced == methods and {"MT.SEQ", "MT.TEST", "MT.ARMNRS"} <= methods


def test_export_define_of_a_stored_study_describes_its_xpt_export(store, tmp_path, schema):
    from celltrial.protocols import load
    from celltrial.store import export_xpt, register_study
    from celltrial.store.sdtm.define import export_define

    from .conftest import STUDY

    files = export_xpt(store, STUDY, tmp_path, country="CHN")
    define = export_define(store, STUDY, tmp_path, country="CHN")
    doc = etree.parse(str(define)).getroot()
    assert _errors(schema, doc) == []
    names = {g.get("Name") for g in doc.iterfind(".//odm:ItemGroupDef", NS)}
    assert names == {f.stem.upper() for f in files}
    register_study(store, load("cd7-zz-phase1"))  # a shipped protocol: trial design too
    define = export_define(store, "cd7-zz-phase1", tmp_path / "shipped")
    doc = etree.parse(str(define)).getroot()
    assert _errors(schema, doc) == []
    assert {"TS", "TV", "TE", "TA", "TI", "DM"} <= {
        g.get("Name") for g in doc.iterfind(".//odm:ItemGroupDef", NS)}
    assert doc.find(".//odm:StudyDescription", NS).text == load("cd7-zz-phase1").title


def test_define_html_renders_the_xml_without_a_stylesheet(virtual_exports):
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        """Rows of each table by its id, as lists of cell texts."""

        def __init__(self) -> None:
            super().__init__()
            self.tables: dict[str, list[list[str]]] = {}
            self.current: str | None = None
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.current = dict(attrs).get("id")
                self.tables.setdefault(self.current, [])
            elif tag == "tr":
                self.tables[self.current].append([])
            elif tag == "td":
                self.cell = []

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

        def handle_endtag(self, tag):
            if tag == "td":
                self.tables[self.current][-1].append("".join(self.cell).strip())
                self.cell = None

    study = "nct04762485"
    folder = virtual_exports.folder(study, "xpt")
    doc = etree.parse(str(folder / "define.xml")).getroot()
    parser = Tables()
    parser.feed((folder / "define.html").read_text(encoding="utf-8"))
    tables = parser.tables
    items = {i.get("OID"): i for i in doc.iterfind(".//odm:ItemDef", NS)}
    for group in doc.iterfind(".//odm:ItemGroupDef", NS):
        rows = [r for r in tables[group.get("OID")] if r]
        names = [items[r.get("ItemOID")].get("Name")
                 for r in group.iterfind("odm:ItemRef", NS)]
        assert [r[0] for r in rows if not r[0].startswith("where ")] == names
        vlm = [r[0] for r in rows if r[0].startswith("where ")]
        if group.get("Name") in ("LB", "PC"):  # value-level rows under --STRESN
            name = group.get("Name")
            assert vlm and all(v.startswith(f"where {name}TESTCD = ") for v in vlm)
            at = [r[0] for r in rows].index(f"{name}STRESN")
            assert [r[0] for r in rows[at + 1:at + 1 + len(vlm)]] == vlm
    for codelist in doc.iterfind(".//odm:CodeList", NS):
        values = [e.get("CodedValue") for e in codelist.iterfind("odm:EnumeratedItem", NS)]
        assert [r[0] for r in tables[codelist.get("OID")] if r] == values
