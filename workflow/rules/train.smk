rule train:
    input:
        train_shards=expand(rules.shards_train.output.train_shard, shard=TRAIN_SHARDS),
        val=rules.shards_eval.output.val,
        shards_manifest=rules.shards.output.shards_manifest,
    output:
        model=results(layout.MODEL),
        history=results(layout.HISTORY),
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
        files=files,
    shell:
        nightskynet("train")
