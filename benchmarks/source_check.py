"""What is at the centre: nightskynet.images.sources against the check it replaced, on galaxies and on things that are not.

    python benchmarks/source_check.py                      # 1,500 demo galaxies, 1,500 hard ones, 1,800 non-galaxies
    python benchmarks/source_check.py --per-case 50 --every 10 --montage wrong.png

Sets (``tests/sky_cases.py``, seeded): the demo sky's 1,500 galaxies as default cutouts; from every
``--every``-th of them, the same galaxy zoomed 3x to fill the frame, in a bright star's halo, and on a
sky gradient; ``--per-case`` of each thing that is not a galaxy (stars, double stars, trails, spikes,
bleeds, blank sky, gradient sky, noise, constant images). Each image goes through ``sources.inspect``
at the default cutout's seeing (1.4" at 0.40"/px) and through the baseline, the earlier check (a
source is 12 central-ninth pixels 5 sigma above the median of the outer frame, on the 60 px crop).
The table counts galaxies refused (goal 0) and non-galaxies classified (goal 0) by each, and the
time per image; ``--montage`` draws every wrong answer of the new check, labelled.

``--verdicts`` writes every image's verdict (case, what it is, status, rule) to a CSV, and
``--against`` compares this run's verdicts with such a file from another version of the check (the
same seed and sets), counting and drawing (``--disagreements``) every image the two call differently:

    python benchmarks/source_check.py --verdicts before.csv                 # on the earlier commit
    python benchmarks/source_check.py --against before.csv --disagreements changed.png
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from nightskynet.images import sources
from nightskynet.images.augment import crop

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import sky_cases  # noqa: E402  (the synthetic sky of the tests: stars, trails, hard galaxies)

PSF = sources.SEEING_ARCSEC / sky_cases.SCALE


def baseline_has_source(image: np.ndarray, sigma: float = 5.0) -> bool:
    """The check sources.inspect replaced: on the 60 px crop, >= 12 central-ninth pixels above the outer frame's median + max(5 MAD, 8)."""
    grey = crop(image, 60).astype(np.float32).mean(axis=-1)
    h, w = grey.shape
    border = np.concatenate([grey[: h // 6].ravel(), grey[-h // 6 :].ravel(), grey[:, : w // 6].ravel(), grey[:, -w // 6 :].ravel()])
    sky = np.median(border)
    noise = 1.4826 * np.median(np.abs(border - sky))
    centre = grey[h // 3 : h - h // 3, w // 3 : w - w // 3]
    return int((centre > sky + max(sigma * noise, 8.0)).sum()) >= 12


def build_sets(sky_dir: Path, per_case: int, every: int, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """(images, case of each, what each is: 'galaxy' or the case name)."""
    rng = np.random.default_rng(seed)
    labels = pd.read_csv(sky_dir / "labels.csv")
    images, cases = [], []
    for i, name in enumerate(labels["filename"]):
        with Image.open(sky_dir / name) as stored:
            stored.load()
            images.append(sky_cases.cutout(stored))
            cases.append("galaxy")
            if i % every == 0:
                for case, make in sky_cases.HARD_GALAXIES.items():
                    images.append(make(stored, rng))
                    cases.append(f"galaxy, {case.replace('_', ' ')}")
    for case, make in sky_cases.NOT_GALAXIES.items():
        for _ in range(per_case):
            images.append(make(rng))
            cases.append(case)
    return np.stack(images), cases, ["galaxy" if c.startswith("galaxy") else c for c in cases]


def _inspect(images: np.ndarray) -> tuple[list[sources.Verdict], list[bool], float, float]:
    t0 = time.perf_counter()
    new = [sources.inspect(image, PSF) for image in images]
    t1 = time.perf_counter()
    old = [baseline_has_source(image) for image in images]
    return new, old, t1 - t0, time.perf_counter() - t1


def run_all(images: np.ndarray, workers: int) -> tuple[list[str], list[str], list[bool], float, float]:
    parts = np.array_split(np.arange(len(images)), max(1, workers) * 8)
    new, rules, old, t_new, t_old = [], [], [], 0.0, 0.0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for n, o, a, b in pool.map(_inspect, [images[p] for p in parts]):
            new += [v.status for v in n]
            rules += [v.rule for v in n]
            old += o
            t_new += a
            t_old += b
    return new, rules, old, t_new, t_old


def table(cases: list[str], truth: list[str], new: list[str], old: list[bool]) -> pd.DataFrame:
    rows = []
    for case in dict.fromkeys(cases):
        idx = [i for i, c in enumerate(cases) if c == case]
        is_galaxy = truth[idx[0]] == "galaxy"
        statuses = pd.Series([new[i] for i in idx]).value_counts()
        wrong_new = sum((new[i] != "galaxy") if is_galaxy else (new[i] == "galaxy") for i in idx)
        wrong_old = sum((not old[i]) if is_galaxy else old[i] for i in idx)
        rows.append(
            {
                "case": case,
                "images": len(idx),
                "wrong (new)": wrong_new,
                "wrong (baseline)": wrong_old,
                **{s: int(statuses.get(s, 0)) for s in sources.STATUSES},
            }
        )
    return pd.DataFrame(rows)


def montage(images: np.ndarray, cases: list[str], truth: list[str], new: list[str], rules: list[str], path: Path) -> int:
    """Draw every image the check gets wrong, labelled (case, verdict, rule); the number drawn."""
    wrong = [i for i in range(len(images)) if (new[i] != "galaxy") == (truth[i] == "galaxy")]
    draw_tiles(images[wrong], [(cases[i], f"-> {new[i]}", rules[i]) for i in wrong], path)
    return len(wrong)


def draw_tiles(images: np.ndarray, captions: list[tuple[str, str, str]], path: Path, per_row: int = 8) -> None:
    """The images side by side, 200 px each, with three lines of caption on each."""
    if not len(images):
        return
    tiles = []
    for image, (first, second, third) in zip(images, captions, strict=True):
        tile = Image.fromarray(image).resize((200, 200), Image.Resampling.NEAREST)
        draw = ImageDraw.Draw(tile)
        draw.rectangle((0, 0, 200, 36), fill=(0, 0, 0))
        draw.text((3, 1), first[:32], fill=(255, 255, 0))
        draw.text((3, 12), second[:34], fill=(255, 120, 120))
        draw.text((3, 23), third[:34], fill=(200, 200, 200))
        tiles.append(np.asarray(tile))
    while len(tiles) % per_row:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[k : k + per_row], axis=1) for k in range(0, len(tiles), per_row)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sky-dir", type=Path, default=REPO / "resources" / "demo_sky")
    p.add_argument("--per-case", type=int, default=200, help="images of each thing that is not a galaxy")
    p.add_argument("--every", type=int, default=3, help="hard variants of every k-th demo galaxy")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--montage", type=Path, default=None, help="PNG of every image the new check gets wrong")
    p.add_argument("--verdicts", type=Path, default=None, help="CSV of every image's verdict")
    p.add_argument("--against", type=Path, default=None, help="a --verdicts CSV of another version to compare with")
    p.add_argument("--disagreements", type=Path, default=None, help="PNG of every image --against calls differently")
    args = p.parse_args(argv)
    images, cases, truth = build_sets(args.sky_dir, args.per_case, args.every, args.seed)
    new, rules, old, t_new, t_old = run_all(images, args.workers)
    result = table(cases, truth, new, old)
    print(result.to_markdown(index=False))
    galaxies = result[result["case"].str.startswith("galaxy")]
    others = result[~result["case"].str.startswith("galaxy")]
    refused, classified = galaxies["wrong (new)"].sum(), others["wrong (new)"].sum()
    print(f"\ngalaxies refused: {refused} of {galaxies['images'].sum()} (baseline {galaxies['wrong (baseline)'].sum()})")
    print(f"non-galaxies classified: {classified} of {others['images'].sum()} (baseline {others['wrong (baseline)'].sum()})")
    print(f"time per image, one core: {1000 * t_new / len(images):.2f} ms (baseline {1000 * t_old / len(images):.2f} ms)")
    if args.montage:
        print(f"{montage(images, cases, truth, new, rules, args.montage)} wrong answers drawn in {args.montage}")
    verdicts = pd.DataFrame({"case": cases, "truth": truth, "status": new, "rule": rules})
    if args.verdicts:
        verdicts.to_csv(args.verdicts, index_label="image")
    if args.against:
        compare(images, verdicts, pd.read_csv(args.against, index_col="image", keep_default_na=False), args.disagreements)
    return 0


def compare(images: np.ndarray, now: pd.DataFrame, before: pd.DataFrame, path: Path | None) -> None:
    """Count (and draw, to ``path``) the images this run calls differently from ``before``."""
    if list(before["case"]) != list(now["case"]):
        raise SystemExit("--against: that file holds other sets (another --seed, --per-case or --every)")
    changed = np.flatnonzero(before["status"].to_numpy() != now["status"].to_numpy())
    better = sum((now.at[i, "status"] == "galaxy") == (now.at[i, "truth"] == "galaxy") for i in changed)
    print(f"\nagainst {len(before)} earlier verdicts: {len(changed)} differ ({better} now right, {len(changed) - better} now wrong)")
    for i in changed:
        print(f"  image {i} ({now.at[i, 'case']}): {before.at[i, 'status']} -> {now.at[i, 'status']} ({now.at[i, 'rule']})")
    if path is not None and len(changed):
        captions = [(now.at[i, "case"], f"{before.at[i, 'status']} -> {now.at[i, 'status']}", now.at[i, "rule"]) for i in changed]
        draw_tiles(images[changed], captions, path)
        print(f"drawn in {path}")


if __name__ == "__main__":
    sys.exit(main())
