"""The public CSV as a spreadsheet reads it: LibreOffice Calc headless (the
Debian package libreoffice-calc-nogui, installed by scripts/bootstrap) converts
it to xlsx (`soffice --convert-to xlsx`), openpyxl reads the cells back.

The import is LibreOffice's default one (comma, double quotes, formulas
evaluated, numbers and dates recognised) except for the character set:
headless LibreOffice 7.4 takes any CSV for Windows-1252, even with a UTF-8
byte order mark, so it is given the charset the response declares
(`text/csv; charset=utf-8`), as a person picks it in the import dialog.
"""

import os
import shutil
import tempfile
from pathlib import Path

import openpyxl
import pytest

from stack import run_bounded

CSV_UTF8 = "CSV:44,34,UTF8"  # separator ',', text delimiter '"', UTF-8; the rest LibreOffice's defaults


def soffice_binary():
    binary = os.environ.get("SOFFICE_BIN") or shutil.which("soffice")
    if not binary:
        pytest.fail("LibreOffice is required: install the Debian package libreoffice-calc-nogui "
                    "(scripts/bootstrap does) or set SOFFICE_BIN", pytrace=False)
    return binary


def as_text(cells):
    """The rows of spreadsheet_cells() as text, as the CSV has them: an empty
    cell is "", a logical (LibreOffice reads true/false as TRUE/FALSE) is
    "true"/"false"."""
    return [["" if v is None else str(v).lower() if t == "b" else v for v, t in row] for row in cells]


def lf_line_breaks(rows):
    """CSV rows with their line breaks as a spreadsheet cell stores them (LF;
    LibreOffice turns a CR inside a quoted field into LF)."""
    return [[v.replace("\r\n", "\n").replace("\r", "\n") for v in row] for row in rows]


def spreadsheet_cells(files, timeout=120):
    """{name: CSV bytes} -> {name: [[(value, openpyxl data_type), ...] per row]},
    all converted by one LibreOffice run with a profile of its own (a shared
    one is locked by any other LibreOffice running)."""
    with tempfile.TemporaryDirectory(prefix="subreg-soffice-") as tmp:
        tmp = Path(tmp)
        inputs = []
        for name, data in files.items():
            (tmp / f"{name}.csv").write_bytes(data)
            inputs.append(str(tmp / f"{name}.csv"))
        cmd = [soffice_binary(), f"-env:UserInstallation=file://{tmp}/profile", "--headless",
               "--norestore", f"--infilter={CSV_UTF8}", "--convert-to", "xlsx",
               "--outdir", str(tmp / "out"), *inputs]
        code, out, err = run_bounded(cmd, timeout)
        result = {}
        for name in files:
            xlsx = tmp / "out" / f"{name}.xlsx"
            assert xlsx.exists(), f"LibreOffice wrote no {xlsx.name} (exit {code}): {(out + err).decode()}"
            sheet = openpyxl.load_workbook(xlsx).active
            result[name] = [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]
        return result
