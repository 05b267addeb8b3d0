rule scrape:
    input:
        labels="results/labels/labels.csv",
        code=code("scrape", "http_retry", "sky_source", "demo_server", "demo_sky", "query", "files"),
        demo_sky=demo_sky_inputs(),
    output:
        tar="results/images/chunk_{k}.tar",
        manifest="results/images/chunk_{k}.manifest.csv",
    wildcard_constraints:
        k=r"\d+",
    params:
        settings=settings("source", "sdss.base_url", "sdss.release", "demo.sky_dir", "demo.seed", "scrape"),
    log:
        "results/logs/scrape/chunk_{k}.log",
    benchmark:
        "results/benchmarks/scrape/chunk_{k}.tsv"
    conda:
        "../../envs/acquire.yaml"
    shell:
        "python -m nightskynet scrape --settings {params.settings:q} --labels {input.labels} --chunk {wildcards.k}"
        " --tar {output.tar} --manifest {output.manifest} > {log} 2>&1"
