#!/usr/bin/env bash
# Snakemake runs this once, inside the new conda env (--sdm conda), from the workflow's working
# directory (the checkout): it installs the nightskynet package itself, whose dependencies the
# env file already pins, so that the env's jobs find the `nightskynet` command.
set -euo pipefail
python -m pip install --no-deps --editable .
