"""Sky positions as catalogs write them: decimal degrees or sexagesimal text, checked through astropy.

``ra`` may be decimal degrees (``155.25``), hours-minutes-seconds (``10h21m00s``, ``10:21:00``,
``10 21 00``: sexagesimal right ascension is in hours, as catalogs write it) or degrees with units
(``155d15m``); ``dec`` decimal degrees or degrees-minutes-seconds (``+41d12m``, ``+41:12:00``,
``41 12 0``). Every position is checked with ``SkyCoord`` (ICRS): right ascension in [0, 360]
degrees, declination in [-90, 90].
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle, SkyCoord

ANGLE_HELP = "decimal degrees, or sexagesimal like 10h21m00s / 10:21:00 (ra, hours) and +41d12m00s / +41:12:00 (dec)"


def parse_angle(text: str, axis: str) -> float:
    """Degrees from one cell of an ``ra`` or ``dec`` column; ValueError when it is not an angle."""
    text = text.strip()
    if not text:
        raise ValueError("empty")
    try:
        return float(text)
    except ValueError:
        pass
    has_units = any(c in text.lower() for c in "hdms°'\"")
    unit = None if has_units else (u.hourangle if axis == "ra" else u.deg)
    try:
        return float(Angle(text, unit=unit).to_value(u.deg))
    except (ValueError, u.UnitsError, TypeError) as err:
        raise ValueError(str(err)) from None


def position_problem(ra_deg: float, dec_deg: float) -> tuple[str, str] | None:
    """None when (ra, dec) in degrees is a position on the sky; else (the axis at fault, what is wrong with it)."""
    if not 0.0 <= ra_deg <= 360.0:
        return "ra", f"{ra_deg:g} degrees is outside [0, 360]"
    if not -90.0 <= dec_deg <= 90.0:
        return "dec", f"{dec_deg:g} degrees is outside [-90, 90]"
    return None


def sky_coordinates(ra_deg, dec_deg) -> SkyCoord:
    """Positions checked one by one with ``position_problem``, as one ICRS ``SkyCoord`` (raises on anything it will not place)."""
    return SkyCoord(ra=np.asarray(ra_deg, float) * u.deg, dec=np.asarray(dec_deg, float) * u.deg, frame="icrs")
