"""Catalog tables in CSV, ECSV, FITS and VOTable; positions in degrees or sexagesimal; each bad value named by its row."""

import numpy as np
import pandas as pd
import pytest
from astropy.table import MaskedColumn, Table

from nightskynet.core.errors import InputError
from nightskynet.core.tables import ColumnInfo, find_column, read_text_table, write_table
from nightskynet.sky.input_catalog import read_catalog
from nightskynet.sky.positions import parse_angle, position_problem

BIG = 587722983360102542  # an SDSS objid above 2**53: a float64 would round it


@pytest.mark.parametrize(
    "text, axis, degrees",
    [
        ("155.25", "ra", 155.25),
        ("10h21m00s", "ra", 155.25),
        ("10:21:00", "ra", 155.25),
        ("10 21 00", "ra", 155.25),
        ("155d15m", "ra", 155.25),
        ("+41d12m", "dec", 41.2),
        ("+41:12:00", "dec", 41.2),
        ("-0 30 00", "dec", -0.5),
        ("-12.5", "dec", -12.5),
    ],
)
def test_angles_in_degrees_or_sexagesimal(text, axis, degrees):
    assert parse_angle(text, axis) == pytest.approx(degrees, abs=1e-12)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "10h61m"])
def test_what_is_not_an_angle_is_refused(text):
    with pytest.raises(ValueError):
        parse_angle(text, "ra")


def test_positions_off_the_sky_are_named_by_axis():
    assert position_problem(10.0, 20.0) is None
    assert position_problem(360.5, 0.0) == ("ra", "360.5 degrees is outside [0, 360]")
    assert position_problem(10.0, -91.0) == ("dec", "-91 degrees is outside [-90, 90]")


def test_columns_are_found_under_their_usual_names_or_the_one_given():
    names = ["objID", "RAJ2000", "DEdeg", "RA_other"]
    assert [find_column(names, k, None, "c") for k in ("objid", "ra", "dec")] == ["objID", "RAJ2000", "DEdeg"]
    assert find_column(names, "ra", "RA_other", "c") == "RA_other"
    with pytest.raises(InputError, match="no column 'alpha'; the columns are objID, RAJ2000"):
        find_column(names, "ra", "alpha", "c")
    with pytest.raises(InputError, match="columns RA and ra could both be ra; name the one to use with --ra-column"):
        find_column(["objid", "RA", "ra", "dec"], "ra", None, "c")


@pytest.mark.parametrize("suffix", [".fits", ".vot", ".ecsv", ".csv"])
def test_every_format_written_reads_back_like_the_csv(tmp_path, suffix):
    frame = pd.DataFrame(
        {"source": np.array([BIG, BIG + 1], np.int64), "p_x": [0.25, 0.75], "flag": [True, False], "name": ["a", "b"], "ra": [1.5, 2.5]}
    )
    info = {"ra": ColumnInfo("deg", "right ascension"), "p_x": ColumnInfo(None, "a probability")}
    write_table(tmp_path / f"t{suffix}", frame, info)
    back = Table.read(tmp_path / f"t{suffix}", format="csv" if suffix == ".csv" else None)
    assert back["source"].tolist() == [BIG, BIG + 1]
    assert back["p_x"].tolist() == [0.25, 0.75] and [str(v) for v in back["name"]] == ["a", "b"]
    assert [str(v).lower() for v in back["flag"]] == ["true", "false"]
    if suffix != ".csv":
        assert back["source"].dtype.kind == "i" and back["source"].dtype.itemsize == 8
        assert str(back["ra"].unit) == "deg" and back["p_x"].description == "a probability"
    assert [p.name for p in tmp_path.iterdir()] == [f"t{suffix}"]  # nothing half-written beside it


def test_the_csv_output_is_what_pandas_writes(tmp_path):
    frame = pd.DataFrame({"source": np.array([BIG], np.int64), "p": [0.123456789]})
    write_table(tmp_path / "t.csv", frame, {})
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "t.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_a_fits_catalog_with_usual_names_reads_exactly(tmp_path):
    Table({"objID": np.array([BIG, 7], np.int64), "RAJ2000": [155.25, 10.0], "DEJ2000": [41.2, -5.0]}).write(tmp_path / "c.fits")
    catalog = read_catalog(tmp_path / "c.fits", needs_radius=False)
    assert catalog["objid"].tolist() == [BIG, 7] and catalog["objid"].dtype == np.int64
    assert catalog["ra"].tolist() == [155.25, 10.0] and catalog["dec"].tolist() == [41.2, -5.0]


def test_a_sexagesimal_votable_reads_as_its_decimal_twin(tmp_path):
    Table({"objid": [1, 2], "ra": ["10h21m00s", "00:40:00"], "dec": ["+41d12m00s", "-05:30:00"]}).write(
        tmp_path / "c.vot", format="votable"
    )
    catalog = read_catalog(tmp_path / "c.vot", needs_radius=False)
    np.testing.assert_allclose(catalog["ra"], [155.25, 10.0], atol=1e-12)
    np.testing.assert_allclose(catalog["dec"], [41.2, -5.5], atol=1e-12)


def test_a_numeric_column_with_an_angle_unit_is_converted_and_ra_360_is_0(tmp_path):
    table = Table({"objid": [1, 2], "ra": [10.35, 24.0], "dec": [-30.0, 12.0], "petroR90_r": [0.1, 0.05]})
    table["ra"].unit, table["dec"].unit, table["petroR90_r"].unit = "hourangle", "deg", "arcmin"
    table.write(tmp_path / "c.ecsv")
    catalog = read_catalog(tmp_path / "c.ecsv", needs_radius=True)
    np.testing.assert_allclose(catalog["ra"], [155.25, 0.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(catalog["petroR90_r"], [6.0, 3.0], rtol=0, atol=1e-9)
    table["ra"].unit = "mag"
    table.write(tmp_path / "mag.ecsv")
    with pytest.raises(InputError, match="column ra has unit 'mag', which is not an angle"):
        read_catalog(tmp_path / "mag.ecsv", needs_radius=False)


def test_sexagesimal_hours_are_exact_and_signs_hold():
    assert parse_angle("10:00:00", "ra") == 150.0
    assert parse_angle("-00:30:00", "dec") == -0.5 and parse_angle("-0d30m00s", "dec") == -0.5


def test_a_file_with_several_tables_is_refused_not_half_read(tmp_path):
    from astropy.io import fits

    one = fits.BinTableHDU(Table({"objid": [1], "ra": [1.0], "dec": [0.0]}))
    two = fits.BinTableHDU(Table({"objid": [2], "ra": [2.0], "dec": [0.0]}))
    fits.HDUList([fits.PrimaryHDU(), one, two]).writeto(tmp_path / "two.fits")
    with pytest.raises(InputError, match="holds 2 tables; give a FITS file holding just the catalog"):
        read_catalog(tmp_path / "two.fits", needs_radius=False)
    from astropy.io.votable.tree import Resource, VOTableFile
    from astropy.io.votable.tree import TableElement as VOTable

    vot = VOTableFile()
    resource = Resource()
    vot.resources.append(resource)
    for t in (Table({"objid": [1], "ra": [1.0], "dec": [0.0]}), Table({"objid": [2], "ra": [2.0], "dec": [0.0]})):
        resource.tables.append(VOTable.from_table(vot, t))
    vot.to_xml(str(tmp_path / "two.vot"))
    with pytest.raises(InputError, match="holds 2 tables; give a VOTable file"):
        read_catalog(tmp_path / "two.vot", needs_radius=False)


def test_only_the_columns_used_are_read_and_big_unsigned_objids_fit(tmp_path):
    Table(
        {
            "objid": np.array([BIG, 2**63 - 1], np.uint64),
            "ra": np.array([1.0, 2.0], ">f8"),
            "dec": [0.0, 1.0],
            "mags": np.zeros((2, 5)),  # a column of arrays, not used: no obstacle
        }
    ).write(tmp_path / "c.fits")
    assert read_catalog(tmp_path / "c.fits", needs_radius=False)["objid"].tolist() == [BIG, 2**63 - 1]


@pytest.mark.parametrize(
    "columns, expected",
    [
        ({"objid": [1, 2], "ra": [10.0, 400.0], "dec": [0.0, 0.0]}, "row 2, column ra: 400 degrees is outside [0, 360]"),
        ({"objid": [1, 2], "ra": ["10h", "xx"], "dec": ["0", "0"]}, "row 2, column ra: 'xx' is not an angle"),
        ({"objid": [1, 2], "ra": [1.0, np.nan], "dec": [0.0, 0.0]}, "row 2, column ra: '' is empty"),
        ({"objid": [1.5, 2.0], "ra": [1.0, 2.0], "dec": [0.0, 0.0]}, "row 1, column objid: '1.5' is a floating-point value"),
        ({"objid": np.array([2**63 + 5], np.uint64), "ra": [1.0], "dec": [0.0]}, "is outside the signed 64-bit range of an objid"),
        ({"id_other": [1], "ra": [1.0], "dec": [0.0]}, "missing objid"),
    ],
)
def test_a_bad_fits_value_is_named_by_row_column_and_value(tmp_path, columns, expected):
    Table(columns).write(tmp_path / "c.fits")
    with pytest.raises(InputError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        read_catalog(tmp_path / "c.fits", needs_radius=False)


def test_masked_cells_read_as_empty_and_are_refused(tmp_path):
    Table({"objid": [1, 2], "ra": MaskedColumn([1.0, 2.0], mask=[False, True]), "dec": [0.0, 0.0]}).write(tmp_path / "c.ecsv")
    assert read_text_table(tmp_path / "c.ecsv").text("ra") == ["1.0", ""]
    with pytest.raises(InputError, match=r"row 2, column ra: '' is empty \(a masked or missing value\)"):
        read_catalog(tmp_path / "c.ecsv", needs_radius=False)


def test_a_file_that_is_not_what_its_name_says_gets_one_line(tmp_path):
    (tmp_path / "c.fits").write_text("objid,ra,dec\n1,2,3\n")
    with pytest.raises(InputError, match="not a readable FITS file") as info:
        read_catalog(tmp_path / "c.fits", needs_radius=False)
    assert "Error:" not in str(info.value)
