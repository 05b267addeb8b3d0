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

import numpy as np
import pandas as pd

from ..core.commands import File, Settings
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


def run(*, catalog: File, labels: File, labels_fits: File, summary: File, settings: Settings) -> pd.DataFrame:
    """Stage ``labels``: the query's ``catalog`` in, the ``labels`` table (CSV and FITS) and its ``summary`` out."""
    cfg = settings["labels"]
    votes = pd.read_csv(catalog, dtype={"objid": "int64"})
    targets = settings["train"]
    table, counts = make_labels(
        votes,
        cfg["threshold"],
        cfg["test_fraction"],
        cfg["val_fraction"],
        cfg["uncertain_max"],
        cfg["seed"],
        targets["targets"],
        targets.get("min_votes", 0),
    )
    if counts["confident"] == 0:
        raise InputError(
            f"no galaxy in {catalog} reaches labels.threshold = {cfg['threshold']}: nothing to train on; lower the "
            "threshold or query more galaxies"
        )
    write_csv_and_fits(labels, labels_fits, table)
    write_json_atomic(summary, counts)
    log.info(
        "%d catalog rows -> %d confident (>= %.3f), %d uncertain (%d kept), %d all don't-know",
        counts["catalog_rows"],
        counts["confident"],
        cfg["threshold"],
        counts["uncertain_total"],
        counts["uncertain_kept"],
        counts["undefined_all_dont_know"],
    )
    for split, by_class in counts["by_split"].items():
        log.info("%-9s %s", split, "  ".join(f"{c}={n}" for c, n in by_class.items()))
    return table
