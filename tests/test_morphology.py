"""Stage ``catalog``: every galaxy the query returned, the right probabilities for the right galaxy, streamed."""

import hashlib
import io
import json
import shutil
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sky_cases
from PIL import Image

from nightskynet.analysis import representations
from nightskynet.analysis.votes_comparison import NVOTE_EDGES, SHOWN, Comparison
from nightskynet.core.errors import InputError
from nightskynet.net.inference import prefetch
from nightskynet.stages import morphology

PROBS = ["p_elliptical", "p_face_on_spiral", "p_edge_on_spiral", "p_merger"]
HUMAN = [f"human_{c}" for c in PROBS]


def synthetic_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    v = rng.dirichlet([0.5] * 4, n)
    p = np.clip(v + rng.normal(0, 0.1, (n, 4)), 0.001, None)
    p /= p.sum(1, keepdims=True)
    frame = pd.DataFrame({"objid": np.arange(n) + 1000 * seed, "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-10, 60, n)})
    frame["nvote"] = rng.integers(5, 120, n)
    frame["split"] = rng.choice(["train", "val", "test", "uncertain", "none"], n)
    frame["status"] = np.where(rng.random(n) < 0.9, "classified", "no_source")
    for k in range(4):
        frame[HUMAN[k]], frame[PROBS[k]] = v[:, k], p[:, k]
    return frame


def test_the_streamed_comparison_equals_the_one_computed_at_once():
    rows = pd.concat([synthetic_rows(700, 1), synthetic_rows(500, 2), synthetic_rows(300, 3)], ignore_index=True)
    streamed = Comparison()
    for block in (rows.iloc[:700], rows.iloc[700:1200], rows.iloc[1200:]):
        streamed.add(block)
    summary = streamed.summary()
    use = rows[rows["split"].isin(["test", "uncertain", "none"]) & (rows["status"] == "classified")]
    v, p = use[HUMAN].to_numpy(), use[PROBS].to_numpy()
    assert summary["compared"] == len(use)
    assert summary["top_class_agreement"] == pytest.approx((p.argmax(1) == v.argmax(1)).mean(), abs=1e-4)
    for k, name in enumerate(["elliptical", "face_on_spiral", "edge_on_spiral", "merger"]):
        got = summary["per_class"][name]
        assert got["pearson_r"] == pytest.approx(np.corrcoef(v[:, k], p[:, k])[0, 1], abs=1e-4)
        assert got["mean_abs_diff"] == pytest.approx(np.abs(v[:, k] - p[:, k]).mean(), abs=1e-4)
        cell = np.minimum((v[:, k] * 10).astype(int), 9)
        for b, binned in enumerate(got["binned"]):
            inside = p[cell == b, k]
            assert binned["n"] == len(inside)
            if len(inside):
                assert binned["mean"] == pytest.approx(inside.mean(), abs=1e-4)
                assert binned["sd"] == pytest.approx(inside.std(), abs=1e-4)
    bins = np.searchsorted(NVOTE_EDGES, use["nvote"].to_numpy(), side="right") - 1
    for b, row in enumerate(summary["by_nvote"]):
        inside = bins == b
        assert row["n"] == inside.sum()
        if inside.any():
            assert row["mean_abs_diff"] == pytest.approx(np.abs(v - p)[inside].mean(), abs=1e-4)
    gap = np.abs(p - v).max(1)
    worst = use["objid"].to_numpy()[np.argsort(-gap, kind="stable")[:SHOWN]]
    assert [d["objid"] for d in summary["largest_disagreements"]] == worst.tolist()


def test_chunks_merge_sorted_by_objid_and_the_fits_twin_written_in_blocks_reads_back_equal(tmp_path, monkeypatch):
    from astropy.table import Table

    rows = synthetic_rows(250, 4)
    rows["votes"] = "simulated"
    rows["predicted"] = np.where(rows["status"] == "classified", "merger", "")
    rows["merger_candidate"] = rows["status"] == "classified"
    rows.loc[rows["status"] != "classified", PROBS] = np.nan
    rows["objid"] = rows["objid"] + 587_722_000_000_000_000  # beyond 2**53: a float would change it
    rows = rows[list(morphology.COLUMNS)]
    parts = [rows.iloc[k::3].sort_values("objid") for k in range(3)]
    for k, part in enumerate(parts):
        part.to_csv(tmp_path / f"chunk_{k}.csv", index=False)
    monkeypatch.setattr(morphology, "BLOCK_ROWS", 40)  # several blocks
    n = morphology.merge_chunks([str(tmp_path / f"chunk_{k}.csv") for k in range(3)], tmp_path / "all.csv")
    merged = pd.read_csv(tmp_path / "all.csv", keep_default_na=False, na_values={c: [""] for c in PROBS})
    assert n == len(rows) and merged["objid"].is_monotonic_increasing and sorted(merged["objid"]) == sorted(rows["objid"])
    from nightskynet.core.tables import write_fits_streamed

    write_fits_streamed(
        tmp_path / "all.fits", morphology.blocks(tmp_path / "all.csv"), n, morphology.column_info(True), morphology.TEXT_WIDTHS
    )
    table = Table.read(tmp_path / "all.fits")
    assert table.colnames == list(morphology.COLUMNS) and (table["objid"].dtype.kind, table["objid"].dtype.itemsize) == ("i", 8)
    assert table["objid"].tolist() == merged["objid"].tolist()
    np.testing.assert_array_equal(np.asarray(table["p_merger"]), merged["p_merger"].to_numpy())
    assert [str(s) for s in table["status"]] == merged["status"].tolist()
    assert [bool(b) for b in table["merger_candidate"]] == merged["merger_candidate"].tolist()
    assert str(table["ra"].unit) == "deg" and "never trained" not in table["split"].description


def test_prefetch_hands_a_producer_error_to_the_consumer_and_stops_with_an_early_consumer():
    def failing():
        yield 1
        raise ValueError("bad chunk")

    got = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]
    made = []

    def endless():
        k = 0
        while True:
            made.append(k)
            yield k
            k += 1

    for item in prefetch(endless(), depth=2):
        if item == 3:
            break
    time.sleep(0.3)
    assert len(made) <= 3 + 2 + 2  # read ahead by at most the queue's depth (+ the one in hand)
    assert not [t for t in threading.enumerate() if t.name == "prefetch"]


@pytest.mark.slow
def test_every_galaxy_of_the_query_gets_one_row_with_the_evaluate_stage_s_probabilities(tiny_run):
    from astropy.table import Table

    root = tiny_run / "results" / "demo"
    query = pd.read_csv(root / "catalog/gz1_votes.csv", dtype={"objid": "int64"})
    labels = pd.read_csv(root / "labels/labels.csv", dtype={"objid": "int64"}).set_index("objid")
    empty_is_nan = {c: [""] for c in PROBS}
    table = pd.read_csv(root / "morphology/catalog.csv", dtype={"objid": "int64"}, keep_default_na=False, na_values=empty_is_nan)
    assert table["objid"].tolist() == sorted(query["objid"])  # every galaxy once, in objid order
    assert list(table.columns) == list(morphology.COLUMNS)
    table = table.set_index("objid")
    assert (table.loc[labels.index, "split"] == labels["split"]).all()
    assert set(table.loc[~table.index.isin(labels.index), "split"]) <= {"none"}
    np.testing.assert_allclose(table.loc[labels.index, HUMAN].to_numpy(), labels[PROBS].to_numpy(), atol=1e-5)
    np.testing.assert_allclose(table.loc[labels.index, ["ra", "dec"]].to_numpy(), labels[["ra", "dec"]].to_numpy())
    for name in ("predictions_test", "predictions_uncertain"):  # the same galaxy gets the same answer in both stages
        evaluated = pd.read_csv(root / f"eval/{name}.csv", dtype={"objid": "int64"}).set_index("objid")
        np.testing.assert_allclose(table.loc[evaluated.index, PROBS].to_numpy(), evaluated[PROBS].to_numpy(), atol=2e-5)
        assert (table.loc[evaluated.index, "predicted"] == evaluated["predicted"]).all()
    classified = table["status"] == "classified"
    assert classified.all()
    np.testing.assert_allclose(table[PROBS].sum(axis=1), 1, atol=1e-4)
    # the catalog's representations: its rows, in its order, each the evaluate stage's galaxy's own
    ids, features = representations.read(root / "morphology/representations.npy", objids=table.index.to_numpy())
    assert np.isfinite(features).all() and features.shape[0] == len(table)
    chunk0 = pd.read_csv(root / "morphology/chunk_0.csv", usecols=["objid"], dtype={"objid": "int64"})["objid"].to_numpy()
    _, chunk_features = representations.read(root / "morphology/chunk_0.representations.npy", objids=chunk0)
    np.testing.assert_array_equal(features[np.searchsorted(ids, chunk0)], chunk_features)
    twin = Table.read(root / "morphology/catalog.fits")
    assert twin["objid"].tolist() == table.index.tolist() and len(twin) == len(query)
    summary = json.loads((root / "morphology/comparison.json").read_text())
    assert summary["galaxies"] == len(query) and summary["votes"] == "simulated"
    held = table["split"].isin(["test", "uncertain", "none"]) & table["human_p_elliptical"].notna()
    assert summary["compared"] == held.sum()


@pytest.fixture()
def chunk_copy(tiny_run, tmp_path):
    """Chunk 0 of the tiny run (tar, manifest) in a scratch folder, with the run's model, catalog and labels."""
    root = tiny_run / "results" / "demo"
    for name in ("images/chunk_0.tar", "images/chunk_0.manifest.csv"):
        shutil.copy(root / name, tmp_path / name.split("/")[1])
    return {
        "model": str(root / "model/model.pt"),
        "catalog": str(root / "catalog/gz1_votes.csv"),
        "labels": str(root / "labels/labels.csv"),
        "tar": tmp_path / "chunk_0.tar",
        "manifest": tmp_path / "chunk_0.manifest.csv",
    }


def chunk_images(tar_path) -> dict[int, bytes]:
    with tarfile.open(tar_path) as tar:
        return {int(m.name[:-4]): tar.extractfile(m).read() for m in tar}


def write_chunk_tar(tar_path, images: dict[int, bytes]) -> None:
    with tarfile.open(tar_path, "w") as tar:
        for objid, data in images.items():
            info = tarfile.TarInfo(f"{objid}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def run_chunk(files, out):
    settings = {"scrape": {"chunks": 2}, "morphology": {"views": 4}}
    features = Path(out).with_suffix(".representations.npy")
    return morphology.run_chunk(
        **{k: files[k] for k in ("model", "catalog", "labels", "tar", "manifest")},
        chunk_csv=out,
        chunk_representations=features,
        chunk_representations_objid=representations.objid_path(features),
        chunk=0,
        settings=settings,
        device="cpu",
        batch_size=0,
        threads=2,
    )


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.slow
def test_blank_star_and_trail_cutouts_get_no_class_and_a_missing_one_a_row_saying_so(chunk_copy, tmp_path):
    rng = np.random.default_rng(0)
    drawn = {
        "no_source": jpeg_bytes(np.clip(rng.normal(12, 3, (120, 120, 3)), 0, 255).astype(np.uint8)),
        "point_source": jpeg_bytes(sky_cases.star(rng)),
        "artefact": jpeg_bytes(sky_cases.trail(rng)),
    }
    images = chunk_images(chunk_copy["tar"])
    first, *replaced = list(images)[:4]
    del images[first]
    manifest = pd.read_csv(chunk_copy["manifest"], dtype={"objid": "int64"})
    manifest.loc[manifest["objid"] == first, ["status", "sha256"]] = ["missing", ""]
    for objid, body in zip(replaced, drawn.values(), strict=True):
        images[objid] = body
        manifest.loc[manifest["objid"] == objid, "sha256"] = hashlib.sha256(body).hexdigest()
    write_chunk_tar(chunk_copy["tar"], images)
    manifest.to_csv(chunk_copy["manifest"], index=False)
    table = run_chunk(chunk_copy, tmp_path / "out.csv").set_index("objid")
    assert table.loc[[first, *replaced], "status"].tolist() == ["missing", *drawn]
    for objid in (first, *replaced):
        assert table.loc[objid, PROBS].isna().all() and table.loc[objid, "predicted"] == "" and not table.loc[objid, "merger_candidate"]
    others = table.drop([first, *replaced])
    assert (others["status"] == "classified").all() and others[PROBS].notna().all().all()
    assert pd.read_csv(tmp_path / "out.csv").shape[0] == len(table)
    # a representation per row, in the table's order: NaN exactly where there is no class
    ids, features = representations.read(tmp_path / "out.representations.npy", objids=table.index.to_numpy())
    assert features.dtype == np.float32 and features.shape == (len(table), features.shape[1]) and features.shape[1] >= 8
    unclassified = (table["status"] != "classified").to_numpy()
    assert np.isnan(features[unclassified]).all() and np.isfinite(features[~unclassified]).all()


@pytest.mark.slow
def test_an_image_that_is_not_the_one_downloaded_for_its_objid_stops_the_job(chunk_copy, tmp_path):
    images = chunk_images(chunk_copy["tar"])
    first, second = list(images)[:2]
    images[first], images[second] = images[second], images[first]  # each would be classified as the other
    write_chunk_tar(chunk_copy["tar"], images)
    with pytest.raises(InputError, match=f"{first}.jpg is not the image its manifest lists"):
        run_chunk(chunk_copy, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".out.csv.*"))


def test_a_text_value_wider_than_its_fits_column_stops_the_write_and_leaves_no_file(tmp_path):
    from nightskynet.core.tables import write_fits_streamed

    frame = pd.DataFrame({"objid": [1, 2], "status": ["classified", "a_new_status_nobody_sized"]})
    with pytest.raises(ValueError, match="column status holds a 25-character value, wider than its 10"):
        write_fits_streamed(tmp_path / "t.fits", iter([frame]), 2, {}, {"status": 10})
    assert not list(tmp_path.iterdir())
