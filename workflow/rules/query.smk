rule query:
    input:
        code=code(
            "query", "http_retry", "sky_source", "demo_server", "demo_sky", "files"
        ),
        demo_sky=demo_sky_inputs(),
    output:
        catalog="results/catalog/gz1_votes.csv",
    log:
        "results/logs/query.log",
    benchmark:
        "results/benchmarks/query.tsv"
    conda:
        "../../envs/acquire.yaml"
    params:
        settings=settings("source", "sdss", "demo"),
    shell:
        "python -m nightskynet query --settings {params.settings:q} --out {output.catalog} > {log} 2>&1"
