rule shards_train:
    input:
        labels=rules.labels.output.labels,
        scrape_manifests=expand(rules.scrape.output.manifest, chunk=CHUNKS),
        chunk_tars=expand(rules.scrape.output.tar, chunk=CHUNKS),
    output:
        train_shard=results("shards/train_{shard}.npz"),
    log:
        results("logs/shards/train_{shard}.log"),
    benchmark:
        results("benchmarks/shards/train_{shard}.tsv")
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/learn.yaml"
    params:
        code=code("shards"),
        settings=settings("shards", "scrape.size"),
        files=files,
    shell:
        nightskynet("shards-train")


rule shards_eval:
    input:
        labels=rules.labels.output.labels,
        scrape_manifests=expand(rules.scrape.output.manifest, chunk=CHUNKS),
        chunk_tars=expand(rules.scrape.output.tar, chunk=CHUNKS),
    output:
        val=results("shards/val.npz"),
        test=results("shards/test.npz"),
        uncertain=results("shards/uncertain.npz"),
    log:
        results("logs/shards/eval.log"),
    benchmark:
        results("benchmarks/shards/eval.tsv")
    conda:
        "../../envs/learn.yaml"
    params:
        code=code("shards"),
        settings=settings("shards.crop", "scrape.size"),
        files=files,
    shell:
        nightskynet("shards-eval")


rule shards:
    input:
        labels=rules.labels.output.labels,
        scrape_manifests=expand(rules.scrape.output.manifest, chunk=CHUNKS),
        # every shard, training and evaluation, for the manifest to count
        shards=[
            *expand(rules.shards_train.output.train_shard, shard=TRAIN_SHARDS),
            *rules.shards_eval.output,
        ],
    output:
        shards_manifest=results("shards/manifest.json"),
    log:
        results("logs/shards/manifest.log"),
    benchmark:
        results("benchmarks/shards/manifest.tsv")
    conda:
        "../../envs/learn.yaml"
    params:
        code=code("shards"),
        settings=settings("shards", *geometry_keys()),
        files=files,
    shell:
        nightskynet("shards-manifest")
