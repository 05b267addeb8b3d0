"""``predict`` on new galaxies: the right galaxy for every row, any working directory, and one clear line for bad input."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sky_cases
import yaml
from conftest import SKY_DIR, snakemake
from PIL import Image

pytestmark = pytest.mark.slow
ENV = dict(os.environ)
CLASSES = {"elliptical", "face_on_spiral", "edge_on_spiral", "merger"}
PROBS = ["p_elliptical", "p_face_on_spiral", "p_edge_on_spiral", "p_merger"]


def predict(model, *args, cwd=None, check=True):
    """``python -m nightskynet predict MODEL ...`` in a child process; the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-m", "nightskynet", "predict", str(model), *map(str, args)],
        env=ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def one_line_error(proc) -> str:
    """The error a failed command printed: exit status 1, no traceback, one 'failed:' line."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if "failed:" in ln or ln.startswith("usage:") or "error:" in ln]
    assert lines, proc.stderr[-3000:]
    return proc.stderr


@pytest.fixture(scope="module")
def model(tiny_run):
    return tiny_run / "results/demo/model/model.pt"


@pytest.fixture(scope="module")
def galaxies(tiny_run):
    """Six demo galaxies of the tiny run's catalog: objid, ra, dec."""
    return pd.read_csv(tiny_run / "results/demo/catalog/gz1_votes.csv").head(6)[["objid", "ra", "dec"]]


def test_a_folder_gets_one_row_per_image_and_only_galaxies_a_class(tiny_run, model, tmp_path):
    """Galaxies (rotated, resized, 16-bit, grey, palette), and what is not one: a corrupt file, a 1 px image, blank sky,
    a star, a trail, links that lead nowhere. Every image a row, its status saying what it is."""
    folder = tmp_path / "new"
    folder.mkdir()
    stored = sorted((SKY_DIR / "images").iterdir())
    for k, path in enumerate(stored[:5]):
        Image.open(path).rotate(30 * k).resize((200 + 10 * k, 200 + 10 * k)).save(folder / f"galaxy_{k}.jpg", quality=85)
    galaxy = np.asarray(Image.open(stored[5]).convert("RGB"))
    grey16 = (galaxy.mean(axis=-1) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "galaxy_16bit.png")  # mode I;16: read as 8 bits, not clipped at 255
    Image.fromarray(galaxy).convert("L").save(folder / "galaxy_grey.jpg")
    Image.fromarray(galaxy).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "galaxy_palette.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8not really a jpeg")
    Image.new("RGB", (1, 1), (200, 180, 150)).save(folder / "one_pixel.jpg")
    rng = np.random.default_rng(0)
    Image.fromarray(np.clip(rng.normal(12, 3, (120, 120, 3)), 0, 255).astype(np.uint8)).save(folder / "blank_sky.png")
    Image.fromarray(sky_cases.star(np.random.default_rng(3))).save(folder / "star.png")
    Image.fromarray(sky_cases.trail(np.random.default_rng(4))).save(folder / "trail.png")
    (folder / "dangling.jpg").symlink_to(tmp_path / "nothing.jpg")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    proc = predict(model, folder, "-o", tmp_path / "out.csv", "--threads", "2")
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False).set_index("source")
    expected = {f"galaxy_{k}.jpg": "classified" for k in range(5)} | {
        "galaxy_16bit.png": "classified",
        "galaxy_grey.jpg": "classified",
        "galaxy_palette.png": "classified",
        "corrupt.jpg": "unreadable",
        "one_pixel.jpg": "too_small",
        "blank_sky.png": "no_source",
        "star.png": "point_source",
        "trail.png": "artefact",
        "dangling.jpg": "unreadable",
        "loop.jpg": "unreadable",
    }
    assert out["status"].to_dict() == expected
    classified = out[out["status"] == "classified"]
    assert set(classified["predicted"]) <= CLASSES
    assert np.allclose(classified[PROBS].astype(float).sum(axis=1), 1, atol=1e-3)
    refused = out[out["status"] != "classified"]
    assert (refused["predicted"] == "").all() and (refused[PROBS] == "").all().all() and not refused["merger_candidate"].any()
    assert "16-bit image scaled to 8 bits" in out.loc["galaxy_16bit.png", "note"] and "grey image" in out.loc["galaxy_grey.jpg", "note"]
    assert out.loc["galaxy_palette.png", "note"] == "" and out.loc["galaxy_0.jpg", "note"] == ""
    assert "leads nowhere" in out.loc["dangling.jpg", "note"] and "smaller than 32 px" in out.loc["one_pixel.jpg", "note"]
    assert "not classified star.png (point_source)" in proc.stderr and "not classified corrupt.jpg (unreadable)" in proc.stderr
    assert "predicted 8 of 15 inputs" in proc.stderr


@pytest.mark.parametrize("make", ["text_named_jpg", "one_pixel_png"])
def test_a_folder_with_nothing_to_classify_names_each_file_and_says_so(model, tmp_path, make):
    folder = tmp_path / "nothing"
    folder.mkdir()
    if make == "text_named_jpg":
        (folder / "notes.jpg").write_text("not an image at all")
    else:
        Image.new("RGB", (1, 1)).save(folder / "tiny.png")
    proc = predict(model, folder, "-o", tmp_path / "out.csv", check=False)
    err = one_line_error(proc)
    assert "nothing to classify: none of the 1 inputs holds a galaxy" in err and "not classified" in err
    assert len(pd.read_csv(tmp_path / "out.csv")) == 1


@pytest.mark.parametrize("what", ["junk", "history"])
def test_a_file_that_is_not_a_model_gets_one_line(tiny_run, model, tmp_path, what):
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.open(sorted((SKY_DIR / "images").iterdir())[0]).save(folder / "g.jpg")
    bad = tiny_run / "results/demo/model/history.csv" if what == "history" else tmp_path / "junk.pt"
    if what == "junk":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert "is not a Night Sky Net model file" in one_line_error(predict(bad, folder, "-o", tmp_path / "x.csv", check=False))


def test_predict_refuses_to_write_over_its_input_catalog(model, galaxies, tmp_path):
    from astropy.table import Table

    for name in ("cat.csv", "cat.fits"):
        path = tmp_path / name
        galaxies.iloc[:2].to_csv(path, index=False) if name.endswith(".csv") else Table.from_pandas(galaxies.iloc[:2]).write(path)
        before = path.read_bytes()
        err = one_line_error(predict(model, path, "-o", path, "--cache-dir", tmp_path / "cache", check=False))
        assert "is the input catalog itself" in err and path.read_bytes() == before


def test_two_catalogs_reusing_objids_each_get_their_own_galaxies(model, galaxies, tmp_path):
    """Running ids 1, 2, 3 in two catalogs at other positions: each row is answered from its own position."""
    cache = tmp_path / "cache"
    first = galaxies.iloc[:3].assign(objid=[1, 2, 3])
    second = galaxies.iloc[3:].assign(objid=[1, 2, 3])
    first.to_csv(tmp_path / "first.csv", index=False)
    second.to_csv(tmp_path / "second.csv", index=False)
    predict(model, tmp_path / "first.csv", "-o", tmp_path / "first_out.csv", "--cache-dir", cache)
    predict(model, tmp_path / "second.csv", "-o", tmp_path / "second_out.csv", "--cache-dir", cache)  # same cache
    alone = galaxies.iloc[3:]
    alone.to_csv(tmp_path / "alone.csv", index=False)
    predict(model, tmp_path / "alone.csv", "-o", tmp_path / "alone_out.csv", "--cache-dir", tmp_path / "fresh_cache")
    second_out, alone_out = pd.read_csv(tmp_path / "second_out.csv"), pd.read_csv(tmp_path / "alone_out.csv")
    probs = ["p_elliptical", "p_face_on_spiral", "p_edge_on_spiral", "p_merger"]
    np.testing.assert_allclose(second_out[probs].to_numpy(), alone_out[probs].to_numpy())  # not the first catalog's galaxies
    assert second_out[["ra", "dec"]].to_numpy().tolist() == alone[["ra", "dec"]].to_numpy().tolist()
    assert not list(cache.glob(".incoming-*"))


def test_an_objid_at_two_positions_is_refused_with_its_lines_named(model, galaxies, tmp_path):
    rows = galaxies.iloc[:3].copy()
    rows.loc[2, "objid"] = rows.loc[0, "objid"]
    rows.to_csv(tmp_path / "dup.csv", index=False)
    proc = predict(model, tmp_path / "dup.csv", "-o", tmp_path / "out.csv", "--cache-dir", tmp_path / "cache", check=False)
    assert f"objid {rows.loc[0, 'objid']} appears at different positions (lines 2, 4)" in one_line_error(proc)
    assert not (tmp_path / "out.csv").exists()
    same = pd.concat([galaxies.iloc[:2], galaxies.iloc[:1]])  # the very same row twice is no ambiguity
    same.to_csv(tmp_path / "same.csv", index=False)
    predict(model, tmp_path / "same.csv", "-o", tmp_path / "same_out.csv", "--cache-dir", tmp_path / "cache")
    out = pd.read_csv(tmp_path / "same_out.csv", keep_default_na=False)
    assert out["status"].tolist() == ["classified", "classified", "duplicate"]  # one row per input row, classified once
    assert out.loc[2, "predicted"] == "" and "input row 1" in out.loc[2, "note"]


def test_a_catalog_predicts_from_any_working_directory(model, galaxies, tmp_path):
    galaxies.iloc[:2].to_csv(tmp_path / "catalog.csv", index=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    predict(model, "../catalog.csv", "-o", "out.csv", "--cache-dir", "cache", "--views", "1", cwd=elsewhere)
    out = pd.read_csv(elsewhere / "out.csv")
    assert out["source"].tolist() == galaxies["objid"].iloc[:2].tolist() and set(out["predicted"]) <= CLASSES
    assert (elsewhere / "cache").is_dir()


def test_predict_merges_a_partial_config_over_config_yaml(model, galaxies, tmp_path):
    galaxies.iloc[:2].to_csv(tmp_path / "catalog.csv", index=False)
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"scrape": {"cache_dir": str(tmp_path / "my_cache"), "concurrency": 2}}))
    predict(model, tmp_path / "catalog.csv", "-o", tmp_path / "out.csv", "--config", tmp_path / "mine.yaml")
    assert list((tmp_path / "my_cache").glob("*/*.jpg"))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"scrape": {"concurrency": 0}}))
    proc = predict(model, tmp_path / "catalog.csv", "-o", tmp_path / "out2.csv", "--config", tmp_path / "bad.yaml", check=False)
    assert "config key scrape.concurrency = 0: 0 is less than the minimum of 1" in one_line_error(proc)


@pytest.mark.parametrize(
    "rows, expected",
    [
        ({"objid": "587722981742084144", "ra": "abc", "dec": "10.0"}, "line 2, column ra: 'abc' is not an angle"),
        ({"objid": "not-an-id", "ra": "180.0", "dec": "10.0"}, "line 2, column objid: 'not-an-id' is not an integer"),
        ({"objid": "1", "ra": "180.0", "dec": "95"}, "line 2, column dec: 95 degrees is outside [-90, 90]"),
    ],
)
def test_a_bad_catalog_value_is_named_by_line_column_and_value(model, tmp_path, rows, expected):
    pd.DataFrame([rows]).to_csv(tmp_path / "bad.csv", index=False)
    proc = predict(model, tmp_path / "bad.csv", "-o", tmp_path / "out.csv", "--cache-dir", tmp_path / "cache", check=False)
    assert expected in one_line_error(proc)


def test_bad_paths_and_options_get_one_line(model, tmp_path):
    assert "does not exist" in one_line_error(predict(model, tmp_path / "nothing_here", "-o", tmp_path / "x.csv", check=False))
    (tmp_path / "folder").mkdir()
    Image.open(sorted((SKY_DIR / "images").iterdir())[0]).save(tmp_path / "folder" / "g.jpg")
    assert "is a folder; give the path of the table to write" in one_line_error(
        predict(model, tmp_path / "folder", "-o", tmp_path / "folder", check=False)
    )
    assert "0 is not a positive number" in one_line_error(
        predict(model, tmp_path / "folder", "-o", tmp_path / "x.csv", "--threads", "0", check=False)
    )
    png = tmp_path / "model.png"
    Image.new("RGB", (8, 8)).save(png)
    err = one_line_error(predict(png, tmp_path / "folder", "-o", tmp_path / "x.csv", check=False))
    assert "is not a Night Sky Net model file" in err and "weights_only" not in err


def test_a_catalog_off_the_footprint_gets_a_row_per_galaxy_saying_so(model, tmp_path):
    off = pd.DataFrame({"objid": [1, 2], "ra": [10.0, 11.0], "dec": [-60.0, -61.0]})  # off the demo footprint: 404
    off.to_csv(tmp_path / "off.csv", index=False)
    proc = predict(model, tmp_path / "off.csv", "-o", tmp_path / "out.csv", "--cache-dir", tmp_path / "cache", check=False)
    assert "nothing to classify: none of the 2 inputs holds a galaxy (missing 2)" in one_line_error(proc)
    assert "off the survey footprint" in proc.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["source"].tolist() == [1, 2] and out["status"].tolist() == ["missing", "missing"]
    assert not list((tmp_path / "cache").glob(".incoming-*"))


def test_snakemake_predict_reruns_when_an_image_of_its_folder_changes(tiny_run, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    images = sorted((SKY_DIR / "images").iterdir())
    for k in range(3):
        Image.open(images[k]).save(folder / f"g{k}.jpg")
    config = ["--configfile", "tiny.yaml", "--config", f"predict={{input: {folder}, views: 1}}"]
    snakemake(tiny_run, "predict", *config)
    before = pd.read_csv(tiny_run / "results/demo/predict/predictions.csv")
    assert "Nothing to be done" in snakemake(tiny_run, "-n", "predict", *config).stdout
    Image.open(images[10]).save(folder / "g1.jpg")  # overwritten in place: the folder's own mtime need not change
    snakemake(tiny_run, "predict", *config)
    after = pd.read_csv(tiny_run / "results/demo/predict/predictions.csv")
    assert not np.allclose(
        before.loc[1, "p_elliptical":"p_merger"].to_numpy(float), after.loc[1, "p_elliptical":"p_merger"].to_numpy(float)
    )
    assert "predict" in (tiny_run / "results/demo/logs/predict.log").read_text()


def test_catalogs_in_every_format_predict_alike_and_every_output_reads_back(model, galaxies, tmp_path):
    """CSV, FITS (RAJ2000/DEJ2000, objID), VOTable with sexagesimal positions and ECSV in; CSV, FITS, VOTable, ECSV out."""
    from astropy.coordinates import Angle
    from astropy.table import Table

    rows = galaxies.iloc[:3].reset_index(drop=True)
    assert (rows["objid"] > 2**53).all()  # SDSS objids: a float64 would change them
    cache = tmp_path / "cache"
    rows.to_csv(tmp_path / "decimal.csv", index=False)
    predict(model, tmp_path / "decimal.csv", "-o", tmp_path / "out.csv", "--cache-dir", cache)
    reference = pd.read_csv(tmp_path / "out.csv", dtype={"source": "int64"})
    assert reference["source"].tolist() == rows["objid"].tolist()

    Table({"objID": rows["objid"].to_numpy("int64"), "RAJ2000": rows["ra"], "DEJ2000": rows["dec"]}).write(tmp_path / "cat.fits")
    Table({"ident": rows["objid"].to_numpy("int64"), "alpha": rows["ra"], "delta": rows["dec"]}).write(tmp_path / "odd.fits")
    options = ["--id-column", "ident", "--ra-column", "alpha", "--dec-column", "delta"]
    predict(model, tmp_path / "odd.fits", "-o", tmp_path / "odd.csv", "--cache-dir", cache, *options)
    assert pd.read_csv(tmp_path / "odd.csv").equals(reference)
    sexagesimal = Table(
        {
            "objid": rows["objid"].to_numpy("int64"),
            "ra": [Angle(v, "deg").to_string(unit="hourangle", sep="hms", precision=4) for v in rows["ra"]],
            "dec": [Angle(v, "deg").to_string(unit="deg", sep="dms", precision=3, alwayssign=True) for v in rows["dec"]],
        }
    )
    sexagesimal.write(tmp_path / "cat.vot", format="votable")
    Table.from_pandas(rows).write(tmp_path / "cat.ecsv")
    for catalog, out in (("cat.fits", "out.fits"), ("cat.vot", "out.vot"), ("cat.ecsv", "out.ecsv"), ("decimal.csv", "out.xml")):
        predict(model, tmp_path / catalog, "-o", tmp_path / out, "--cache-dir", cache)
        table = Table.read(tmp_path / out)
        source = table["source"]
        assert (source.dtype.kind, source.dtype.itemsize) == ("i", 8) and source.tolist() == rows["objid"].tolist(), out
        back = {name: table[name].tolist() for name in table.colnames}
        probs = ["p_elliptical", "p_face_on_spiral", "p_edge_on_spiral", "p_merger"]
        np.testing.assert_allclose(np.array([back[c] for c in probs]).T, reference[probs].to_numpy(), atol=1e-5, err_msg=out)
        assert [str(v) for v in back["predicted"]] == reference["predicted"].tolist(), out
        assert [bool(v) for v in back["merger_candidate"]] == reference["merger_candidate"].tolist(), out
        tolerance = 1e-6 if catalog == "cat.vot" else 1e-9  # sexagesimal written to 1e-4 s of time: 4e-7 degrees
        np.testing.assert_allclose(back["ra"], rows["ra"], rtol=0, atol=tolerance)
        np.testing.assert_allclose(back["dec"], rows["dec"], rtol=0, atol=tolerance)
        assert str(table["ra"].unit) == "deg" and "calibrated probability" in table["p_merger"].description
    assert not list(tmp_path.glob(".out.*"))


def test_an_image_gets_the_same_answer_alone_or_among_many(model, tmp_path):
    """An image's answer depends only on that image: 5 alone (in this process), and the same 5 among 200 (four batches
    read and looked at in a worker process, and a progress bar)."""
    many, few = tmp_path / "many", tmp_path / "few"
    many.mkdir()
    few.mkdir()
    for k, path in enumerate(sorted((SKY_DIR / "images").iterdir())[:200]):
        (many / path.name).write_bytes(path.read_bytes())
        if k < 5:
            (few / path.name).write_bytes(path.read_bytes())
    predict(model, few, "-o", tmp_path / "few.csv", "--device", "cpu")
    slow = predict(model, many, "-o", tmp_path / "many.csv", "--device", "cpu")
    assert "classifying" in slow.stderr  # its progress bar
    small, large = pd.read_csv(tmp_path / "few.csv"), pd.read_csv(tmp_path / "many.csv")
    assert len(large) == 200 and large["source"].head(5).tolist() == small["source"].tolist()
    np.testing.assert_allclose(large[PROBS].head(5).to_numpy(), small[PROBS].to_numpy(), atol=1e-6)
    assert large["predicted"].head(5).tolist() == small["predicted"].tolist()


def test_representations_are_one_float32_row_per_classified_row_in_its_order(model, tmp_path):
    """--representations: the network's penultimate features of each classified row, in the table's order (a galaxy
    alone gets the row it got among the others); rows not classified (a star, blank sky) have none."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    stored = sorted((SKY_DIR / "images").iterdir())[:4]
    for path in stored:
        (folder / path.name).symlink_to(path)
    Image.fromarray(sky_cases.star(np.random.default_rng(3))).save(folder / "b_star.png")
    Image.fromarray(np.full((120, 120, 3), 12, np.uint8)).save(folder / "c_blank.png")
    predict(model, folder, "-o", tmp_path / "out.csv", "--representations", tmp_path / "rep.npy")
    table = pd.read_csv(tmp_path / "out.csv")
    reps = np.load(tmp_path / "rep.npy")
    classified = table[table["status"] == "classified"].reset_index(drop=True)
    assert len(classified) == 4 and set(table["status"]) == {"classified", "point_source", "no_source"}
    assert reps.dtype == np.float32 and reps.shape[0] == 4 and reps.shape[1] >= 16 and np.isfinite(reps).all()
    assert len({row.tobytes() for row in reps}) == 4  # four galaxies, four representations
    for k in (0, 3):
        alone = tmp_path / f"alone_{k}"
        alone.mkdir()
        (alone / classified["source"][k]).symlink_to(folder / classified["source"][k])
        predict(model, alone, "-o", alone / "out.csv", "--representations", alone / "rep.npy")
        np.testing.assert_allclose(np.load(alone / "rep.npy")[0], reps[k], atol=1e-5)


def test_a_representations_path_that_is_not_a_npy_gets_one_line(model, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "g.jpg").symlink_to(sorted((SKY_DIR / "images").iterdir())[0])
    proc = predict(model, folder, "-o", tmp_path / "out.csv", "--representations", tmp_path / "rep.csv", check=False)
    assert proc.returncode == 1 and "name the file .npy" in one_line_error(proc)
    assert not (tmp_path / "out.csv").exists()


def test_image_files_and_patterns_get_one_row_each_in_the_order_given(model, tmp_path):
    """``predict model.pt b.jpg a.png ...``: a row per file given, named as given, in that order; a file given twice is a
    duplicate; a quoted pattern is expanded (sorted); a folder among files, a pattern that matches nothing or a missing
    file stop the command in one line."""
    stored = sorted((SKY_DIR / "images").iterdir())
    (tmp_path / "more").mkdir()
    Image.open(stored[0]).save(tmp_path / "b.jpg")
    Image.open(stored[1]).save(tmp_path / "a.png")
    for k in range(3):
        (tmp_path / "more" / f"g{k}.jpg").write_bytes(stored[2 + k].read_bytes())
    given = [tmp_path / "b.jpg", tmp_path / "a.png", tmp_path / "b.jpg", str(tmp_path / "more" / "g*.jpg")]
    predict(model, *given, "-o", tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    pattern = [str(tmp_path / "more" / f"g{k}.jpg") for k in range(3)]
    assert out["source"].tolist() == [str(tmp_path / "b.jpg"), str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), *pattern]
    assert out["status"].tolist() == ["classified", "classified", "duplicate", "classified", "classified", "classified"]
    assert "input 1" in out.loc[2, "note"] and out.loc[2, "predicted"] == ""
    alone = pd.read_csv(predict_one(model, tmp_path / "more" / "g1.jpg", tmp_path / "one.csv"))
    np.testing.assert_allclose(alone[PROBS].to_numpy(), out.loc[[4], PROBS].astype(float).to_numpy(), atol=1e-6)
    errors = {
        "give it by itself": [tmp_path / "b.jpg", tmp_path / "more"],
        "no file matches": [str(tmp_path / "none*.jpg")],
        "does not exist": [tmp_path / "b.jpg", tmp_path / "missing.jpg"],
        "INPUT must be": [tmp_path / "b.jpg", tmp_path / "out.csv.txt"],
    }
    (tmp_path / "out.csv.txt").write_text("not an image")
    for message, args in errors.items():
        assert message in one_line_error(predict(model, *args, "-o", tmp_path / "x.csv", check=False)), message


def predict_one(model, image, out):
    predict(model, image, "-o", out)
    return out
