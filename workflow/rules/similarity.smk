rule similarity:
    input:
        catalog=rules.morphology.output.csv,
        representations=rules.morphology.output.representations,
        labels=results("labels/labels.csv"),
        labels_summary=results("labels/summary.json"),
        chunk_tars=expand(results("images/chunk_{k}.tar"), k=CHUNKS),
    output:
        # a faiss index of every classified galaxy's representation, ids the objids
        index=results("similarity/index.faiss"),
        # unusual and merger_likeness (and their ranks) per catalog row
        scores=results("similarity/scores.csv"),
        summary=results("similarity/summary.json"),
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
    shell:
        "nightskynet similarity --settings {params.settings:q} --catalog {input.catalog}"
        " --representations {input.representations} --labels {input.labels}"
        " --labels-summary {input.labels_summary} --chunk-tars {input.chunk_tars}"
        " --index {output.index} --scores {output.scores} --summary {output.summary}"
        " --unusual {output.unusual} --neighbours {output.neighbours} --map {output.map}"
        " --merger-like {output.merger_like} --threads {threads} > {log} 2>&1"
