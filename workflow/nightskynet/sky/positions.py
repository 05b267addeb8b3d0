"""Sky positions as catalogs write them: decimal degrees or sexagesimal text, checked with astropy.

``ra`` may be decimal degrees (``155.25``), hours-minutes-seconds (``10h21m00s``, ``10:21:00``,
``10 21 00``: sexagesimal right ascension is in hours, as catalogs write it) or degrees with units
(``155d15m``); ``dec`` decimal degrees or degrees-minutes-seconds (``+41d12m``, ``+41:12:00``,
``41 12 0``). A numeric column with a unit (``hourangle``, ``rad``, ``arcmin``...) is converted
from it. Every position must lie on the sky (right ascension in [0, 360] degrees, declination in
[-90, 90]) and becomes an ICRS ``SkyCoord``, whose coordinates are what the pipeline carries on.
"""

from __future__ import annotations

import re

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord

ANGLE_HELP = "decimal degrees, or sexagesimal like 10h21m00s / 10:21:00 (ra, hours) and +41d12m00s / +41:12:00 (dec)"
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def decimal(text: str) -> float | None:
    """The number a cell spells in plain decimal notation (no '_', no 'nan'), else None."""
    return float(text) if _DECIMAL.fullmatch(text) else None


def parse_angle(text: str, axis: str, unit: str | None = None) -> float:
    """Degrees from one cell of an ``ra`` or ``dec`` column (``unit``: the column's, for plain numbers).

    ValueError, saying why, when it is not an angle.
    """
    text = text.strip()
    if not text:
        raise ValueError("is empty (a masked or missing value)")
    if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise ValueError("is not a finite angle")
    number = decimal(text)
    if number is not None:
        return number if unit is None else round(float((number * u.Unit(unit)).to_value(u.deg)), 10)
    has_units = any(c in text.lower() for c in "hdms°'\"")
    try:
        degrees = Angle(text, unit=None if has_units else (u.hourangle if axis == "ra" else u.deg)).to_value(u.deg)
    except (ValueError, u.UnitsError, TypeError):
        raise ValueError(f"is not an angle ({ANGLE_HELP})") from None
    return round(float(degrees), 10)  # 10:00:00 is 150 degrees, not 149.99999999999997 (1e-10 deg: 0.4 micro-arcsec)


def check_angle_unit(unit: str | None) -> str | None:
    """None when a column's unit is absent or an angle; else what is wrong with it."""
    if unit is None:
        return None
    try:
        if u.Unit(unit).is_equivalent(u.deg):
            return None
    except ValueError:
        return f"has a unit astropy does not know ({unit!r})"
    return f"has unit {unit!r}, which is not an angle"


def position_problem(ra_deg: float, dec_deg: float) -> tuple[str, str] | None:
    """None when (ra, dec) in degrees is a position on the sky; else (the axis at fault, what is wrong with it)."""
    if not 0.0 <= ra_deg <= 360.0:
        return "ra", f"{ra_deg:g} degrees is outside [0, 360]"
    if not -90.0 <= dec_deg <= 90.0:
        return "dec", f"{dec_deg:g} degrees is outside [-90, 90]"
    return None


def sky_coordinates(ra_deg, dec_deg) -> SkyCoord:
    """The positions as one ICRS ``SkyCoord`` (right ascension wrapped to [0, 360): 360 becomes 0)."""
    return SkyCoord(ra=np.asarray(ra_deg, float) * u.deg, dec=np.asarray(dec_deg, float) * u.deg, frame="icrs")


def arcsec(value: float, unit: str | None) -> float:
    """A radius in arcsec from a number and its column's unit (arcsec when none)."""
    return value if unit is None else float((value * u.Unit(unit)).to_value(u.arcsec))
