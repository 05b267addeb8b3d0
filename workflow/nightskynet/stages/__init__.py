"""The pipeline's stages: one module per rule file, named as the rule is (workflow/rules/X.smk -> stages/X.py).

query -> labels -> scrape -> shards -> train -> evaluate -> morphology -> report, and predict on demand.
Each module's ``run`` functions take their files and settings as keyword arguments, the names the
``nightskynet`` command's options and the rule's input and output keys use (``core.contracts``).
A stage imports the shared folders (sky, images, net, analysis, core), never another stage.
"""
