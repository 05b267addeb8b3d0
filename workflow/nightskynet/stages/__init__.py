"""The pipeline's stages: one module per rule file, named as the rule is (workflow/rules/X.smk -> stages/X.py).

query -> labels -> scrape -> shards -> train -> evaluate, morphology -> similarity -> report, and predict on demand.
Each stage command's function takes its files, settings and run options as keyword arguments, under the names of
the rule's input and output keys and resources, which the ``nightskynet`` command's options and the rule's command
line are made from (``core.commands``).
A stage imports the shared folders (sky, images, net, analysis, core), never another stage.
"""
