rule scrape:
    input:
        catalog=results("catalog/gz1_votes.csv"),
        demo_sky=demo_sky_inputs(),
    output:
        tar=results("images/chunk_{k}.tar"),
        manifest=results("images/chunk_{k}.manifest.csv"),
    log:
        results("logs/scrape/chunk_{k}.log"),
    benchmark:
        results("benchmarks/scrape/chunk_{k}.tsv")
    wildcard_constraints:
        k=r"\d+",
    conda:
        "../../envs/acquire.yaml"
    resources:
        **client_resources(),
    params:
        code=code("scrape"),
        settings=settings(*source_keys(), "scrape.chunks", *geometry_keys()),
    shell:
        "nightskynet scrape --settings {params.settings:q} --catalog {input.catalog} --chunk {wildcards.k}"
        " --tar {output.tar} --manifest {output.manifest}"
        + client_options()
        + " > {log} 2>&1"
