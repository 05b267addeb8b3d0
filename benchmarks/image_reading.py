"""Reading a user's image for predict, against read_image as it was, and what each way changes.

    .venv/bin/python benchmarks/image_reading.py                                   # after make demo
    .venv/bin/python benchmarks/image_reading.py --model results/demo/model/model.pt --images 1500

Every demo sky image (423 x 423 JPEG) is read to the model's cutout (120 x 120) three ways, in turns, one thread:

* before (the baseline): ``read_image`` as it was: decode, an array, the grey check as a reduction over each
  pixel's three channels (7.6 ms of a 423 px image), an image again, Lanczos;
* now: ``cutouts.read_image``: decode, the grey check on the channel planes, Lanczos: the same pixels;
* draft (measured, not used): libjpeg's reduced-size decoding (``Image.draft``: a half, a quarter or an eighth
  of the size, never below the cutout's), then Lanczos.

It prints milliseconds per image for each, and then, through the model (source check and classification as
``predict`` does), for each way against the baseline: the largest difference of any calibrated probability,
how many galaxies change their predicted class and how many change their status (galaxy or not).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nightskynet.core.architecture import model_geometry
from nightskynet.images.augment import crop
from nightskynet.images.cutouts import _as_rgb, read_image
from nightskynet.images.sources import inspect, psf_fwhm_px
from nightskynet.net.inference import VIEWS, Calibration, answer, open_engine

REPO = Path(__file__).resolve().parent.parent


def read_before(path: Path, size: int) -> np.ndarray:
    """The baseline, read_image as it was: decoded, made an array, checked for grey by a reduction over each pixel's
    channels, made an image again, resampled."""
    with Image.open(path) as im:
        im.load()
        rgb = np.asarray(_as_rgb(im)[0], dtype=np.uint8)
    int(np.ptp(rgb.astype(np.int16), axis=-1).max())  # the grey check as it was
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def read_now(path: Path, size: int) -> np.ndarray:
    return read_image(path, size)[0]


def read_draft(path: Path, size: int) -> np.ndarray:
    """libjpeg's reduced-size decoding, then Lanczos."""
    with Image.open(path) as im:
        im.draft(im.mode, (size, size))
        im.load()
        rgb = _as_rgb(im)[0]
    return np.asarray(rgb.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


READINGS = {"before": read_before, "now": read_now, "draft": read_draft}
LABELS = {
    "before": "`read_image` before: the grey check over each pixel's channels (baseline)",
    "now": "`read_image`: the grey check on the channel planes",
    "draft": "reduced-size decode (`Image.draft`), then Lanczos: not used",
}


def timed(read, paths: list[Path], size: int) -> tuple[list[np.ndarray], float]:
    t0 = time.perf_counter()
    images = [read(p, size) for p in paths]
    return images, (time.perf_counter() - t0) / len(paths)


def classify(images: list[np.ndarray], engine, saved: dict, geometry: dict, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(galaxy or not per image, (N, 4) probabilities, NaN where not a galaxy), as predict gives them."""
    psf = psf_fwhm_px(geometry)
    galaxy = np.array([inspect(image, psf).is_galaxy for image in images])
    probs = np.full((len(images), 4), np.nan)
    crops = np.stack([crop(image, crop_size) for image in images])
    for start in range(0, len(images), 64):
        rows = np.arange(start, min(start + 64, len(images)))
        rows = rows[galaxy[rows]]
        probs[rows] = answer(engine, crops[rows], Calibration.of(saved), VIEWS).probabilities
    return galaxy, probs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "results" / "demo" / "model" / "model.pt")
    p.add_argument("--sky-dir", type=Path, default=REPO / "resources" / "demo_sky")
    p.add_argument("--images", type=int, default=1500)
    p.add_argument("--rounds", type=int, default=3, help="timings of each reading, in turns; the median is printed")
    args = p.parse_args(argv)
    if not args.model.exists():
        p.error(f"{args.model} does not exist: run make demo first, or give --model")
    engine, saved = open_engine(args.model, "cpu", threads=2)
    geometry, crop_size = model_geometry(saved)
    size = geometry["size"]
    paths = sorted((args.sky_dir / "images").glob("*.jpeg"))[: args.images]
    times: dict[str, list[float]] = {name: [] for name in READINGS}
    images: dict[str, list[np.ndarray]] = {}
    for _ in range(args.rounds):
        for name, read in READINGS.items():
            images[name], seconds = timed(read, paths, size)
            times[name].append(seconds)
    with Image.open(paths[0]) as im:
        side = im.size
    print(f"{len(paths)} images of {side[0]} x {side[1]} px read to {size} x {size}, one thread, median of {args.rounds} rounds;")
    print("each way against the baseline through the model (the source check, then 8 views):")
    print(
        "\n| reading | ms per image | rounds | pixels: largest difference | status changes | largest probability difference "
        "| class changes |"
    )
    print("|---|---|---|---|---|---|---|")
    galaxy_0, probs_0 = classify(images["before"], engine, saved, geometry, crop_size)
    base = np.stack(images["before"]).astype(int)
    for name in READINGS:
        galaxy, probs = classify(images[name], engine, saved, geometry, crop_size)
        both = galaxy & galaxy_0
        diff = np.abs(probs[both] - probs_0[both]).max() if both.any() else 0.0
        changed = int((probs[both].argmax(1) != probs_0[both].argmax(1)).sum())
        pixels = int(np.abs(np.stack(images[name]).astype(int) - base).max())
        ms = 1000 * float(np.median(times[name]))
        rounds = ", ".join(f"{1000 * t:.2f}" for t in times[name])
        status = int((galaxy != galaxy_0).sum())
        print(f"| {LABELS[name]} | {ms:.2f} | {rounds} | {pixels} | {status} | {diff:.4f} | {changed} of {both.sum()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
