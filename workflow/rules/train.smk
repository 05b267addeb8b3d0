rule train:
    input:
        train_shards=expand(results("shards/train_{k}.npz"), k=TRAIN_SHARDS),
        val=results("shards/val.npz"),
        shards_manifest=results("shards/manifest.json"),
    output:
        model=results("model/model.pt"),
        history=results("model/history.csv"),
    log:
        results("logs/train.log"),
    benchmark:
        results("benchmarks/train.tsv")
    conda:
        "../../envs/learn.yaml"
    threads: 8
    resources:
        gpu=config["train"]["gpus"],
        device=config["train"]["device"],
        checkpoint_dir=config["train"]["checkpoint_dir"],
    params:
        code=code("train"),
        settings=settings(*train_keys()),
    shell:
        "nightskynet train --settings {params.settings:q} --train-shards {input.train_shards} --val {input.val}"
        " --shards-manifest {input.shards_manifest} --model {output.model} --history {output.history}"
        " --device {resources.device} --checkpoint-dir {resources.checkpoint_dir:q} --threads {threads}"
        " > {log} 2>&1"
