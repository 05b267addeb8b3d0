rule query:
    input:
        demo_sky=demo_sky_inputs(),
    output:
        catalog=results("catalog/gz1_votes.csv"),
        catalog_fits=results("catalog/gz1_votes.fits"),
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
    shell:
        "nightskynet query --settings {params.settings:q} --out {output.catalog}"
        " --page-size {resources.page_size} --timeout-s {resources.sql_timeout_s}"
        " --max-attempts {resources.max_attempts} --demo-max-rows {resources.demo_max_rows}"
        " > {log} 2>&1"
