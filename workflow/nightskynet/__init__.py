"""Night Sky Net: galaxy morphology from SDSS cutouts and Galaxy Zoo 1 votes.

One module per workflow stage (query, labels, scrape, shards, train, evaluate, report, predict),
plus the shared pieces they use. Every stage runs without Snakemake: the Snakefile's rules call
``python -m nightskynet <stage> ...``, which calls the stage's ``run`` function.
"""

__version__ = "0.1.0"
