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
        figures=rules.evaluate.output,
        code=code("report", "figures", "shards", "augment", "model", "classes", "files"),
    output:
        html="results/report/report.html",
        examples=report(
            "results/report/examples.png",
            caption="../report/examples.rst",
            category="Data",
        ),
        network=report(
            "results/report/network.png",
            caption="../report/network.rst",
            category="Training",
        ),
        curves=report(
            "results/report/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
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
        eval_dir=lambda wildcards, input: os.path.dirname(input.metrics),
    shell:
        "python -m nightskynet report --settings {params.settings:q} --catalog {input.catalog} --labels {input.labels}"
        " --labels-summary {input.labels_summary} --scrape-manifests {input.manifests} --chunk-tars {input.chunks}"
        " --shards-manifest {input.shards_manifest} --history {input.history} --model {input.model}"
        " --metrics {input.metrics} --eval-dir {params.eval_dir} --examples {output.examples}"
        " --network {output.network} --curves {output.curves} --out {output.html} > {log} 2>&1"
