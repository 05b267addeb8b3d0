rule predict:
    input:
        model="results/model/model.pt",
        data=predict_input,
        code=code(
            "predict",
            "figures",
            "evaluate",
            "model",
            "augment",
            "classes",
            "files",
            "train",
            "scrape",
            "http_retry",
            "query",
            "sky_source",
            "demo_server",
            "demo_sky",
        ),
    output:
        "results/predict/predictions.csv",
    log:
        "results/logs/predict.log",
    benchmark:
        "results/benchmarks/predict.tsv"
    conda:
        "../../envs/predict.yaml"
    threads: 2
    params:
        settings=settings("source", "sdss", "demo", "scrape", "train.device"),
        tta="" if config["predict"]["tta"] else "--no-tta",
    shell:
        "python -m nightskynet predict {input.model} {input.data} -o {output} --settings {params.settings:q}"
        " {params.tta} --threads {threads} > {log} 2>&1"
