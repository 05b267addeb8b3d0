rule scrape:
    input:
        labels="results/labels/labels.csv",
        code=code(
            "scrape",
            "http_retry",
            "sky_source",
            "demo_server",
            "demo_sky",
            "query",
            "files",
        ),
        demo_sky=demo_sky_inputs(),
    output:
        tar="results/images/chunk_{k}.tar",
        manifest="results/images/chunk_{k}.manifest.csv",
    log:
        "results/logs/scrape/chunk_{k}.log",
    benchmark:
        "results/benchmarks/scrape/chunk_{k}.tsv"
    wildcard_constraints:
        k=r"\d+",
    conda:
        "../../envs/acquire.yaml"
    params:
        settings=settings(
            "source",
            "sdss.base_url",
            "sdss.release",
            "demo.sky_dir",
            "demo.seed",
            "scrape",
        ),
    shell:
        "python -m nightskynet scrape --settings {params.settings:q} --labels {input.labels} --chunk {wildcards.k}"
        " --tar {output.tar} --manifest {output.manifest} > {log} 2>&1"
