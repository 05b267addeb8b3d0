rule query:
    input:
        demo_sky_inputs(),
    output:
        catalog=results(layout.QUERY_CATALOG),
        catalog_fits=results(layout.QUERY_CATALOG_FITS),
    log:
        results("logs/query.log"),
    benchmark:
        results("benchmarks/query.tsv")
    conda:
        "../../envs/acquire.yaml"
    resources:
        page_size=config["query"]["page_size"],
        sql_timeout_s=str(config["query"]["timeout_s"]),
        max_attempts=config["query"]["max_attempts"],
        demo_max_rows=config["demo"]["max_rows"],
    params:
        code=code("query"),
        settings=settings(*source_keys(), "query.tables", "query.limit"),
        files=files,
    shell:
        nightskynet("query")
