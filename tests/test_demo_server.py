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

from nightskynet.core.errors import DemoSkyError
from nightskynet.sky.demo_server import running_demo_sky
from nightskynet.sky.demo_sky import (
    COPY_OBJID_BASE,
    FOOTPRINT_DEC,
    FOOTPRINT_RA,
    MIN_SEPARATION_DEG,
    PETRO_R90_R,
    SkyIndex,
    build_demo_sky,
)
from nightskynet.stages.query import build_sql


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


# ---- the scaled sky (demo.scale_to) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def scaled_sky():
    return build_demo_sky(SKY_DIR, seed=1, scale_to=20_000)


def test_a_scaled_sky_keeps_the_bundled_galaxies_and_adds_copies_2_arcmin_apart(sky, scaled_sky):
    cat = scaled_sky.catalog
    assert len(cat) == 20_000 and cat["objid"].is_unique
    assert cat.iloc[: len(sky.catalog)].equals(sky.catalog)  # the bundled galaxies exactly as without scale_to
    copies = cat.iloc[len(sky.catalog) :]
    assert (copies["objid"] > COPY_OBJID_BASE).all() and copies["image"].isin(sky.catalog["image"]).all()
    assert copies["image"].value_counts().max() - copies["image"].value_counts().min() <= 1  # every image about equally often
    assert scaled_sky.catalog.equals(build_demo_sky(SKY_DIR, seed=1, scale_to=20_000).catalog)  # deterministic
    assert not cat.equals(build_demo_sky(SKY_DIR, seed=2, scale_to=20_000).catalog)
    assert cat["ra"].between(*FOOTPRINT_RA).all() and cat["dec"].between(*FOOTPRINT_DEC).all()
    index = SkyIndex(cat["ra"].to_numpy(), cat["dec"].to_numpy())
    nearest = [
        np.sort(index.separations_deg(index.within(r.ra, r.dec, 1.0), r.ra, r.dec))[1]
        for r in cat.sample(2000, random_state=0).itertuples()
    ]
    assert min(nearest) >= MIN_SEPARATION_DEG - 1e-6
    # copies get their own votes: the same image is confident in some copies, not in others
    assert copies.groupby("image")["p_el"].nunique().max() > 1


def test_a_scale_to_below_the_bundled_sample_or_past_the_footprint_is_refused():
    with pytest.raises(DemoSkyError, match=r"demo.scale_to = 1000: must be 0 .* or at least 1,500"):
        build_demo_sky(SKY_DIR, seed=1, scale_to=1000)
    with pytest.raises(DemoSkyError, match=r"demo.scale_to: the demo footprint holds at most [\d,]+ galaxies 2 arcmin apart"):
        build_demo_sky(SKY_DIR, seed=1, scale_to=5_000_000)


def test_the_sky_index_finds_what_a_search_of_every_galaxy_finds():
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(0, 360, 20_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000)))
    index = SkyIndex(ra, dec)
    for q_ra, q_dec, radius in [(0.1, 0.0, 1.0), (359.9, 10.0, 2.0), (180.0, 88.5, 3.0), (40.0, -89.9, 0.5), (200.0, 54.0, 0.3)]:
        every = np.flatnonzero(index.separations_deg(np.arange(len(ra)), q_ra, q_dec) < radius)
        assert np.array_equal(index.within(q_ra, q_dec, radius), every), (q_ra, q_dec, radius)


def test_a_scaled_sky_serves_its_copies_by_sql_and_by_cutout(scaled_sky):
    with running_demo_sky(SKY_DIR, seed=1, scale_to=20_000) as url:
        status, _, body = sql(
            url, f"SELECT TOP 5 z.objid, z.ra, z.dec FROM zooSpec AS z WHERE z.objid > {COPY_OBJID_BASE} ORDER BY z.objid"
        )
        rows = body.decode().splitlines()[2:]
        assert status == 200 and len(rows) == 5 and all(int(r.split(",")[0]) > COPY_OBJID_BASE for r in rows)
        copy = scaled_sky.catalog.set_index("objid").loc[int(rows[0].split(",")[0])]
        status, _, body = cutout(url, ra=copy.ra, dec=copy.dec, scale=0.4, width=120, height=120)
    img = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), dtype=float)
    stored = np.asarray(Image.open(SKY_DIR / copy.image).convert("RGB").resize((120, 120), Image.Resampling.LANCZOS), dtype=float)
    assert status == 200 and np.abs(img - stored).mean() < 6
