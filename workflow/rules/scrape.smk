rule scrape:
    input:
        demo_sky_inputs(),
        catalog=rules.query.output.catalog,
    output:
        tar=results(layout.CHUNK_TAR),
        manifest=results(layout.CHUNK_MANIFEST),
    log:
        results("logs/scrape/chunk_{chunk}.log"),
    benchmark:
        results("benchmarks/scrape/chunk_{chunk}.tsv")
    wildcard_constraints:
        chunk=r"\d+",
    conda:
        "../../envs/acquire.yaml"
    resources:
        **client_resources(),
    params:
        code=code("scrape"),
        settings=settings(*source_keys(), "scrape.chunks", *geometry_keys()),
        files=files,
    shell:
        nightskynet("scrape")
