"""Where vote fractions come from, said the same way in every table and figure.

The demo sky's votes are simulated (``demo_sky``); on the real SDSS they are Galaxy Zoo 1's.
Tables carry the word in a ``votes`` column, figures and pages the phrase.
"""

SIMULATED, GALAXY_ZOO_1 = "simulated", "galaxy_zoo_1"


def votes_kind(source: str) -> str:
    """The ``votes`` column's value for data from ``source`` (demo or sdss)."""
    return SIMULATED if source == "demo" else GALAXY_ZOO_1


def votes_phrase(source: str) -> str:
    """How figures and pages name the votes of data from ``source``."""
    return "simulated votes" if source == "demo" else "Galaxy Zoo 1 votes"
