rule evaluate:
    input:
        model=results("model/model.pt"),
        test=results("shards/test.npz"),
        uncertain=results("shards/uncertain.npz"),
        labels=results("labels/labels.csv"),
    output:
        metrics=results("eval/metrics.json"),
        predictions_test=results("eval/predictions_test.csv"),
        predictions_uncertain=results("eval/predictions_uncertain.csv"),
        predictions_test_fits=results("eval/predictions_test.fits"),
        predictions_uncertain_fits=results("eval/predictions_uncertain.fits"),
        confusion=report(
            results("eval/confusion_matrix.png"),
            caption="../report/confusion_matrix.rst",
            category="Evaluation",
        ),
        roc_pr=report(
            results("eval/roc_pr.png"),
            caption="../report/roc_pr.rst",
            category="Evaluation",
        ),
        reliability=report(
            results("eval/reliability.png"),
            caption="../report/reliability.rst",
            category="Evaluation",
        ),
        mistakes=report(
            results("eval/mistakes.png"),
            caption="../report/mistakes.rst",
            category="Evaluation",
        ),
    log:
        results("logs/evaluate.log"),
    benchmark:
        results("benchmarks/evaluate.tsv")
    conda:
        "../../envs/learn.yaml"
    threads: 2
    resources:
        device=config["train"]["device"],
        batch_size=config["evaluate"]["batch_size"],
    params:
        code=code("evaluate"),
        settings=settings("source", "evaluate"),
    shell:
        "nightskynet evaluate --settings {params.settings:q} --model {input.model} --test {input.test}"
        " --uncertain {input.uncertain} --labels {input.labels} --metrics {output.metrics}"
        " --predictions-test {output.predictions_test} --predictions-uncertain {output.predictions_uncertain}"
        " --confusion {output.confusion} --roc-pr {output.roc_pr} --reliability {output.reliability}"
        " --mistakes {output.mistakes}"
        " --device {resources.device} --batch-size {resources.batch_size} --threads {threads} > {log} 2>&1"
