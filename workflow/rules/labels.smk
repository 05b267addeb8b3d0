rule labels:
    input:
        catalog=rules.query.output.catalog,
    output:
        labels=results(layout.LABELS),
        labels_fits=results(layout.LABELS_FITS),
        summary=results(layout.LABELS_SUMMARY),
    log:
        results("logs/labels.log"),
    benchmark:
        results("benchmarks/labels.tsv")
    conda:
        "../../envs/learn.yaml"
    params:
        code=code("labels"),
        settings=settings("labels", "train.targets", *votes_keys()),
        files=files,
    shell:
        nightskynet("labels")
