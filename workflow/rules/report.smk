rule report:
    input:
        catalog="results/catalog/gz1_votes.csv",
        labels="results/labels/labels.csv",
        labels_summary="results/labels/summary.json",
        manifests=expand("results/images/chunk_{k}.manifest.csv", k=CHUNKS),
        chunks=expand("results/images/chunk_{k}.tar", k=CHUNKS),
        shards_manifest="results/shards/manifest.json",
        history="results/model/history.csv",
        model="results/model/model.pt",
        metrics="results/eval/metrics.json",
        confusion="results/eval/confusion_matrix.png",
        votes="results/eval/uncertain_vs_votes.png",
        code=code("report", "model", "classes", "files"),
    output:
        html="results/report/report.html",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        settings=settings(
            "source",
            "sdss",
            "demo",
            "labels",
            "scrape",
            "shards",
            "train",
            "evaluate",
            "report",
        ),
    shell:
        "python -m nightskynet report --settings {params.settings:q} --catalog {input.catalog} --labels {input.labels}"
        " --labels-summary {input.labels_summary} --scrape-manifests {input.manifests} --chunk-tars {input.chunks}"
        " --shards-manifest {input.shards_manifest} --history {input.history} --model {input.model}"
        " --metrics {input.metrics} --confusion {input.confusion} --votes {input.votes} --out {output.html} > {log} 2>&1"
