"""Catalog tables in the formats astronomers use: CSV, ECSV, FITS and VOTable, chosen by extension.

* Reading: a file must hold one table. A column comes back as text, one string per cell (an empty
  string for a masked or missing value), with its unit, so the caller checks each value itself and
  names the row of a bad one; only the columns asked for are converted. A row is named by its line
  in a CSV (the header is line 1) and by its number (1-based) in the others.
* Columns by their usual names: ``find_column`` looks a column up under the names catalogs use for
  it (``ra``, ``RA``, ``RAJ2000``, ``ra_deg``...), case-insensitively, unless the user named it.
* Writing: CSV exactly as pandas writes it (the workflow's tables stay byte-identical); ECSV, FITS
  and VOTable through ``astropy.table`` with each column's unit and description in its metadata,
  integers kept as 64-bit integers (an SDSS objid does not survive a float). Every write is atomic.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .files import atomic_path, write_csv_atomic

# extension -> astropy.table format name
FORMATS = {
    ".csv": "csv",
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}
FORMAT_NAMES = "CSV (.csv), ECSV (.ecsv), FITS (.fits) or VOTable (.vot, .xml)"

# what a column is called in the catalogs people bring, first match wins (case-insensitive)
USUAL_NAMES = {
    "objid": ("objid", "objid_dr7", "dr7objid", "obj_id", "specobjid", "id", "source_id"),
    "ra": ("ra", "ra_deg", "radeg", "raj2000", "_raj2000", "ra_icrs", "alpha_j2000", "ra_j2000"),
    "dec": (
        "dec",
        "dec_deg",
        "decdeg",
        "dedeg",
        "de_deg",
        "dej2000",
        "_dej2000",
        "decj2000",
        "de_icrs",
        "dec_icrs",
        "delta_j2000",
        "dec_j2000",
    ),
    "petroR90_r": ("petror90_r", "petror90"),
}


@dataclass(frozen=True)
class TextTable:
    """A table whose cells are read as text on demand: ``names`` (its columns), ``text(name)`` (one
    string per row, '' for a masked or missing cell), ``unit(name)`` (the column's unit or None),
    and how its rows are named in messages (``row_name``: "line 2" in a CSV, "row 1" otherwise)."""

    source: object  # a pandas DataFrame of strings (CSV) or an astropy Table
    n_rows: int
    first_row: int
    row_word: str

    @property
    def names(self) -> list[str]:
        return list(self.source.columns) if isinstance(self.source, pd.DataFrame) else list(self.source.colnames)

    def text(self, name: str) -> list[str]:
        if isinstance(self.source, pd.DataFrame):
            return [v.strip() for v in self.source[name]]
        return _as_text(self.source[name])

    def unit(self, name: str) -> str | None:
        if isinstance(self.source, pd.DataFrame) or self.source[name].unit is None:
            return None
        return self.source[name].unit.to_string()

    def row_name(self, index: int) -> str:
        return f"{self.row_word} {index + self.first_row}"


def table_format(path: str | Path) -> str | None:
    """The astropy format of ``path`` by its extension, or None when it is not a table file."""
    return FORMATS.get(Path(path).suffix.lower())


def read_text_table(path: str | Path) -> TextTable:
    """Read a CSV, ECSV, FITS or VOTable file holding one table; one clear line when it cannot be read."""
    path = Path(path)
    fmt = table_format(path)
    if fmt is None:
        raise InputError(f"{path}: not a table file by its extension; a catalog is {FORMAT_NAMES}")
    if fmt == "csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            raise InputError(f"{path}: not a readable CSV catalog ({err})") from None
        return TextTable(frame, len(frame), 2, "line")
    from astropy.table import Table

    kind = fmt.replace("ascii.", "").upper().replace("VOTABLE", "VOTable")
    try:
        count = _count_tables(path, fmt)
    except Exception as err:  # noqa: BLE001 - astropy raises many types for a file that is not what its name says
        raise InputError(f"{path}: not a readable {kind} file ({err})") from None
    if count != 1:
        raise InputError(f"{path}: holds {count} tables; give a {kind} file holding just the catalog to predict")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unit and VOTable-dialect warnings say nothing a user can act on here
            table = Table.read(path, format=fmt)
    except Exception as err:  # noqa: BLE001 - as above
        raise InputError(f"{path}: not a readable {kind} table ({err})") from None
    return TextTable(table, len(table), 1, "row")


def _count_tables(path: Path, fmt: str) -> int:
    """How many tables a FITS (table HDUs) or VOTable file holds (ECSV: always one)."""
    if fmt == "fits":
        from astropy.io import fits

        with fits.open(path) as hdus:
            return sum(isinstance(h, (fits.BinTableHDU, fits.TableHDU)) for h in hdus)
    if fmt == "votable":
        from astropy.io.votable import parse

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sum(1 for _ in parse(str(path)).iter_tables())
    return 1


def _as_text(column) -> list[str]:
    """Cells of an astropy column as strings: integers exact, floats in full precision, masked as ''."""
    if column.ndim > 1:
        raise InputError(f"column {column.name} holds {column.shape[1:]} values per row, not one")
    mask = np.ma.getmaskarray(column) if hasattr(column, "mask") else np.zeros(len(column), bool)
    out = []
    for value, masked in zip(np.asarray(column), mask, strict=True):
        if masked:
            out.append("")
        elif isinstance(value, bytes):
            out.append(value.decode("utf-8", "replace").strip())
        elif isinstance(value, (np.floating, float)):
            out.append(repr(float(value)))
        else:
            out.append(str(value).strip())
    return out


def find_column(names: list[str], key: str, given: str | None, where: str) -> str | None:
    """The column holding ``key``: the one the user named (which must exist), else the first of its usual names.

    Two columns that differ only in case (``RA`` and ``ra``) are refused as ambiguous.
    """
    if given:
        if given not in names:
            raise InputError(f"{where}: no column {given!r}; the columns are {', '.join(names)}")
        return given
    for usual in USUAL_NAMES[key]:
        matches = [c for c in names if c.lower() == usual]
        if len(matches) > 1:
            option = {"objid": "--id-column", "ra": "--ra-column", "dec": "--dec-column"}.get(key, "an option")
            raise InputError(f"{where}: columns {' and '.join(matches)} could both be {key}; name the one to use with {option}")
        if matches:
            return matches[0]
    return None


@dataclass(frozen=True)
class ColumnInfo:
    unit: str | None
    description: str


def _pipeline_columns() -> dict[str, ColumnInfo]:
    from .vocabulary import CLASS_NAMES, HUMAN_COLUMNS, PROB_COLUMNS

    votes = "fraction of the Galaxy Zoo 1 votes"
    info = {
        "objid": ColumnInfo(None, "SDSS objID of the galaxy (64-bit integer)"),
        "ra": ColumnInfo("deg", "right ascension (ICRS)"),
        "dec": ColumnInfo("deg", "declination (ICRS)"),
        "nvote": ColumnInfo(None, "number of Galaxy Zoo 1 votes"),
        "p_el": ColumnInfo(None, f"{votes} for elliptical"),
        "p_cw": ColumnInfo(None, f"{votes} for clockwise spiral"),
        "p_acw": ColumnInfo(None, f"{votes} for anticlockwise spiral"),
        "p_edge": ColumnInfo(None, f"{votes} for edge-on disk"),
        "p_dk": ColumnInfo(None, f"{votes} for don't know"),
        "p_mg": ColumnInfo(None, f"{votes} for merger"),
        "p_cs": ColumnInfo(None, f"{votes} for any spiral (cw + acw + edge-on)"),
        "petroR90_r": ColumnInfo("arcsec", "radius holding 90% of the r-band Petrosian flux"),
        "table": ColumnInfo(None, "SkyServer table of the votes (zooSpec: with a spectrum, zooNoSpec: without)"),
        "votes": ColumnInfo(None, "where the vote fractions come from: galaxy_zoo_1, or simulated on the demo sky"),
        "label": ColumnInfo(None, "class with the largest renormalised vote fraction"),
        "confidence": ColumnInfo(None, "the largest renormalised vote fraction"),
        "split": ColumnInfo(None, "train, val, test or uncertain (below the confidence cut)"),
        "true_class": ColumnInfo(None, "class from the votes (confident galaxies)"),
        "predicted": ColumnInfo(None, "the network's most probable class"),
        "merger_candidate": ColumnInfo(None, "p_merger at or above the model's merger threshold (chosen on the val split)"),
    }
    for name, column, human in zip(CLASS_NAMES, PROB_COLUMNS, HUMAN_COLUMNS, strict=True):
        info[column] = ColumnInfo(
            None, f"probability of class {name}: the calibrated network's, or in the labels the renormalised vote fraction"
        )
        info[human] = ColumnInfo(None, f"renormalised vote fraction for class {name} (don't-know dropped, cw + acw = face-on)")
    return info


PIPELINE_COLUMNS = _pipeline_columns()


def write_csv_and_fits(csv_path: str | Path, fits_path: str | Path, frame: pd.DataFrame) -> None:
    """A workflow table as CSV (what pandas writes) and as its FITS twin, with units and descriptions."""
    write_csv_atomic(csv_path, frame)
    write_table(fits_path, frame, PIPELINE_COLUMNS)


def write_table(path: str | Path, frame: pd.DataFrame, info: dict[str, ColumnInfo]) -> None:
    """Write ``frame`` in the format ``path``'s extension names, atomically; units and descriptions from ``info``."""
    path = Path(path)
    fmt = table_format(path)
    if fmt is None:
        raise InputError(f"{path}: name the output {FORMAT_NAMES}")
    if fmt == "csv":
        write_csv_atomic(path, frame)
        return
    with atomic_path(path) as tmp:
        to_astropy(frame, info).write(tmp, format=fmt, overwrite=True)


def to_astropy(frame: pd.DataFrame, info: dict[str, ColumnInfo]):
    """An astropy Table of ``frame``: integers as int64, booleans as bool, text as unicode, with units and descriptions."""
    import astropy.units as u
    from astropy.table import Column, Table

    table = Table()
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series):
            data = series.to_numpy(bool)
        elif pd.api.types.is_integer_dtype(series):
            data = series.to_numpy(np.int64)
        elif pd.api.types.is_float_dtype(series):
            data = series.to_numpy(np.float64)
        else:
            data = np.array([str(v) for v in series], dtype=str)
        meta = info.get(name)
        table[name] = Column(data, unit=u.Unit(meta.unit) if meta and meta.unit else None, description=meta.description if meta else None)
    return table


def write_fits_streamed(path: str | Path, blocks, n_rows: int, info: dict[str, ColumnInfo], text_widths: dict[str, int]) -> None:
    """A FITS binary table of ``n_rows`` rows written block by block (memory: one block), atomically.

    ``blocks`` yields DataFrames with the same columns; text columns are stored at the fixed widths
    of ``text_widths`` so that every block has the same row layout. Each block goes through
    astropy (the same encoding as ``write_table``); its header is written once, with NAXIS2 = ``n_rows``.
    """
    import io

    from astropy.io import fits

    def header_end(raw: bytes, start: int) -> int:
        for block_start in range(start, len(raw), 2880):
            cards = raw[block_start : block_start + 2880]
            if any(cards[k : k + 8] == b"END     " for k in range(0, 2880, 80)):
                return block_start + 2880
        raise ValueError("no END card")

    written, row_bytes = 0, None
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for block in blocks:
            table = to_astropy(block, info)
            for name, width in text_widths.items():
                column = table[name]
                longest = max((len(v) for v in column), default=0)
                if longest > width:  # a fixed-width cast would cut it silently
                    raise ValueError(f"{path}: column {name} holds a {longest}-character value, wider than its {width}")
                table[name] = type(column)(np.asarray(column, dtype=f"U{width}"), unit=column.unit, description=column.description)
            buffer = io.BytesIO()
            table.write(buffer, format="fits")  # as write_table does: units, and descriptions in COMMENT cards
            raw = buffer.getvalue()
            primary_end = header_end(raw, 0)
            table_end = header_end(raw, primary_end)
            header = fits.Header.fromstring(raw[primary_end:table_end].decode("ascii"))
            if row_bytes is None:
                row_bytes = header["NAXIS1"]
                header["NAXIS2"] = n_rows
                out.write(raw[:primary_end])
                out.write(header.tostring().encode("ascii"))
            elif header["NAXIS1"] != row_bytes:
                raise ValueError(f"a block has {header['NAXIS1']}-byte rows, not {row_bytes}: a text column is wider than its width")
            out.write(raw[table_end : table_end + row_bytes * len(block)])
            written += len(block)
        if written != n_rows:
            raise ValueError(f"{path}: {written} rows written, {n_rows} announced")
        out.write(b"\0" * (-(row_bytes or 0) * n_rows % 2880))
