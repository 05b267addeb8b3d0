"""``nightskynet explore``: a local web app over one finished run's results (``app``), reading its catalog, scores,
representations and index (``run_data``), its cutouts by objid (``cutout_store``) and a person's marks
(``marks``), from which it ranks the whole catalog (``ranking``) and draws the sky (``sky_map``)."""
