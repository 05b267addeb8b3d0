"""The sky: talking to SDSS SkyServer (its SQL service and its cutout service) and to the demo stand-in that serves
the bundled demo sky the same way, and what a sky catalog holds (Galaxy Zoo 1 votes, positions)."""
