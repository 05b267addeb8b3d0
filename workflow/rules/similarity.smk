rule similarity:
    input:
        catalog=rules.morphology.output.catalog,
        representations=rules.morphology.output.representations,
        representations_objid=rules.morphology.output.representations_objid,
        labels=rules.labels.output.labels,
        labels_summary=rules.labels.output.summary,
        chunk_tars=expand(rules.scrape.output.tar, chunk=CHUNKS),
    output:
        # a faiss index of every classified galaxy's representation, ids the objids
        index=results(layout.INDEX),
        # unusual and merger_likeness (and their ranks) per catalog row
        scores=results(layout.SCORES),
        summary=results(layout.SIMILARITY_SUMMARY),
        unusual=report(
            results("similarity/unusual.png"),
            caption="../report/unusual.rst",
            category="Similar galaxies",
        ),
        neighbours=report(
            results("similarity/neighbours.png"),
            caption="../report/neighbours.rst",
            category="Similar galaxies",
        ),
        map=report(
            results("similarity/map.png"),
            caption="../report/map.rst",
            category="Similar galaxies",
        ),
        merger_like=report(
            results("similarity/merger_like.png"),
            caption="../report/merger_like.rst",
            category="Similar galaxies",
        ),
    log:
        results("logs/similarity.log"),
    benchmark:
        results("benchmarks/similarity.tsv")
    conda:
        "../../envs/similarity.yaml"
    threads: config["similarity"]["threads"]
    params:
        code=code("similarity"),
        settings=settings("similarity"),
        files=files,
    shell:
        nightskynet("similarity")
