"""Reading an input catalog for ``predict``: its objid, ra and dec (and petroR90_r) from CSV, ECSV, FITS or VOTable,
each value checked, with one line naming the first bad one (the row, the column, the value).

The columns are found under their usual names (``core.tables.USUAL_NAMES``) or the user's; positions in decimal
degrees or sexagesimal (``positions``), converted from a numeric column's angle unit; objids kept as exact 64-bit
integers; an objid at two different positions is refused, since the output could not tell the two apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..core.tables import TextTable, find_column, read_text_table

CATALOG_KEYS = ("objid", "ra", "dec", "petroR90_r")


def read_catalog(path: Path, needs_radius: bool, columns: dict[str, str | None] | None = None) -> pd.DataFrame:
    """The catalog's objid, ra, dec in degrees (and petroR90_r in arcsec), each value checked; one line naming the first bad one.

    ``path`` is CSV, ECSV, FITS or VOTable; ``columns`` maps objid/ra/dec to the user's column names
    (default: the usual names, ``tables.USUAL_NAMES``). Numeric columns with a unit are converted from it.
    """
    from .positions import check_angle_unit, position_problem, sky_coordinates  # astropy: only for a catalog, not at start-up

    table = read_text_table(path)
    columns = columns or {}
    needed = ["objid", "ra", "dec"] + (["petroR90_r"] if needs_radius else [])
    found = {key: find_column(table.names, key, columns.get(key), str(path)) for key in CATALOG_KEYS}
    missing = [key for key in needed if found[key] is None]
    if missing:
        extra = " (the model's cutouts are framed by each galaxy's petroR90_r)" if "petroR90_r" in missing else ""
        raise InputError(
            f"{path}: a catalog to predict needs columns {', '.join(needed)} (or their usual names, or --id-column, "
            f"--ra-column, --dec-column); missing {', '.join(missing)}{extra}. Its columns: {', '.join(table.names)}"
        )
    if table.n_rows == 0:
        raise InputError(f"{path}: the catalog has no rows")
    out = pd.DataFrame(index=range(table.n_rows))
    for key in CATALOG_KEYS:
        name = found[key]
        if name is None:
            continue
        unit = table.unit(name)
        if key in ("ra", "dec") and check_angle_unit(unit):
            raise InputError(f"{path}: column {name} {check_angle_unit(unit)}")
        parse = _cell_parser(key, unit)
        values = []
        for row, text in enumerate(table.text(name)):
            try:
                values.append(parse(text))
            except ValueError as err:
                raise InputError(f"{path}: {table.row_name(row)}, column {name}: {text!r} {err}") from None
        out[key] = np.array(values, dtype=np.int64 if key == "objid" else np.float64)
    for row, ra, dec in zip(out.index, out["ra"], out["dec"], strict=True):
        problem = position_problem(ra, dec)
        if problem:
            raise InputError(f"{path}: {table.row_name(row)}, column {found[problem[0]]}: {problem[1]}")
    coords = sky_coordinates(out["ra"], out["dec"])
    out["ra"], out["dec"] = coords.ra.deg, coords.dec.deg
    if "petroR90_r" not in out:
        out["petroR90_r"] = np.nan
    _refuse_ambiguous_objids(out, path, table)
    return out


def _cell_parser(key: str, unit: str | None):
    """How one cell of the ``key`` column becomes a value; each raises ValueError saying what is wrong."""
    from .positions import arcsec, decimal, parse_angle

    if key == "objid":
        return _parse_objid
    if key in ("ra", "dec"):
        return lambda text: parse_angle(text, key, unit)

    def radius(text: str) -> float:
        number = decimal(text)
        if number is None:
            raise ValueError("is not a number" if text else "is empty (a masked or missing value)")
        return arcsec(number, unit)

    return radius


def _parse_objid(text: str) -> int:
    from .positions import decimal

    if not text:
        raise ValueError("is empty (a masked or missing value)")
    try:
        value = int(text)  # exact for 64-bit SDSS objids, which a float would round
    except ValueError:
        if decimal(text) is not None:
            raise ValueError("is a floating-point value; objids need an integer column (a float cannot hold an SDSS objid)") from None
        raise ValueError("is not an integer") from None
    if not -(2**63) <= value < 2**63:
        raise ValueError("is outside the signed 64-bit range of an objid")
    return value


def _refuse_ambiguous_objids(frame: pd.DataFrame, path: Path, table: TextTable) -> None:
    positions = frame.groupby("objid")[["ra", "dec"]].nunique()
    clash = positions[(positions["ra"] > 1) | (positions["dec"] > 1)].index
    if len(clash):
        objid = clash[0]
        rows = [str(i + table.first_row) for i in frame.index[frame["objid"] == objid]]
        raise InputError(
            f"{path}: objid {objid} appears at different positions ({table.row_word}s {', '.join(rows)}); "
            f"{len(clash)} objid(s) are ambiguous like this. Give each galaxy its own objid."
        )
