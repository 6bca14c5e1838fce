"""The study report as a clinical study report: one HTML document printed to PDF (WeasyPrint).

Checked on the report of every library protocol (fixture ``reported``): the PDF has a title
page, contents whose page numbers are those of the bookmarks, one page size, every text box
inside its page, every registered outcome measure by name in the PDF and the HTML text; the
tables agree with the analysis (counts re-read from the datasets, estimates from
endpoints.json); a study with no infused patient says so.
"""

from __future__ import annotations

import html as html_lib
import re

import pandas as pd
import pdfplumber
import pypdfium2
import pytest

from celltrial.conduct import apply_data_cut, simulate_study
from celltrial.errors import CelltrialError
from celltrial.protocols import load
from celltrial.report import build_report
from celltrial.report.figures import FIGURES, render_all
from celltrial.report.sections import SECTIONS, clean

A4 = (595.28, 841.89)  # points, ISO 216 210 x 297 mm
LETTER = (612.0, 792.0)  # points, 8.5 x 11 in
RAW_NAMES = re.compile(r"\b(USUBJID|TRT01AN?|SAFFL|EFFFL|DLTEVLFL|PARAMCD|AVALC?|ATOXGRN|"
                       r"AEDECOD|ADY|CNSR|BBLAST|BCD7BLST|EMDFL|TRTDOSE)\b")


def squash(text: str) -> str:
    """Text with every run of whitespace removed (table cells wrap names over lines)."""
    return re.sub(r"\s+", "", text)


def html_text(path) -> str:
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"<style.*?</style>|<img[^>]*>", " ", raw, flags=re.S)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", raw))


def paper(pdf) -> set[tuple[float, float]]:
    """The paper sizes of the pages, each as (short side, long side): one paper, whichever way
    a page is turned."""
    return {tuple(sorted((round(float(p.width), 2), round(float(p.height), 2))))
            for p in pdf.pages}


def test_every_page_has_one_size_and_all_text_inside(reported):
    with pdfplumber.open(reported.files.pdf) as pdf:
        assert paper(pdf) == {A4}
        # portrait, but the listings of the appendix, which are landscape from their section on
        turned = [p.width > p.height for p in pdf.pages]
        first = turned.index(True)
        assert all(turned[first:]) and not any(turned[:first])
        assert "10. Appendix: patient data listings" in pdf.pages[first].extract_text()
        for number, page in enumerate(pdf.pages, start=1):
            for ch in page.chars:
                assert -0.5 <= ch["x0"] and ch["x1"] <= page.width + 0.5, (number, ch["text"])
                assert -0.5 <= ch["top"] and ch["bottom"] <= page.height + 0.5, (number, ch["text"])
            for im in page.images:
                assert im["x0"] >= -0.5 and im["x1"] <= page.width + 0.5, number


def test_title_page_contents_and_bookmarks(reported):
    protocol = reported.protocol
    with pdfplumber.open(reported.files.pdf) as pdf:
        first = pdf.pages[0].extract_text()
        assert "SIMULATED DATA" in first
        assert squash(protocol.title)[:40] in squash(first)
        for label in ("Registration number", "Protocol version", "Data cut-off",
                      "Date generated", "celltrial"):
            assert label in first
        assert f"Page 1 of {len(pdf.pages)}" in first
        assert pdf.metadata["Title"].startswith(f"{protocol.id}: clinical study report")
        texts = [p.extract_text() for p in pdf.pages]
    doc = pypdfium2.PdfDocument(reported.files.pdf)
    marks = {b.get_title(): b.get_dest().get_index() + 1 for b in doc.get_toc() if b.level == 0}
    doc.close()
    assert list(marks)[:2] == ["Synopsis", "Contents"]
    for spec in SECTIONS:
        title = f"{spec.number}. {spec.title}"
        assert title in marks
        # the contents page prints the page the bookmark points to
        contents = texts[marks["Contents"] - 1]
        line = next(line for line in contents.splitlines() if line.startswith(title))
        assert line.rstrip().endswith(f" {marks[title]}") or line.endswith(f".{marks[title]}")
        assert spec.title in texts[marks[title] - 1]


def in_reading_order(name: str, words: list[str], window: int = 80) -> bool:
    """Whether ``name`` is spelled, in order, by words among ``words`` within ``window`` words
    (a name wrapped inside a table cell is interleaved with the text of the cells beside it,
    and may be broken inside a word)."""
    target = squash(name)
    for start, first in enumerate(words):
        if not first or not target.startswith(first):
            continue
        pos = len(first)
        for word in words[start + 1:start + window]:
            if pos == len(target):
                break
            if word and target.startswith(word, pos):
                pos += len(word)
        if pos == len(target):
            return True
    return False


def test_every_registered_outcome_measure_is_named_in_pdf_and_html(reported):
    names = [e.name for e in reported.protocol.endpoints]
    html_squashed = squash(html_text(reported.files.html))
    outcomes = html_text(reported.files.html).split("9. Registered outcome measures")[-1]
    with pdfplumber.open(reported.files.pdf) as pdf:
        words = [w["text"] for p in pdf.pages for w in p.extract_words()]
    for name in names:
        assert in_reading_order(name, words), name
        assert squash(name) in html_squashed
        assert name in outcomes
    for e in reported.endpoints:  # each with its value or the reason it is missing
        if e["status"] != "ok":
            assert squash(clean(e["reason"]))[:40] in html_squashed


def test_tables_agree_with_the_analysis(reported):
    html = html_text(reported.files.html)
    adsl = reported.datasets["adsl"]
    assert re.search(rf"Screened\s+{len(adsl)}\b", html)
    infused = int((adsl["SAFFL"] == "Y").sum())
    if infused:
        assert re.search(rf"Infused \(safety set\)\s+{infused} \(", html)
    ae = next((e for e in reported.endpoints if e["derivation"] == "ae_incidence"), None)
    if ae is not None and ae["status"] == "ok" and infused:
        # the report counts ADAE; the endpoint comes from celltrial.stats.ae_incidence
        x = ae["estimates"]["x"]
        cell = "0" if x == 0 else f"{x} ({100 * x / ae['n']:.1f})"
        assert re.search(rf"Any adverse event(\s+\S+ \(\S+\)| 0)*\s+{re.escape(cell)}", html)


def test_no_raw_variable_names_in_headers_or_row_labels(reported):
    raw = reported.files.html.read_text(encoding="utf-8")
    for cell in re.findall(r"<th[^>]*>(.*?)</th>|<td class=\"stub\"[^>]*>(.*?)</td>", raw):
        text = html_lib.unescape("".join(cell))
        assert not RAW_NAMES.search(text), text
        assert not re.search(r"\b\d+\.0\b", text), text


def test_no_float_artefacts_in_cells(reported):
    text = html_text(reported.files.html)
    assert "NA-NA" not in text and "nan" not in text.split() and "None" not in text.split()


def test_zero_infused_patients_are_said_plainly(tmp_path, make_report):
    protocol = load("cd7-zz-phase1")
    domains = simulate_study(protocol, 9, seed=3)
    first_infusion = pd.to_datetime(domains["EX"]["EXSTDTC"]).min()
    cut = (first_infusion - pd.Timedelta(days=1)).date()
    before = apply_data_cut(domains, cut)
    out = make_report(before, protocol, tmp_path)
    assert (out.datasets["adsl"]["SAFFL"] == "Y").sum() == 0
    text = html_text(out.files.html)
    assert "No patient received CAR-T cells by the data cut-off" in text
    raw = out.files.html.read_text(encoding="utf-8")
    # no empty table: every table has body rows, else a sentence says why
    assert "<tbody></tbody>" not in raw
    for name in (e.name for e in protocol.endpoints):
        assert name in text
    with pdfplumber.open(out.files.pdf) as pdf:
        pdf_text = squash(" ".join(p.extract_text() for p in pdf.pages))
    assert squash("No patient received CAR-T cells by the data cut-off") in pdf_text


def test_letter_paper(tmp_path, make_report):
    protocol = load("cd7-tall-dlt")
    out = make_report(simulate_study(protocol, 6, seed=5), protocol, tmp_path, page_size="Letter")
    with pdfplumber.open(out.files.pdf) as pdf:
        assert paper(pdf) == {LETTER}


def test_unknown_page_size_is_refused(tmp_path):
    with pytest.raises(CelltrialError, match="page_size"):
        build_report(load("cd7-zz-phase1"), tmp_path, tmp_path / "r", page_size="A5")


def test_figure_without_data_carries_its_reason(reported):
    datasets = dict(reported.datasets)
    datasets["adpc"] = datasets["adpc"].iloc[0:0]
    reasons = {r.spec.id: r.reason for r in render_all(datasets)}
    assert reasons["kinetics_qpcr"] == "no ADPC dataset"
    assert set(reasons) == {f.id for f in FIGURES}


def test_missing_analysis_is_a_clear_error(tmp_path):
    with pytest.raises(CelltrialError, match="endpoints.json"):
        build_report(load("cd7-zz-phase1"), tmp_path, tmp_path / "r")


def test_reading_order_check_can_fail():
    words = ["Overall", "Progression-free", "survival", "(OS)", "x"]
    assert in_reading_order("Overall survival (OS)", words)
    assert not in_reading_order("Overall survival (PFS)", words)
    assert not in_reading_order("Event-free survival", words)


def test_cumulative_incidence_with_every_remission_censored_says_why(reported):
    datasets = dict(reported.datasets)
    adtte = datasets["adtte"].copy()
    adtte.loc[adtte["PARAMCD"] == "CIR", ["EVNTTYPE", "CNSR"]] = [0, 1]
    datasets["adtte"] = adtte
    reasons = {r.spec.id: r.reason for r in render_all(datasets)}
    if (reported.datasets["adtte"]["PARAMCD"] == "CIR").any():
        assert reasons["cir"].startswith("no relapse and no death in remission yet")
    else:
        assert reasons["cir"].startswith("no CIR records")


def test_rp2d_is_in_the_analysis_and_the_report(reported):
    """Issue 14: endpoints.json and the report carry the RP2D and its reasoning; the per-dose
    counts the rule read are the DLT-evaluable patients and DLTs of ADSL."""
    import json

    payload = json.loads((reported.analysis_dir / "endpoints.json").read_text("utf-8"))
    r = payload["rp2d"]
    levels = [lv.id for lv in reported.protocol.dose_levels]
    assert [d["level"] for d in r["doses"]] == levels
    adsl = reported.datasets["adsl"]
    ev = adsl[adsl["DLTEVLFL"] == "Y"]
    for d in r["doses"]:
        at = ev[pd.to_numeric(ev["TRT01AN"], errors="coerce") == d["dose"]]
        assert (d["n"], d["dlt"]) == (len(at), int((at["DLTFL"] == "Y").sum()))
    assert r["level"] is None or r["level"] in levels
    assert r["reason"]
    html = reported.files.html.read_text("utf-8")
    assert "Table 12.3" in html
    chosen = "none" if r["level"] is None else r["level"]
    assert f"Recommended phase II dose: {chosen}" in html
