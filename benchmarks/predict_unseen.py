"""Accuracy of ``nightskynet predict`` on galaxy images that are not in the demo sky.

Takes the demo sky's test-split galaxies (never trained on), makes new images of them that the
pipeline never saw (rotated by a non-right angle, resized to another size, re-encoded as JPEG
at another quality), writes them to a folder, runs the real predict command on it, and compares
the predictions with the galaxies' Galaxy Zoo 1 classes (from the bundled sample's labels).

    .venv/bin/python benchmarks/predict_unseen.py      # after `make demo` (needs results/)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SKY = REPO / "resources" / "demo_sky"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(REPO / "results/demo/model/model.pt"))
    p.add_argument("--labels", default=str(REPO / "results/demo/labels/labels.csv"))
    p.add_argument("--angle", type=float, default=37.0)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    sample = pd.read_csv(SKY / "labels.csv").set_index("objid_dr7")
    test = pd.read_csv(args.labels)
    test = test[test["split"] == "test"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "unseen"
        folder.mkdir()
        for objid in test["objid"]:
            img = Image.open(SKY / sample.at[objid, "filename"]).convert("RGB")
            img = img.rotate(args.angle + rng.uniform(-10, 10), resample=Image.Resampling.BICUBIC).resize(
                (args.size, args.size), Image.Resampling.LANCZOS
            )
            img.save(folder / f"{objid}.jpg", quality=int(rng.integers(70, 95)))
        out = Path(tmp) / "predictions.csv"
        subprocess.run([sys.executable, "-m", "nightskynet", "predict", args.model, str(folder), "-o", str(out)], check=True)
        pred = pd.read_csv(out)
    pred["objid"] = pred["source"].str.removesuffix(".jpg").astype("int64")
    pred["true"] = [sample.at[o, "class4"] for o in pred["objid"]]
    pred["label"] = pred["objid"].map(test.set_index("objid")["label"])
    print(f"{len(pred)} new images of test-split galaxies (rotated ~{args.angle:g} deg, {args.size} px, re-encoded)")
    print(f"accuracy against the Galaxy Zoo 1 class: {(pred['predicted'] == pred['true']).mean():.3f}")
    print(f"accuracy against the (simulated-vote) label the pipeline used: {(pred['predicted'] == pred['label']).mean():.3f}")
    print(
        "recall per class:",
        ", ".join(
            f"{c}={(pred.loc[pred['true'] == c, 'predicted'] == c).mean():.3f} (n={int((pred['true'] == c).sum())})"
            for c in ("elliptical", "face_on_spiral", "edge_on_spiral", "merger")
        ),
    )


if __name__ == "__main__":
    main()
