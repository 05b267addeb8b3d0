"""The demo sky: 1,500 real Galaxy Zoo 1 galaxies with SIMULATED votes and sky positions.

The bundled sample (``resources/demo_sky``, from SDSS imagery and Galaxy Zoo 1 classifications)
holds real images and one hard class per galaxy, but no vote fractions and no coordinates.
This module makes them up, reproducibly from a seed, so that the demo SkyServer can answer the
query stage's SQL the way the real ``zooSpec`` / ``zooNoSpec`` tables would:

* votes: each galaxy gets ``nvote`` volunteers (20-70). Each volunteer picks the galaxy's true
  answer with a per-galaxy "clarity" probability, otherwise an answer drawn from a realistic
  confusion row (ellipticals mistaken for mergers or don't-know, spirals for each other, ...).
  Vote fractions are counts / nvote, rounded to 3 decimals as in the Galaxy Zoo 1 tables.
* positions: uniform over a patch of the SDSS Legacy footprint, at least 2 arcmin apart.
* petroR90_r: each stored image is taken to span 48" (DESIGN.md), and Galaxy Zoo 1 sized its
  images as 423 px x 0.024 x petroR90_r, so every demo galaxy has petroR90_r = 48 / (423 x 0.024).

Every table, figure and report that shows these votes says "simulated votes".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DemoSkyError

# Geometry of the stored images (DESIGN.md, "The demo sky").
STORED_SIZE_PX = 423
STORED_SPAN_ARCSEC = 120 * 0.40
NATIVE_SCALE = STORED_SPAN_ARCSEC / STORED_SIZE_PX  # arcsec per stored pixel
PETRO_R90_R = STORED_SPAN_ARCSEC / (STORED_SIZE_PX * 0.024)

# The patch of sky the demo galaxies are scattered over (inside the SDSS Legacy north footprint).
FOOTPRINT_RA = (150.0, 230.0)
FOOTPRINT_DEC = (5.0, 55.0)

VOTE_OPTIONS = ("el", "cw", "acw", "edge", "dk", "mg")
GZ1_CODE_TO_OPTION = {0: "el", 1: "cw", 2: "acw", 3: "edge", 4: "dk", 5: "mg"}

# Where a volunteer's vote goes when it is not the galaxy's true answer (rows sum to 1).
CONFUSION = {
    "el": {"cw": 0.08, "acw": 0.08, "edge": 0.14, "dk": 0.40, "mg": 0.30},
    "cw": {"el": 0.20, "acw": 0.30, "edge": 0.15, "dk": 0.25, "mg": 0.10},
    "acw": {"el": 0.20, "cw": 0.30, "edge": 0.15, "dk": 0.25, "mg": 0.10},
    "edge": {"el": 0.40, "cw": 0.08, "acw": 0.08, "dk": 0.24, "mg": 0.20},
    "mg": {"el": 0.40, "cw": 0.08, "acw": 0.08, "edge": 0.14, "dk": 0.30},
}
# Per-galaxy clarity ~ Beta(a, b): how often a volunteer gives the true answer.
CLARITY_BETA = {"el": (16.0, 0.8), "cw": (16.0, 0.8), "acw": (16.0, 0.8), "edge": (14.0, 0.8), "mg": (9.0, 1.2)}

ZOO_COLUMNS = ("objid", "dr7objid", "ra", "dec", "nvote", "p_el", "p_cw", "p_acw", "p_edge", "p_dk", "p_mg", "p_cs")
TABLES = ("zooSpec", "zooNoSpec")


@dataclass(frozen=True)
class DemoSky:
    """The simulated catalog and where each galaxy's stored image lies."""

    catalog: pd.DataFrame  # one row per galaxy: ZOO_COLUMNS + petroR90_r, table, class4, image
    sky_dir: Path

    def table(self, name: str) -> pd.DataFrame:
        return self.catalog[self.catalog["table"] == name]


def load_sample(sky_dir: str | Path) -> pd.DataFrame:
    """Read the bundled sample's labels.csv and check that every image it names exists."""
    sky_dir = Path(sky_dir)
    labels_path = sky_dir / "labels.csv"
    if not labels_path.is_file():
        raise DemoSkyError(f"demo sky: {labels_path} not found (set demo.sky_dir to the folder holding labels.csv and images/)")
    sample = pd.read_csv(labels_path, dtype={"objid_dr7": "int64"})
    needed = {"objid_dr7", "gz1_class6_code", "class4", "filename"}
    missing = needed - set(sample.columns)
    if missing:
        raise DemoSkyError(f"demo sky: {labels_path} lacks columns {sorted(missing)}")
    absent = [f for f in sample["filename"] if not (sky_dir / f).is_file()]
    if absent:
        raise DemoSkyError(f"demo sky: {len(absent)} images named in labels.csv are missing, e.g. {sky_dir / absent[0]}")
    return sample


def simulate_votes(codes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (nvote, fractions[n, 6]) for galaxies whose true Galaxy Zoo 1 answers are ``codes``."""
    n = len(codes)
    nvote = np.clip(np.round(rng.lognormal(np.log(38.0), 0.3, n)), 20, 70).astype(np.int64)
    fractions = np.zeros((n, len(VOTE_OPTIONS)))
    for i, code in enumerate(codes):
        truth = GZ1_CODE_TO_OPTION[int(code)]
        a, b = CLARITY_BETA[truth]
        clarity = rng.beta(a, b)
        p = np.array([CONFUSION[truth].get(opt, 0.0) for opt in VOTE_OPTIONS]) * (1.0 - clarity)
        p[VOTE_OPTIONS.index(truth)] = clarity
        counts = rng.multinomial(nvote[i], p / p.sum())
        fractions[i] = counts / nvote[i]
    return nvote, fractions


def simulate_positions(n: int, rng: np.random.Generator, min_sep_deg: float = 2.0 / 60) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions (per unit area) in the demo footprint, at least ``min_sep_deg`` apart."""
    ra_lo, ra_hi = FOOTPRINT_RA
    sin_lo, sin_hi = np.sin(np.radians(FOOTPRINT_DEC))
    ras: list[float] = []
    decs: list[float] = []
    vecs = np.empty((0, 3))
    cos_min = np.cos(np.radians(min_sep_deg))
    while len(ras) < n:
        ra = rng.uniform(ra_lo, ra_hi)
        dec = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi)))
        v = unit_vector(np.array([ra]), np.array([dec]))
        if len(vecs) and np.max(vecs @ v[0]) > cos_min:
            continue
        vecs = np.vstack([vecs, v])
        ras.append(ra)
        decs.append(dec)
    return np.array(ras), np.array(decs)


def unit_vector(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def build_demo_sky(sky_dir: str | Path, seed: int = 1) -> DemoSky:
    """Simulate the demo sky's catalog from the bundled sample, reproducibly from ``seed``."""
    sample = load_sample(sky_dir).sort_values("objid_dr7").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    nvote, fractions = simulate_votes(sample["gz1_class6_code"].to_numpy(), rng)
    ra, dec = simulate_positions(len(sample), rng)
    table = np.where(rng.random(len(sample)) < 0.8, TABLES[0], TABLES[1])
    fr = np.round(fractions, 3)
    catalog = pd.DataFrame(
        {
            "objid": sample["objid_dr7"].to_numpy(),
            "dr7objid": sample["objid_dr7"].to_numpy(),
            "ra": np.round(ra, 6),
            "dec": np.round(dec, 6),
            "nvote": nvote,
            **{f"p_{opt}": fr[:, k] for k, opt in enumerate(VOTE_OPTIONS)},
        }
    )
    catalog["p_cs"] = np.round(np.minimum(1.0, catalog["p_cw"] + catalog["p_acw"] + catalog["p_edge"]), 3)
    catalog["petroR90_r"] = round(PETRO_R90_R, 4)
    catalog["table"] = table
    catalog["class4"] = sample["class4"].to_numpy()
    catalog["image"] = sample["filename"].to_numpy()
    return DemoSky(catalog=catalog, sky_dir=Path(sky_dir))
