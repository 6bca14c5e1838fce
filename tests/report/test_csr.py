"""The CSR table layer: number formats worked by hand, and the HTML of a table."""

from __future__ import annotations

import math

from celltrial.report.csr import CsrTable, Row, column, est_ci, median_range, n_pct, num


def test_numbers_without_float_artefacts():
    assert num(730.0) == "730"
    assert num(0.125) == "0.125"
    assert num(3404.508651577658) == "3405"
    assert num(29351.42) == "29,351"
    assert num(6.95) == "6.95"
    assert num(2.155) == "2.15" or num(2.155) == "2.16"  # binary 2.155 rounds either way
    assert num(0.0003159) == "3.16e-04"
    assert num(None) == num(math.nan) == num(math.inf) == "NE"


def test_counts_and_percentages():
    assert n_pct(3, 8) == "3 (37.5)"
    assert n_pct(8, 8) == "8 (100.0)"
    assert n_pct(0, 8) == "0"
    assert n_pct(1, 3) == "1 (33.3)"
    assert n_pct(0, 0) == "-"


def test_median_and_range_by_hand():
    assert median_range([7, 28, 8, 9]) == "8.50 (7, 28)"  # (8 + 9) / 2
    assert median_range([5.0, None, 1.0, math.nan, 3.0]) == "3 (1, 5)"
    assert median_range([]) == "-"


def test_estimate_with_ci():
    assert est_ci(0.125, [0.003159723531251909, 0.5265096708752065], percent=True) == \
        "12.5 (0.316, 52.7)"
    assert est_ci(468.0, [330.0, None]) == "468 (330, NE)"
    assert est_ci(None, None) == "NE"


def test_table_html_has_numbered_title_population_n_and_footnotes():
    table = CsrTable("14.3.1", "Overview", "Population: safety set, N = 8", "",
                     (column("DL1", 8), column("Total", 8)),
                     (Row("Any adverse event", ("8 (100.0)", "8 (100.0)")),
                      Row("Group", (), 0, True), Row("Grade >= 3", ("2 (25.0)", "2 (25.0)"), 1)),
                     footnotes=("n (%) of N.",))
    html = table.to_html()
    assert "Table 14.3.1: Overview" in html
    assert "<thead>" in html and "DL1<br>N = 8" in html
    assert html.count("<tr") == 4  # header + 3 rows
    assert "Grade &gt;= 3" in html and "n (%) of N." in html
    empty = CsrTable("14.3.9", "Deaths", "Population", "", (), (), empty_reason="No death.")
    assert "No death." in empty.to_html() and "<table" not in empty.to_html()


def test_column_widths_keep_words_and_counts_whole():
    from celltrial.report.csr import _longest_word, column_widths, numbers_fit

    # a header may break after the hyphen of "DLT-evaluable", a cell's id or date never
    assert _longest_word("DLT-evaluable patients", header=True) == len("evaluable")
    assert _longest_word("cd7-aml-mll-001") == len("cd7-aml-mll-001")
    assert _longest_word("2025-01-06", header=True) == len("2025-01-06")
    counts = CsrTable("14.3.2", "AEs", "Population", "Term", (column("DL1", 3), column("Total", 3)),
                      (Row("A very long preferred term that may wrap over lines",
                           ("3 (100.0) / 1 (33.3)", "15 (100.0) / 15 (100.0)")),))
    assert numbers_fit(counts)
    widths = column_widths(counts)
    assert abs(sum(widths) - 100.0) < 1e-9
    # the count column gets at least its whole text: 23 characters + padding of the 100 a line
    # holds; the label wraps instead
    assert widths[2] >= 100.0 * (23 + 2) / 100
    assert 'class="n"' in counts.to_html()
    many = CsrTable("14.3.2", "AEs", "Population", "Term", tuple(column(f"DL{i}", 3)
                                                                  for i in range(8)),
                    (Row("Term", tuple("15 (100.0) / 15 (100.0)" for _ in range(8))),))
    assert not numbers_fit(many)  # eight such columns cannot fit: they wrap at spaces
    assert 'class="n"' not in many.to_html()


def test_a_listing_is_captioned_as_a_listing():
    listing = CsrTable("16.2.7", "Adverse events by patient", "Population", "Patient",
                       ("Grade",), (Row("x", ("3",)),), kind="Listing", landscape=True)
    assert listing.caption == "Listing 16.2.7: Adverse events by patient"
    assert listing.anchor == "l16-2-7"
    assert 'class="csr-table landscape"' in listing.to_html()
