rule evaluate:
    input:
        model="results/model/model.pt",
        test="results/shards/test.npz",
        uncertain="results/shards/uncertain.npz",
        labels="results/labels/labels.csv",
        code=code("evaluate", "model", "augment", "classes", "files", "train"),
    output:
        metrics="results/eval/metrics.json",
        predictions_test="results/eval/predictions_test.csv",
        predictions_uncertain="results/eval/predictions_uncertain.csv",
        confusion="results/eval/confusion_matrix.png",
        votes="results/eval/uncertain_vs_votes.png",
    log:
        "results/logs/evaluate.log",
    benchmark:
        "results/benchmarks/evaluate.tsv"
    conda:
        "../../envs/learn.yaml"
    threads: 2
    params:
        settings=settings("source", "evaluate", "train.device"),
    shell:
        "python -m nightskynet evaluate --settings {params.settings:q} --model {input.model} --test {input.test}"
        " --uncertain {input.uncertain} --labels {input.labels} --metrics {output.metrics}"
        " --predictions-test {output.predictions_test} --predictions-uncertain {output.predictions_uncertain}"
        " --confusion {output.confusion} --votes {output.votes} --threads {threads} > {log} 2>&1"
