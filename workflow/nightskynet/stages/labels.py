"""Stage ``labels``: the 95% cut and the train / val / test / uncertain split.

Galaxy Zoo 1 votes -> four classes: elliptical (p_el), face-on spiral (p_cw + p_acw), edge-on
spiral (p_edge), merger (p_mg). Don't-know (p_dk) and the combined-spiral column (p_cs, a sum of
others) are dropped; the four are renormalised to sum 1. A galaxy is *confident* when its largest
renormalised probability is >= the threshold (0.95 by default; compared with a 1e-9 tolerance so
that a fraction that is exactly 0.95 on paper is kept despite floating-point rounding). Galaxies
with no votes outside don't-know cannot be renormalised and are dropped.

Confident galaxies are split by galaxy, stratified by class, seeded: ``test_fraction`` to test,
then ``val_fraction`` of the remainder to val (for early stopping and calibration), the rest to
train. A seeded sample of the uncertain galaxies (max < threshold) is kept as ``uncertain``, to
compare the network's probabilities with the human vote fractions; it is never trained on.

With ``train.targets: votes`` the network learns the vote fractions themselves, so the uncertain
galaxies are split like the confident ones: a seeded ``test_fraction`` of them (at most
``uncertain_max``) is held out as ``uncertain``, and of the rest, those with at least
``train.min_votes`` votes go ``val_fraction`` to val and the others to train, stratified by their
top class. The test split stays confident galaxies only, scored against their (unambiguous) class.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..core.files import write_json_atomic
from ..core.tables import write_csv_and_fits
from ..core.vocabulary import CLASS_NAMES, PROB_COLUMNS, SPLITS, TRAINED_ON, is_confident
from ..sky.votes import class_probabilities

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("objid", "ra", "dec", "petroR90_r", "nvote", *PROB_COLUMNS, "label", "confidence", "split", "votes")


def stratified_split(labels: pd.Series, test_fraction: float, val_fraction: float, rng: np.random.Generator) -> pd.Series:
    """Assign each row to train / val / test, per class, in seeded random order."""
    split = pd.Series("train", index=labels.index, dtype=object)
    for name in CLASS_NAMES:
        idx = labels.index[labels == name].to_numpy()
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round((len(idx) - n_test) * val_fraction))
        split.loc[idx[:n_test]] = "test"
        split.loc[idx[n_test : n_test + n_val]] = "val"
    return split


def make_labels(
    catalog: pd.DataFrame,
    threshold: float,
    test_fraction: float,
    val_fraction: float,
    uncertain_max: int,
    seed: int,
    targets: str = "hard",
    min_votes: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """The labelled table (one row per galaxy kept) and a summary of counts."""
    probs = class_probabilities(catalog)
    table = pd.concat([catalog[["objid", "ra", "dec", "petroR90_r", "nvote"]], probs], axis=1)
    table["votes"] = catalog["votes"] if "votes" in catalog else "galaxy_zoo_1"
    defined = table["label"].notna()
    confident = is_confident(table["confidence"], threshold)
    rng = np.random.default_rng(seed)

    conf = table[confident].copy()
    conf["split"] = stratified_split(conf["label"], test_fraction, val_fraction, rng)

    unc = table[defined & ~confident]
    # the held-out sample for the comparison with the votes: with votes as targets, the test share
    # of them (the rest is trained on), else every one; at most uncertain_max
    n_unc = int(round(len(unc) * test_fraction)) if targets == "votes" else len(unc)
    n_unc = min(uncertain_max, n_unc) if uncertain_max >= 0 else n_unc
    held = np.zeros(len(unc), dtype=bool)
    held[rng.choice(len(unc), size=n_unc, replace=False)] = True
    parts = [conf, unc[held].assign(split="uncertain")]
    if targets == "votes":
        extra = unc[~held & (unc["nvote"].to_numpy() >= min_votes)].copy()
        extra["split"] = stratified_split(extra["label"], 0.0, val_fraction, rng)
        parts.append(extra)

    out = pd.concat(parts).sort_values("objid").reset_index(drop=True)[list(LABEL_COLUMNS)]
    summary = {
        "threshold": threshold,
        "catalog_rows": int(len(catalog)),
        "undefined_all_dont_know": int((~defined).sum()),
        "confident": int(confident.sum()),
        "uncertain_total": int((defined & ~confident).sum()),
        "uncertain_kept": int(n_unc),
        "targets": targets,
        "uncertain_trained_on": int(
            (out["split"].isin(TRAINED_ON) & out["confidence"].notna() & ~is_confident(out["confidence"], threshold)).sum()
        ),
        "confident_by_class": {c: int((conf["label"] == c).sum()) for c in CLASS_NAMES},
        "by_split": {s: {c: int(((out["split"] == s) & (out["label"] == c)).sum()) for c in CLASS_NAMES} for s in SPLITS},
    }
    return out, summary


def run(*, catalog_csv: str | Path, out_csv: str | Path, summary_json: str | Path, settings: dict) -> pd.DataFrame:
    cfg = settings["labels"]
    catalog = pd.read_csv(catalog_csv, dtype={"objid": "int64"})
    targets = settings["train"]
    labels, summary = make_labels(
        catalog,
        cfg["threshold"],
        cfg["test_fraction"],
        cfg["val_fraction"],
        cfg["uncertain_max"],
        cfg["seed"],
        targets["targets"],
        targets.get("min_votes", 0),
    )
    if summary["confident"] == 0:
        raise InputError(
            f"no galaxy in {catalog_csv} reaches labels.threshold = {cfg['threshold']}: nothing to train on; lower the "
            "threshold or query more galaxies"
        )
    write_csv_and_fits(out_csv, labels)
    write_json_atomic(summary_json, summary)
    log.info(
        "%d catalog rows -> %d confident (>= %.3f), %d uncertain (%d kept), %d all don't-know",
        summary["catalog_rows"],
        summary["confident"],
        cfg["threshold"],
        summary["uncertain_total"],
        summary["uncertain_kept"],
        summary["undefined_all_dont_know"],
    )
    for split, counts in summary["by_split"].items():
        log.info("%-9s %s", split, "  ".join(f"{c}={n}" for c, n in counts.items()))
    return labels
