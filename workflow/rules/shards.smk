rule shards:
    input:
        labels="results/labels/labels.csv",
        chunks=expand("results/images/chunk_{k}.tar", k=CHUNKS),
        code=code("shards", "augment", "classes", "files"),
    output:
        train=expand("results/shards/train_{k}.npz", k=TRAIN_SHARDS),
        val="results/shards/val.npz",
        test="results/shards/test.npz",
        uncertain="results/shards/uncertain.npz",
        manifest="results/shards/manifest.json",
    log:
        "results/logs/shards.log",
    benchmark:
        "results/benchmarks/shards.tsv"
    conda:
        "../../envs/learn.yaml"
    params:
        settings=settings("shards", "scrape.width"),
    shell:
        "python -m nightskynet shards --settings {params.settings:q} --labels {input.labels}"
        " --chunk-tars {input.chunks} --train {output.train} --val {output.val} --test {output.test}"
        " --uncertain {output.uncertain} --manifest {output.manifest} > {log} 2>&1"
