"""Galaxies like this one: the representation files, the faiss index and its scores on vectors whose answer is known,
then the real similarity stage and `nightskynet similar` on the tiny run's catalog."""

import json
import subprocess
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest

from nightskynet.analysis import representations
from nightskynet.analysis.neighbours import (
    IndexSettings,
    build_index,
    merger_likeness,
    neighbour_purity,
    pca_2d,
    read_index,
    search,
    unusual_scores,
    write_index,
)
from nightskynet.core.errors import InputError
from nightskynet.stages.similarity import average_precision, precision_at_recall, ranks

BASE = 587_722_000_000_000_001  # objids beyond 2**53, as SDSS's are


def clusters(n_per=60, dims=16, seed=0):
    """Three tight clusters in different directions, objids shuffled so that row order says nothing."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dims)[:3] * 5 + 1
    x = np.concatenate([c + rng.normal(0, 0.3, (n_per, dims)) for c in centres]).astype(np.float32)
    label = np.repeat(np.arange(3), n_per)
    objids = BASE + rng.permutation(len(x)) * 7
    return objids.astype(np.int64), x, label


def test_neighbours_are_named_by_objid_come_from_the_same_cluster_and_leave_the_galaxy_itself_out():
    objids, x, label = clusters()
    index = build_index(objids, x, IndexSettings())
    sims, ids = search(index, x[:5], 10, exclude=objids[:5])
    assert ids.shape == (5, 10) and (ids != objids[:5, None]).all()
    row_of = {o: i for i, o in enumerate(objids)}
    assert all(label[row_of[o]] == label[q] for q, row in enumerate(ids) for o in row)
    assert (np.diff(sims, axis=1) <= 1e-6).all() and (sims <= 1 + 1e-6).all()  # most similar first, cosine
    # without exclusion the galaxy is its own nearest neighbour, similarity 1
    sims, ids = search(index, x[:1], 1)
    assert ids[0, 0] == objids[0] and sims[0, 0] == pytest.approx(1, abs=1e-5)


def test_a_small_index_pads_with_minus_one_and_nan_and_two_galaxies_with_one_objid_are_refused():
    objids, x, _ = clusters(n_per=2)
    sims, ids = search(build_index(objids, x, IndexSettings()), x[:1], 20, exclude=objids[:1])
    assert (ids[0, 5:] == -1).all() and np.isnan(sims[0, 5:]).all() and (ids[0, :5] >= 0).all()
    with pytest.raises(InputError, match="share an objid"):
        build_index(np.array([1, 1]), x[:2], IndexSettings())
    with pytest.raises(ValueError, match="NaN"):
        build_index(objids[:2], np.array([[1.0, np.nan], [0.0, 1.0]]), IndexSettings())


def test_the_lone_galaxy_is_the_most_unusual():
    objids, x, _ = clusters()
    lone = np.full((1, x.shape[1]), 1.0, np.float32)
    lone[0, -1] = 9.0  # a direction no cluster has
    objids = np.append(objids, BASE - 1)
    x = np.concatenate([x, lone])
    index = build_index(objids, x, IndexSettings())
    unusual = unusual_scores(index, objids, x, k=10)
    assert np.argmax(unusual) == len(x) - 1 and unusual[-1] > 3 * np.median(unusual)
    assert ranks(unusual)[-1] == 1


def test_an_index_written_and_read_back_answers_the_same_and_junk_is_refused_in_one_line(tmp_path):
    objids, x, _ = clusters()
    index = build_index(objids, x, IndexSettings(m=16, ef_construction=40, ef_search=50))
    write_index(index, tmp_path / "index.faiss")
    again = read_index(tmp_path / "index.faiss")
    np.testing.assert_array_equal(search(index, x[:7], 5)[1], search(again, x[:7], 5)[1])
    (tmp_path / "junk.faiss").write_bytes(b"not an index")
    with pytest.raises(InputError, match="not a faiss index"):
        read_index(tmp_path / "junk.faiss")
    with pytest.raises(InputError, match="no such index"):
        read_index(tmp_path / "none.faiss")


def test_merger_likeness_ranks_the_galaxies_near_the_training_mergers_first():
    objids, x, label = clusters()
    is_merger = label == 2  # cluster 2 holds the "mergers"
    reference = np.arange(0, len(x), 2)  # every other galaxy is labelled
    query = np.arange(1, len(x), 2)
    for method in ("knn", "examples"):
        score = merger_likeness(x[query], objids[query], objids[reference], x[reference], is_merger[reference], method, 10)
        assert average_precision(score, is_merger[query]) == pytest.approx(1.0)
    # a labelled galaxy is not its own example
    alone = merger_likeness(x[:1], objids[:1], objids[:1], x[:1], np.array([True]), "examples", 1)
    assert np.isnan(alone[0])


def test_ranking_scores_average_precision_and_precision_at_recall_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    positive = np.array([True, False, True, False, True])
    assert average_precision(scores, positive) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert precision_at_recall(scores, positive, 0.6) == pytest.approx(2 / 3)  # 2 of 3 positives in the top 3
    assert average_precision(scores, np.zeros(5, bool)) is None
    assert ranks(np.array([0.1, np.nan, 0.3])).tolist()[::2] == [2, 1] and np.isnan(ranks(np.array([np.nan]))[0])


def test_neighbour_purity_is_one_for_separate_clusters_and_a_third_for_noise():
    objids, x, label = clusters()
    names = np.array(["a", "b", "c"])[label]
    assert neighbour_purity(x[1::2], names[1::2], x[::2], names[::2], ("a", "b", "c"))["balanced"] == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(3000, 8))
    shuffled = rng.choice(["a", "b", "c"], 3000)
    assert neighbour_purity(noise[:500], shuffled[:500], noise[500:], shuffled[500:], ("a", "b", "c"))["balanced"] == pytest.approx(
        1 / 3, abs=0.05
    )


def test_the_map_separates_the_clusters_and_is_the_same_each_time():
    _, x, label = clusters()
    xy = pca_2d(x)
    assert xy.shape == (len(x), 2)
    centres = np.array([xy[label == k].mean(axis=0) for k in range(3)])
    spread = max(xy[label == k].std(axis=0).max() for k in range(3))
    assert min(np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i)) > 4 * spread
    np.testing.assert_array_equal(xy, pca_2d(x))


def test_representation_files_are_checked_against_the_table_they_belong_to(tmp_path):
    objids, x, _ = clusters(n_per=3)
    path = tmp_path / "r.npy"
    representations.write(path, representations.objid_path(path), objids, x)
    ids, features = representations.read(path, objids=objids)
    np.testing.assert_array_equal(features, x)
    assert representations.objid_path(path).name == "r_objid.npy"
    swapped = objids.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    with pytest.raises(InputError, match="first difference at row 0"):
        representations.read(path, objids=swapped)  # another order: another galaxy's representation, refused
    with pytest.raises(InputError, match="no such file"):
        representations.read(tmp_path / "none.npy")


# ---- the real stage and command, on the tiny run -------------------------------------------------------


def similar_here(tiny_run, *args, monkeypatch, capsys) -> tuple[int, str]:
    """`nightskynet similar ...` in this process (the same code as the command, without starting an interpreter):
    its exit status and what it printed."""
    from nightskynet.cli import main

    monkeypatch.chdir(tiny_run)
    status = main(["similar", "--results", str(tiny_run / "results" / "demo"), *args])
    return status, capsys.readouterr().out


def similar(tiny_run, *args, check=True):
    """The installed command, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "nightskynet", "similar", "--results", str(tiny_run / "results" / "demo"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tiny_run,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_the_similarity_stage_scores_every_catalog_galaxy_and_indexes_the_classified(tiny_run):
    root = tiny_run / "results" / "demo"
    catalog = pd.read_csv(root / "morphology/catalog.csv", dtype={"objid": "int64"})
    scores = pd.read_csv(root / "similarity/scores.csv", dtype={"objid": "int64"})
    assert scores["objid"].tolist() == catalog["objid"].tolist()
    classified = (catalog["status"] == "classified").to_numpy()
    assert scores.loc[classified, "unusual"].notna().all() and scores.loc[~classified, "unusual"].isna().all()
    assert sorted(scores["unusual_rank"].dropna().astype(int)) == list(range(1, classified.sum() + 1))
    assert scores["merger_likeness"].between(0, 1).sum() == classified.sum()
    index = read_index(root / "similarity/index.faiss")
    assert index.ntotal == classified.sum()
    summary = json.loads((root / "similarity/summary.json").read_text())
    assert summary["indexed"] == classified.sum() and len(summary["unusual"]["most_unusual"]) == min(16, classified.sum())
    assert set(summary["queries"]) <= {"elliptical", "face_on_spiral", "edge_on_spiral", "merger"} and summary["queries"]


@pytest.mark.slow
def test_similar_by_objid_and_by_position_give_the_same_neighbours_and_never_the_galaxy_itself(tiny_run, tmp_path, monkeypatch, capsys):
    root = tiny_run / "results" / "demo"
    catalog = pd.read_csv(root / "morphology/catalog.csv", dtype={"objid": "int64"})
    galaxy = catalog[catalog["status"] == "classified"].iloc[3]
    by_id = similar(tiny_run, "--objid", str(galaxy["objid"]), "-k", "5", "-o", str(tmp_path / "a.csv"), "--html", str(tmp_path / "a.html"))
    table = pd.read_csv(tmp_path / "a.csv", dtype={"objid": "int64"})
    assert list(table.columns[:5]) == ["rank", "objid", "ra", "dec", "similarity"] and len(table) == 5
    assert galaxy["objid"] not in table["objid"].tolist() and table["similarity"].is_monotonic_decreasing
    assert {"p_merger", "human_p_merger", "unusual", "merger_likeness"} <= set(table.columns)
    row = catalog.set_index("objid").loc[table["objid"]]
    np.testing.assert_allclose(table["ra"], row["ra"])  # each neighbour's own position and probabilities
    np.testing.assert_allclose(table["p_merger"], row["p_merger"])
    page = (tmp_path / "a.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 6 and "query" in page  # the query and its 5 neighbours
    assert by_id.stdout == ""
    status, out = similar_here(
        tiny_run,
        "--ra",
        f"{galaxy['ra'] + 1 / 3600:.6f}",
        "--dec",
        f"{galaxy['dec']:.6f}",
        "-k",
        "5",
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert status == 0 and [int(w.split()[1]) for w in out.strip().splitlines()[1:]] == table["objid"].tolist()


@pytest.mark.slow
def test_similar_by_image_finds_the_catalog_galaxy_the_image_is_of(tiny_run, tmp_path, monkeypatch, capsys):
    root = tiny_run / "results" / "demo"
    with tarfile.open(root / "images/chunk_0.tar") as tar:
        member = next(m for m in tar if m.isfile())
        (tmp_path / "cutout.jpg").write_bytes(tar.extractfile(member).read())
    objid = int(member.name.rsplit("/", 1)[-1].removesuffix(".jpg"))
    status, _ = similar_here(
        tiny_run, "--image", str(tmp_path / "cutout.jpg"), "-k", "3", "-o", str(tmp_path / "b.csv"), monkeypatch=monkeypatch, capsys=capsys
    )
    assert status == 0
    table = pd.read_csv(tmp_path / "b.csv", dtype={"objid": "int64"})
    assert table["objid"].iat[0] == objid and table["similarity"].iat[0] == pytest.approx(1, abs=1e-4)


@pytest.mark.slow
def test_similar_refuses_what_it_cannot_answer_in_one_line(tiny_run, tmp_path, monkeypatch, capsys, caplog):
    catalog = pd.read_csv(tiny_run / "results/demo/morphology/catalog.csv", dtype={"objid": "int64"})
    cases = [
        (["--objid", "1"], "objid 1 is not in"),
        (["--ra", "10", "--dec", "-80"], "no galaxy of the catalog within 3 arcsec"),
        (["--objid", str(catalog["objid"].iat[0]), "--ra", "1", "--dec", "1"], "exactly one query"),
        (["--ra", "10"], "--ra and --dec go together"),
        (["--image", str(tmp_path / "none.jpg")], "none.jpg"),
    ]
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (120, 120), (8, 8, 8)).save(blank)
    cases.append((["--image", str(blank)], "no galaxy to compare"))
    for args, message in cases:  # a bug would raise here instead of returning 1 with its line
        caplog.clear()
        status, _ = similar_here(tiny_run, *args, monkeypatch=monkeypatch, capsys=capsys)
        assert status == 1 and message in caplog.text, (args, caplog.text[-1500:])


def test_only_the_tars_that_can_hold_the_wanted_galaxies_are_read():
    from nightskynet.core.chunks import chunk_of
    from nightskynet.images.cutouts import tars_holding

    tars = [f"run/images/chunk_{k}.tar" for k in (0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9)]  # as a glob sorts them
    wanted = {BASE, BASE + 5}
    assert tars_holding(tars, wanted) == [f"run/images/chunk_{k}.tar" for k in sorted({chunk_of(o, 11) for o in wanted})]
    assert tars_holding(tars[:3], wanted) == tars[:3]  # chunks 0, 1, 10: not a whole run, so every one is read
    assert tars_holding(["a.tar", "b.tar"], wanted) == ["a.tar", "b.tar"]
