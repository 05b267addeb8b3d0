rule shards_train:
    input:
        labels=results("labels/labels.csv"),
        scrape_manifests=expand(results("images/chunk_{k}.manifest.csv"), k=CHUNKS),
        chunk_tars=expand(results("images/chunk_{k}.tar"), k=CHUNKS),
    output:
        results("shards/train_{k}.npz"),
    log:
        results("logs/shards/train_{k}.log"),
    benchmark:
        results("benchmarks/shards/train_{k}.tsv")
    wildcard_constraints:
        k=r"\d+",
    conda:
        "../../envs/learn.yaml"
    params:
        code=code("shards"),
        settings=settings("shards", "scrape.size"),
    shell:
        "nightskynet shards-train --settings {params.settings:q} --labels {input.labels}"
        " --scrape-manifests {input.scrape_manifests} --chunk-tars {input.chunk_tars} --shard {wildcards.k}"
        " --out {output} > {log} 2>&1"


rule shards_eval:
    input:
        labels=results("labels/labels.csv"),
        scrape_manifests=expand(results("images/chunk_{k}.manifest.csv"), k=CHUNKS),
        chunk_tars=expand(results("images/chunk_{k}.tar"), k=CHUNKS),
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
    shell:
        "nightskynet shards-eval --settings {params.settings:q} --labels {input.labels}"
        " --scrape-manifests {input.scrape_manifests} --chunk-tars {input.chunk_tars} --val {output.val}"
        " --test {output.test} --uncertain {output.uncertain} > {log} 2>&1"


rule shards:
    input:
        labels=results("labels/labels.csv"),
        scrape_manifests=expand(results("images/chunk_{k}.manifest.csv"), k=CHUNKS),
        # every shard, training and evaluation, for the manifest to count
        shards=[
            *expand(results("shards/train_{k}.npz"), k=TRAIN_SHARDS),
            *expand(results("shards/{split}.npz"), split=["val", "test", "uncertain"]),
        ],
    output:
        manifest=results("shards/manifest.json"),
    log:
        results("logs/shards/manifest.log"),
    benchmark:
        results("benchmarks/shards/manifest.tsv")
    conda:
        "../../envs/learn.yaml"
    params:
        code=code("shards"),
        settings=settings("shards", *geometry_keys()),
    shell:
        "nightskynet shards-manifest --settings {params.settings:q} --labels {input.labels}"
        " --scrape-manifests {input.scrape_manifests} --shards {input.shards}"
        " --out {output.manifest} > {log} 2>&1"
