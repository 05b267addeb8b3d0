rule train:
    input:
        train=expand("results/shards/train_{k}.npz", k=TRAIN_SHARDS),
        val="results/shards/val.npz",
        manifest="results/shards/manifest.json",
        code=code("train", "model", "classes", "files"),
    output:
        model="results/model/model.pt",
        history="results/model/history.csv",
    log:
        "results/logs/train.log",
    benchmark:
        "results/benchmarks/train.tsv"
    conda:
        "../../envs/learn.yaml"
    threads: 8
    resources:
        gpu=config["train"]["gpus"],
    params:
        settings=settings("train"),
    shell:
        "python -m nightskynet train --settings {params.settings:q} --train-shards {input.train} --val {input.val}"
        " --model {output.model} --history {output.history} --threads {threads} > {log} 2>&1"
