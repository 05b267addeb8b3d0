"""The read -> look -> classify loop (``net.looking``): worker processes give what one thread gives, in order, and a
worker's error reaches the caller."""

import numpy as np
import pytest
import sky_cases
from conftest import SKY_DIR
from PIL import Image

from nightskynet.images.sources import SEEING_ARCSEC
from nightskynet.net.inference import Calibration, open_engine
from nightskynet.net.looking import Cutout, classify_cutouts, default_workers

PSF = SEEING_ARCSEC / 0.4


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A mix a user could give: demo galaxies as files and as JPEG bytes, a star, blank sky, a corrupt file, a 5 px image."""
    folder = tmp_path_factory.mktemp("looking")
    rng = np.random.default_rng(3)
    cutouts = []
    for i, path in enumerate(sorted((SKY_DIR / "images").glob("*.jpeg"))[:40]):
        cutouts.append(Cutout(path.read_bytes() if i % 2 else path, PSF))
    for name, image in (("star", sky_cases.NOT_GALAXIES["star"](rng)), ("blank", sky_cases.NOT_GALAXIES["blank"](rng))):
        Image.fromarray(image).save(folder / f"{name}.png")
        cutouts.append(Cutout(folder / f"{name}.png", PSF))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    Image.new("RGB", (5, 5)).save(folder / "tiny.png")
    cutouts += [Cutout(folder / "corrupt.jpg", PSF), Cutout(folder / "tiny.png", PSF)]
    return [cutouts[i::3] for i in range(3)]  # three batches, the odd cases spread over them


def run(model, batches, workers, views=8):
    engine, info = open_engine(model, "cpu", threads=1)
    numbered = [(k, batch) for k, batch in enumerate(batches)]
    return list(classify_cutouts(engine, Calibration.of(info), numbered, 120, 60, views, workers))


def test_worker_processes_give_what_one_thread_gives_batch_for_batch(tiny_run, inputs):
    model = tiny_run / "results/demo/model/model.pt"
    threaded, pooled = run(model, inputs, workers=0), run(model, inputs, workers=2)
    assert [meta for meta, _, _ in pooled] == [0, 1, 2]
    statuses = [s for _, looked, _ in pooled for s in looked.status]
    assert {"classified", "point_source", "no_source", "unreadable", "too_small"} <= set(statuses)
    for (_, a, answers_a), (_, b, answers_b) in zip(threaded, pooled, strict=True):
        assert a.status == b.status and a.notes == b.notes
        np.testing.assert_array_equal(a.crops, b.crops)
        np.testing.assert_array_equal(answers_a.probabilities, answers_b.probabilities)
        assert len(answers_a.probabilities) == a.classified.sum()


def test_fewer_views_are_the_first_d4_elements(tiny_run, inputs):
    model = tiny_run / "results/demo/model/model.pt"
    one = run(model, inputs[:1], workers=0, views=1)[0][2].probabilities
    eight = run(model, inputs[:1], workers=0, views=8)[0][2].probabilities
    assert one.shape == eight.shape and not np.allclose(one, eight)
    np.testing.assert_allclose(one.sum(axis=1), 1.0, atol=1e-9)


def test_a_workers_error_reaches_the_caller(tiny_run, inputs):
    model = tiny_run / "results/demo/model/model.pt"
    broken = [inputs[0], [Cutout(b"", float("nan")), *inputs[1]]]  # empty bytes: not an image PIL can open
    with pytest.raises(Exception):
        run(model, broken, workers=1)


def test_no_process_is_started_for_a_handful_of_inputs():
    assert default_workers(threads=2, inputs=5, batch=64) == 0
    assert default_workers(threads=2, inputs=10_000, batch=64) == 1
    assert default_workers(threads=1, inputs=10_000, batch=64) == 1
