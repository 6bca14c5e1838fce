"""Make ``src/celltrial/clinical/data/ctcae_v5_terms.csv`` from NCI's CTCAE v5.0 workbook.

Source: National Cancer Institute, Common Terminology Criteria for Adverse Events (CTCAE)
Version 5.0, November 27, 2017, file ``CTCAE_v5.0.xlsx`` (sheet "CTCAE v5.0 Clean Copy"),
published by NCI CTEP (https://ctep.cancer.gov/protocolDevelopment/electronic_applications/
ctc.htm); a work of the US Government, in the public domain. The copy used (SHA-256
dc11095f39227ef48402eb166cefaf0933bb7a0b0cc61c187649c0b19c6f601f, 837 terms) came from a
public GitHub repository that redistributes the NCI file unchanged.

Run (openpyxl is needed only here, not by the package):

    python -m venv /tmp/xl && /tmp/xl/bin/pip install openpyxl
    /tmp/xl/bin/python tools/ctcae_terms.py CTCAE_v5.0.xlsx > src/celltrial/clinical/data/ctcae_v5_terms.csv

Output columns: ``meddra_code, soc, term, grade_1 .. grade_5`` with each grade's
description as NCI writes it, and an empty cell where NCI's cell is "-" (the grade does not
exist for that term, e.g. no grade 5 for "Neutrophil count decreased", no grade 4 or 5 for
"Headache"). Whitespace (NCI's non-breaking spaces, line breaks inside cells) is collapsed.
"""

from __future__ import annotations

import csv
import sys

from openpyxl import load_workbook


def _clean(value: object) -> str:
    text = "" if value is None else " ".join(str(value).replace("\xa0", " ").split())
    return "" if text in ("-", "–") else text


def main(path: str) -> None:
    sheet = load_workbook(path, read_only=True)["CTCAE v5.0 Clean Copy"]
    rows = sheet.iter_rows(values_only=True)
    header = [_clean(h) for h in next(rows)]
    assert header[:8] == ["MedDRA Code", "MedDRA SOC", "CTCAE Term", "Grade 1", "Grade 2",
                          "Grade 3", "Grade 4", "Grade 5"], header
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["meddra_code", "soc", "term", "grade_1", "grade_2", "grade_3", "grade_4",
                  "grade_5"])
    for row in rows:
        if row[2] is None:
            continue
        out.writerow([str(int(row[0])), *(_clean(v) for v in row[1:8])])


if __name__ == "__main__":
    main(sys.argv[1])
