rule labels:
    input:
        catalog=results("catalog/gz1_votes.csv"),
    output:
        labels=results("labels/labels.csv"),
        labels_fits=results("labels/labels.fits"),
        summary=results("labels/summary.json"),
    log:
        results("logs/labels.log"),
    benchmark:
        results("benchmarks/labels.tsv")
    conda:
        "../../envs/learn.yaml"
    params:
        code=code("labels"),
        settings=settings("labels", "train.targets", *votes_keys()),
    shell:
        "nightskynet labels --settings {params.settings:q} --catalog {input.catalog}"
        " --out {output.labels} --summary {output.summary} > {log} 2>&1"
