"""The query and scrape stages against the real demo SkyServer over HTTP."""

import io
import tarfile

import pandas as pd
import pytest
from conftest import SKY_DIR, client, project_config
from PIL import Image

from nightskynet.core.chunks import chunk_of
from nightskynet.sky import cutout_client
from nightskynet.sky.demo_sky import build_demo_sky
from nightskynet.sky.http_retry import RetryPolicy
from nightskynet.stages import query, scrape


def settings(**scrape_overrides):
    return project_config({"scrape": {"chunks": 3, **scrape_overrides}})


def test_query_pages_past_a_tiny_row_cap_and_gets_every_galaxy(demo_sky_url):
    import asyncio

    catalog = asyncio.run(
        query.fetch_catalog(demo_sky_url, "dr17", ["zooSpec", "zooNoSpec"], page_size=1000, limit=0, policy=RetryPolicy(max_attempts=2))
    )
    expected = build_demo_sky(SKY_DIR, seed=1).catalog
    assert len(catalog) == len(expected) == 1500  # the server answers 25 rows a page; 60+ pages
    assert sorted(catalog["objid"]) == sorted(expected["objid"])
    assert catalog["objid"].dtype == "int64"


def test_query_limit_stops_early(demo_sky_url):
    import asyncio

    catalog = asyncio.run(
        query.fetch_catalog(demo_sky_url, "dr17", ["zooSpec", "zooNoSpec"], page_size=10, limit=37, policy=RetryPolicy(max_attempts=2))
    )
    assert len(catalog) == 37


def test_query_stage_writes_a_validated_catalog(tmp_path):
    out = tmp_path / "catalog.csv"
    s = project_config({"query": {"limit": 50}})
    query.run(
        catalog=out, catalog_fits=tmp_path / "catalog.fits", settings=s, page_size=1000, sql_timeout_s=30, max_attempts=2, demo_max_rows=500
    )
    frame = pd.read_csv(out)
    assert list(frame.columns) == list(query.CATALOG_COLUMNS)
    assert len(frame) == 50 and frame["objid"].is_unique


def test_scrape_chunk_writes_tar_and_manifest_and_resumes_from_cache(tmp_path):
    sky = build_demo_sky(SKY_DIR, seed=1).catalog.head(40)
    labels = sky[["objid", "ra", "dec", "petroR90_r"]].copy()
    labels.loc[0, ["ra", "dec"]] = [10.0, -60.0]  # off the footprint: a 404 recorded, not retried
    labels_csv = tmp_path / "labels.csv"
    labels.to_csv(labels_csv, index=False)
    s = settings()
    chunk = chunk_of(int(labels.loc[0, "objid"]), 3)
    tar_path, manifest_path = tmp_path / "chunk.tar", tmp_path / "chunk.manifest.csv"

    def scrape_chunk():
        return scrape.run(
            catalog=labels_csv, tar=tar_path, manifest=manifest_path, chunk=chunk, settings=s, client=client(), cache_dir=tmp_path / "cache"
        )

    outcomes = scrape_chunk()
    mine = [o for o in labels["objid"] if chunk_of(o, 3) == chunk]
    assert sorted(o.objid for o in outcomes) == sorted(mine)
    manifest = pd.read_csv(manifest_path)
    assert list(manifest.columns) == list(scrape.MANIFEST_COLUMNS)
    off = manifest[manifest["objid"] == labels.loc[0, "objid"]].iloc[0]
    assert off["status"] == "missing" and off["http_status"] == 404 and off["attempts"] == 1
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        assert sorted(names) == sorted(f"{o}.jpg" for o in manifest.loc[manifest["status"] == "ok", "objid"])
        for m in tar:
            assert Image.open(io.BytesIO(tar.extractfile(m).read())).size == (120, 120)
    # a second run finds every good image in the cache: no new download
    again = scrape_chunk()
    assert {o.status for o in again if o.objid != labels.loc[0, "objid"]} == {"cached"}


def test_cutout_scale_fixed_or_adaptive_within_the_service_range():
    fixed = {"scale_mode": "fixed", "scale": 0.4, "adaptive_k": 0.0846}
    adaptive = {**fixed, "scale_mode": "adaptive"}
    assert cutout_client.cutout_scale(5.0, fixed) == 0.4
    assert cutout_client.cutout_scale(5.0, adaptive) == 0.0846 * 5.0
    adaptive["size"] = 120
    with pytest.raises(
        ValueError,
        match=r"petroR90_r = 0.0001 arcsec frames a 120 pix cutout at 8.46e-06 arcsec / pix .* outside the "
        r"0.015 arcsec / pix to 60 arcsec / pix the cutout service allows",
    ):
        cutout_client.cutout_scale(1e-4, adaptive)
    with pytest.raises(ValueError, match=r"at 84.6 arcsec / pix \(169 arcmin across\)"):
        cutout_client.cutout_scale(1000.0, adaptive)


def test_chunks_are_stable_and_spread_evenly():
    ids = list(range(587_722_000_000_000_000, 587_722_000_000_000_000 + 40_000, 7))
    chunks = [chunk_of(o, 16) for o in ids]
    assert chunks == [chunk_of(o, 16) for o in ids]  # no dependence on Python's hash seed or order
    counts = pd.Series(chunks).value_counts()
    assert len(counts) == 16 and counts.max() < 1.15 * counts.mean()
    assert chunk_of(587722952767439450, 4) == chunk_of(587722952767439450, 4)
