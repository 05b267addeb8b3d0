"""The words every stage shares: the classes and their columns, colours and labels, the splits, the statuses of a
galaxy that gets no class, and the confidence test. Each is written here once.
"""

from __future__ import annotations

import numpy as np

# ---- the four morphology classes, in the order every array, column and model output uses
CLASS_NAMES: tuple[str, ...] = ("elliptical", "face_on_spiral", "edge_on_spiral", "merger")
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
MERGER: int = CLASS_INDEX["merger"]
CLASS_LABELS: dict[str, str] = {
    "elliptical": "elliptical",
    "face_on_spiral": "face-on spiral",
    "edge_on_spiral": "edge-on spiral",
    "merger": "merger",
}
CLASS_COLOURS: dict[str, str] = {"elliptical": "#d62728", "face_on_spiral": "#1f77b4", "edge_on_spiral": "#2ca02c", "merger": "#9467bd"}

# ---- columns: the network's calibrated probabilities and the volunteers' renormalised vote fractions
PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{name}" for name in CLASS_NAMES)
HUMAN_COLUMNS: tuple[str, ...] = tuple(f"human_{column}" for column in PROB_COLUMNS)

# ---- splits of the labels table (and of the catalog, where ``none`` is a galaxy no stage trained or tested on)
TRAINED_ON: tuple[str, ...] = ("train", "val")  # the network learnt from these (val: early stopping and calibration)
EVAL_SPLITS: tuple[str, ...] = ("val", "test", "uncertain")  # the splits with a shard of centre crops each
SPLITS: tuple[str, ...] = ("train", *EVAL_SPLITS)
CATALOG_SPLITS: tuple[str, ...] = (*SPLITS, "none")
NEVER_TRAINED_ON: tuple[str, ...] = ("test", "uncertain", "none")  # what the network is compared with the volunteers on

# ---- the status of every row of a catalog or prediction table: classified, or why not (and what that means)
CLASSIFIED = "classified"
STATUSES: dict[str, str] = {
    CLASSIFIED: "classified",
    "no_source": "no source at the centre of the image (blank sky or noise)",
    "point_source": "a point source at the centre (a star), not a galaxy",
    "artefact": "no source of its own at the centre: a trail, bleed or a bright star's halo or spike",
    "unreadable": "not a readable image",
    "too_small": "too small to hold a galaxy",
    "missing": "no cutout: off the survey's footprint",
    "rejected": "no cutout: the service refused the request",
    "failed": "no cutout: the download failed",
    "duplicate": "the same input as an earlier row",
}
NOT_A_GALAXY: tuple[str, ...] = ("no_source", "point_source", "artefact")  # what the source check refuses
NO_CUTOUT: tuple[str, ...] = ("missing", "rejected", "failed")  # the scrape's statuses of a galaxy without a cutout

# ---- confidence: a galaxy is confident when its largest renormalised vote fraction reaches the threshold
CONFIDENCE_TOLERANCE = 1e-9  # 19 of 20 votes is 0.95 exactly, but 0.9499999... in floating point


def is_confident(confidence, threshold: float):
    """Whether each ``confidence`` (a number or an array) reaches ``threshold``, within CONFIDENCE_TOLERANCE."""
    return np.asarray(confidence) >= threshold - CONFIDENCE_TOLERANCE
