"""The demo SkyServer, over real HTTP, answering as DESIGN.md says the real service does."""

import io
import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from conftest import SKY_DIR
from PIL import Image

from nightskynet.demo_sky import PETRO_R90_R, build_demo_sky
from nightskynet.query import build_sql


def get(url: str, **params):
    full = url + "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(full, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type"), err.read()


@pytest.fixture(scope="module")
def sky():
    return build_demo_sky(SKY_DIR, seed=1)


def sql(base, cmd):
    return get(f"{base}/dr17/SkyServerWS/SearchTools/SqlSearch", cmd=cmd, format="csv")


def test_sql_answers_table1_csv_capped_and_paged_by_objid(demo_sky_url, sky):
    status, ctype, body = sql(demo_sky_url, build_sql("zooSpec", -1, 1000))
    assert status == 200
    lines = body.decode().splitlines()
    assert lines[0] == "#Table1"
    assert lines[1] == "objid,ra,dec,nvote,p_el,p_cw,p_acw,p_edge,p_dk,p_mg,p_cs,petroR90_r"
    assert len(lines) - 2 == 25  # the fixture's row cap, applied silently like the real 500,000
    ids = [int(line.split(",")[0]) for line in lines[2:]]
    expected = sky.table("zooSpec")["objid"].sort_values().tolist()
    assert ids == expected[:25]  # exact 64-bit objids, ascending
    status, _, body = sql(demo_sky_url, build_sql("zooSpec", ids[-1], 1000))
    assert [int(line.split(",")[0]) for line in body.decode().splitlines()[2:]] == expected[25:50]
    first = lines[2].split(",")
    assert float(first[-1]) == pytest.approx(PETRO_R90_R, abs=1e-3)
    assert 20 <= int(first[3]) <= 70


def test_sql_after_the_last_objid_is_an_empty_table(demo_sky_url, sky):
    last = int(sky.table("zooNoSpec")["objid"].max())
    status, _, body = sql(demo_sky_url, build_sql("zooNoSpec", last, 10))
    assert status == 200 and body.decode().splitlines() == [
        "#Table1",
        "objid,ra,dec,nvote,p_el,p_cw,p_acw,p_edge,p_dk,p_mg,p_cs,petroR90_r",
    ]


def test_sql_json_format_has_bare_integer_objids(demo_sky_url):
    status, ctype, body = get(f"{demo_sky_url}/dr17/SkyServerWS/SearchTools/SqlSearch", cmd=build_sql("zooSpec", -1, 2), format="json")
    data = json.loads(body)
    assert status == 200 and data[0]["TableName"] == "Table1" and isinstance(data[0]["Rows"][0]["objid"], int)


@pytest.mark.parametrize(
    "cmd, message",
    [
        ("SELECT * FROM PhotoObj", "Incorrect syntax"),
        (build_sql("zooFoo", -1, 5), "Invalid object name"),
        (build_sql("zooSpec", -1, 5).replace("z.nvote", "z.votes"), "Invalid column name"),
    ],
)
def test_bad_sql_is_a_400_with_the_json_error_body(demo_sky_url, cmd, message):
    status, ctype, body = sql(demo_sky_url, cmd)
    assert status == 400 and ctype.startswith("application/json")
    err = json.loads(body)
    assert set(err) >= {"ErrorCode", "ErrorType", "ErrorMessage"} and message in err["ErrorMessage"]


def cutout(base, **params):
    return get(f"{base}/dr17/SkyServerWS/ImgCutout/getjpeg", **params)


def test_default_cutout_is_the_whole_stored_image_resampled(demo_sky_url, sky):
    g = sky.catalog.iloc[10]
    status, ctype, body = cutout(demo_sky_url, ra=g.ra, dec=g.dec, scale=0.4, width=120, height=120)
    assert status == 200 and ctype == "image/jpeg"
    img = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), dtype=float)
    assert img.shape == (120, 120, 3)
    stored = np.asarray(Image.open(SKY_DIR / g.image).convert("RGB").resize((120, 120), Image.Resampling.LANCZOS), dtype=float)
    assert np.abs(img - stored).mean() < 6  # the same picture, up to JPEG re-encoding


def test_other_scales_and_sizes_crop_or_pad_around_the_centre(demo_sky_url, sky):
    g = sky.catalog.iloc[10]
    # twice the scale: the 48" image covers the central 60 x 60 px, the rest is padding (dark sky)
    status, _, body = cutout(demo_sky_url, ra=g.ra, dec=g.dec, scale=0.8, width=120, height=120)
    img = np.asarray(Image.open(io.BytesIO(body)).convert("L"), dtype=float)
    assert status == 200 and img[:20].mean() < 5 and img[30:90, 30:90].mean() > img[:20].mean()
    # width/height silently clipped to [64, 2048]
    status, _, body = cutout(demo_sky_url, ra=g.ra, dec=g.dec, scale=0.4, width=10, height=3000)
    assert status == 200 and Image.open(io.BytesIO(body)).size == (64, 2048)


def test_off_footprint_is_a_404_with_a_jpeg_body(demo_sky_url):
    status, ctype, body = cutout(demo_sky_url, ra=10.0, dec=-60.0, scale=0.4, width=120, height=120)
    assert status == 404 and ctype == "image/jpeg" and body[:2] == b"\xff\xd8"
    Image.open(io.BytesIO(body)).load()


@pytest.mark.parametrize("params", [dict(ra=400, dec=10), dict(ra=180, dec=-95), dict(ra=180, dec=10, scale=100)])
def test_out_of_range_parameters_are_a_400_with_json(demo_sky_url, params):
    status, ctype, body = cutout(demo_sky_url, **{"scale": 0.4, "width": 120, "height": 120, **params})
    assert status == 400 and "ErrorMessage" in json.loads(body)
