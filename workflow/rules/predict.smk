rule predict:
    input:
        model=rules.train.output.model,
        data=predict_input,
    output:
        results("predict/predictions.csv"),
    log:
        results("logs/predict.log"),
    benchmark:
        results("benchmarks/predict.tsv")
    conda:
        "../../envs/predict.yaml"
    threads: 2
    resources:
        **client_resources(),
        device=config["train"]["device"],
        batch_size=config["evaluate"]["batch_size"],
    params:
        code=code("predict"),
        settings=settings(*source_keys()),
        input=config["predict"]["input"],
        views=config["predict"]["views"],
    shell:
        "nightskynet predict {input.model} {params.input:q} -o {output} --settings {params.settings:q}"
        " --views {params.views} --device {resources.device} --batch-size {resources.batch_size} --threads {threads}"
        + client_options()
        + " > {log} 2>&1"
