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

A larger sky for measuring the pipeline at the study's scale (``demo.scale_to: N``, ``build_demo_sky(...,
scale_to=N)``): the 1,500 galaxies as above, then N - 1,500 COPIES of their images under made-up
objids (``COPY_OBJID_BASE + j``, far above any SDSS objid), each copy with its own simulated votes
and a made-up position on a jittered grid of the same footprint (still >= 2 arcmin from any other
galaxy), all deterministic from the seed. The copies repeat the same 1,500 images, so a model's
accuracy on such a sky means nothing (the same image sits in train and test): it measures cost, not quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import DemoSkyError

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
COPY_OBJID_BASE = 9_000_000_000_000_000_000  # objids of the scaled sky's copies: COPY_OBJID_BASE + j (int64 holds up to 9.22e18)
MIN_SEPARATION_DEG = 2.0 / 60  # no two demo galaxies closer than this: a default cutout (48") never shows a neighbour


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
    nvote = draw_nvote(n, rng)
    fractions = np.zeros((n, len(VOTE_OPTIONS)))
    for i, code in enumerate(codes):
        truth = GZ1_CODE_TO_OPTION[int(code)]
        a, b = CLARITY_BETA[truth]
        counts = rng.multinomial(nvote[i], answer_probabilities(truth, np.array([rng.beta(a, b)]))[0])
        fractions[i] = counts / nvote[i]
    return nvote, fractions


def draw_nvote(n: int, rng: np.random.Generator) -> np.ndarray:
    """Volunteers per galaxy: 20 to 70, around 38."""
    return np.clip(np.round(rng.lognormal(np.log(38.0), 0.3, n)), 20, 70).astype(np.int64)


def answer_probabilities(truth: str, clarity: np.ndarray) -> np.ndarray:
    """(len(clarity), 6): how a volunteer answers a galaxy whose true answer is ``truth``, for each clarity."""
    p = np.array([CONFUSION[truth].get(opt, 0.0) for opt in VOTE_OPTIONS])[None, :] * (1.0 - clarity[:, None])
    p[:, VOTE_OPTIONS.index(truth)] = clarity
    return p / p.sum(axis=1, keepdims=True)


def simulate_votes_vectorised(codes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same model of the volunteers as ``simulate_votes``, drawn class by class in arrays (for millions of galaxies)."""
    n = len(codes)
    nvote = draw_nvote(n, rng)
    fractions = np.zeros((n, len(VOTE_OPTIONS)))
    for code, truth in GZ1_CODE_TO_OPTION.items():
        rows = np.flatnonzero(codes == code)
        if not len(rows):
            continue
        counts = rng.multinomial(nvote[rows], answer_probabilities(truth, rng.beta(*CLARITY_BETA[truth], size=len(rows))))
        fractions[rows] = counts / nvote[rows, None]
    return nvote, fractions


def simulate_positions(n: int, rng: np.random.Generator, min_sep_deg: float = MIN_SEPARATION_DEG) -> tuple[np.ndarray, np.ndarray]:
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


def grid_positions(n: int, avoid_ra: np.ndarray, avoid_dec: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions in the demo footprint, one per cell of a grid of ~square cells, jittered
    inside a margin of half the minimum separation (so any two are >= MIN_SEPARATION_DEG apart),
    none within MIN_SEPARATION_DEG of (avoid_ra, avoid_dec); cells chosen at random. O(n), in arrays."""
    margin = MIN_SEPARATION_DEG / 2
    ra_lo, ra_hi = FOOTPRINT_RA
    dec_lo, dec_hi = FOOTPRINT_DEC
    area = (ra_hi - ra_lo) * np.degrees(np.sin(np.radians(dec_hi)) - np.sin(np.radians(dec_lo)))  # square degrees
    side = max(np.sqrt(0.85 * area / max(n + len(avoid_ra), 1)), 1.25 * MIN_SEPARATION_DEG)  # some cells spare for the avoided
    rows = np.arange(int((dec_hi - dec_lo) // side))
    row_lo = dec_lo + rows * side
    # cells of a row are `side` wide on the sky where it is narrowest (the row's edge farthest from the equator)
    cos_narrow = np.cos(np.radians(np.maximum(np.abs(row_lo), np.abs(row_lo + side))))
    ra_step = side / cos_narrow
    per_row = ((ra_hi - ra_lo) // ra_step).astype(np.int64)
    cell_row = np.repeat(rows, per_row)
    cell_col = np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    cell_ra = ra_lo + cell_col * ra_step[cell_row]
    cell_dec = row_lo[cell_row]
    ra = cell_ra + (margin + rng.random(len(cell_ra)) * (side - 2 * margin)) / cos_narrow[cell_row]
    dec = cell_dec + margin + rng.random(len(cell_ra)) * (side - 2 * margin)
    clear = np.ones(len(ra), dtype=bool)
    if len(avoid_ra):
        index = SkyIndex(ra, dec)
        for a_ra, a_dec in zip(avoid_ra, avoid_dec, strict=True):
            clear[index.within(a_ra, a_dec, MIN_SEPARATION_DEG)] = False
    free = np.flatnonzero(clear)
    if len(free) < n:
        raise DemoSkyError(
            f"demo.scale_to: the demo footprint holds at most {len(free) + len(avoid_ra):,} galaxies 2 arcmin apart, "
            f"not {n + len(avoid_ra):,}"
        )
    chosen = np.sort(rng.choice(free, size=n, replace=False))
    return np.round(ra[chosen], 6), np.round(dec[chosen], 6)


class SkyIndex:
    """Positions bucketed by 0.5-degree cells of (dec, ra): the galaxies near a point without looking at all of them."""

    CELL_DEG = 0.5

    def __init__(self, ra_deg: np.ndarray, dec_deg: np.ndarray):
        self.ra, self.dec = np.asarray(ra_deg, dtype=float), np.asarray(dec_deg, dtype=float)
        self.vectors = unit_vector(self.ra, self.dec)
        keys = self._keys(np.floor(self.dec / self.CELL_DEG), np.floor(self.ra / self.CELL_DEG))
        order = np.argsort(keys, kind="stable")
        self._sorted_keys, self._order = keys[order], order

    @staticmethod
    def _keys(dec_cell: np.ndarray, ra_cell: np.ndarray) -> np.ndarray:
        return (dec_cell.astype(np.int64) + 1000) * 10_000 + ra_cell.astype(np.int64)

    def candidates(self, ra: float, dec: float, radius_deg: float) -> np.ndarray:
        """Indices of every galaxy within ``radius_deg`` of (ra, dec), and some more (sorted)."""
        c = self.CELL_DEG
        d_lo, d_hi = max(dec - radius_deg, -90.0), min(dec + radius_deg, 90.0)
        widest = max(abs(d_lo), abs(d_hi))
        d_ra = 360.0 if widest + radius_deg >= 89.0 else radius_deg / np.cos(np.radians(widest))
        found = []
        for dec_cell in range(int(np.floor(d_lo / c)), int(np.floor(d_hi / c)) + 1):
            if d_ra >= 180.0:
                ra_cells = range(0, int(360 / c))
            else:
                ra_cells = (int(np.floor(((ra + k) % 360.0) / c)) for k in np.arange(-d_ra, d_ra + c, c).tolist() + [d_ra])
            keys = np.unique(self._keys(np.array([dec_cell]), np.fromiter(ra_cells, dtype=np.int64)))
            lo = np.searchsorted(self._sorted_keys, keys, side="left")
            hi = np.searchsorted(self._sorted_keys, keys, side="right")
            found.extend(self._order[a:b] for a, b in zip(lo, hi, strict=True) if b > a)
        return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def separations_deg(self, indices: np.ndarray, ra: float, dec: float) -> np.ndarray:
        centre = unit_vector(np.array([ra]), np.array([dec]))[0]
        return np.degrees(np.arccos(np.clip(self.vectors[indices] @ centre, -1.0, 1.0)))

    def within(self, ra: float, dec: float, radius_deg: float) -> np.ndarray:
        near = self.candidates(ra, dec, radius_deg)
        return near[self.separations_deg(near, ra, dec) < radius_deg]


def unit_vector(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def build_demo_sky(sky_dir: str | Path, seed: int = 1, scale_to: int = 0) -> DemoSky:
    """Simulate the demo sky's catalog from the bundled sample, reproducibly from ``seed``;
    with ``scale_to`` = N > 0, N galaxies: the sample's, then copies of their images (module docstring)."""
    sample = load_sample(sky_dir).sort_values("objid_dr7").reset_index(drop=True)
    if scale_to and scale_to < len(sample):
        raise DemoSkyError(
            f"demo.scale_to = {scale_to}: must be 0 (the {len(sample):,} bundled galaxies as they are) or at least {len(sample):,}"
        )
    catalog = _simulate(sample, np.random.default_rng(seed))
    if scale_to > len(sample):
        copies = _simulate_copies(sample, catalog, scale_to - len(sample), np.random.default_rng([seed, 1]))
        catalog = pd.concat([catalog, copies], ignore_index=True)
    return DemoSky(catalog=catalog, sky_dir=Path(sky_dir))


def _simulate(sample: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The bundled galaxies' catalog (votes, positions, tables), drawn one galaxy at a time (the same draws for the same seed)."""
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
    return catalog


def _simulate_copies(sample: pd.DataFrame, originals: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` copies of the sample's images: made-up objids, their own simulated votes and grid positions, in arrays."""
    source = np.resize(rng.permutation(len(sample)), n)  # every image used about equally often
    nvote, fractions = simulate_votes_vectorised(sample["gz1_class6_code"].to_numpy()[source], rng)
    ra, dec = grid_positions(n, originals["ra"].to_numpy(), originals["dec"].to_numpy(), rng)
    objid = COPY_OBJID_BASE + np.arange(1, n + 1, dtype=np.int64)
    fr = np.round(fractions, 3)
    copies = pd.DataFrame(
        {
            "objid": objid,
            "dr7objid": objid,
            "ra": ra,
            "dec": dec,
            "nvote": nvote,
            **{f"p_{opt}": fr[:, k] for k, opt in enumerate(VOTE_OPTIONS)},
        }
    )
    copies["p_cs"] = np.round(np.minimum(1.0, copies["p_cw"] + copies["p_acw"] + copies["p_edge"]), 3)
    copies["petroR90_r"] = round(PETRO_R90_R, 4)
    copies["table"] = np.where(rng.random(n) < 0.8, TABLES[0], TABLES[1])
    copies["class4"] = sample["class4"].to_numpy()[source]
    copies["image"] = sample["filename"].to_numpy()[source]
    return copies
