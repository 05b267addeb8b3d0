rule report:
    input:
        catalog=results("catalog/gz1_votes.csv"),
        labels=results("labels/labels.csv"),
        labels_summary=results("labels/summary.json"),
        scrape_manifests=expand(results("images/chunk_{k}.manifest.csv"), k=CHUNKS),
        chunk_tars=expand(results("images/chunk_{k}.tar"), k=CHUNKS),
        shards_manifest=results("shards/manifest.json"),
        history=results("model/history.csv"),
        model=results("model/model.pt"),
        metrics=rules.evaluate.output.metrics,
        predictions_test=rules.evaluate.output.predictions_test,
        predictions_uncertain=rules.evaluate.output.predictions_uncertain,
        confusion=rules.evaluate.output.confusion,
        roc_pr=rules.evaluate.output.roc_pr,
        reliability=rules.evaluate.output.reliability,
        mistakes=rules.evaluate.output.mistakes,
        morphology_comparison=rules.morphology.output.comparison,
        morphology_vs_votes=rules.morphology.output.vs_votes,
        morphology_by_votes=rules.morphology.output.by_votes,
        morphology_disagreements=rules.morphology.output.disagreements,
        similarity_summary=rules.similarity.output.summary,
        similarity_unusual=rules.similarity.output.unusual,
        similarity_neighbours=rules.similarity.output.neighbours,
        similarity_map=rules.similarity.output.map,
        similarity_merger_like=rules.similarity.output.merger_like,
    output:
        html=results("report/report.html"),
        examples=report(
            results("report/examples.png"),
            caption="../report/examples.rst",
            category="Data",
        ),
        network=report(
            results("report/network.png"),
            caption="../report/network.rst",
            category="Training",
        ),
        curves=report(
            results("report/training_curves.png"),
            caption="../report/training_curves.rst",
            category="Training",
        ),
        sky_map=report(
            results("report/sky_map.png"),
            caption="../report/sky_map.rst",
            category="Evaluation",
        ),
    log:
        results("logs/report.log"),
    benchmark:
        results("benchmarks/report.tsv")
    conda:
        "../../envs/report.yaml"
    params:
        code=code("report"),
        settings=settings(
            *source_keys(),
            "query",
            "labels",
            "scrape.chunks",
            *geometry_keys(),
            "shards",
            *train_keys(),
            "evaluate",
            "morphology",
            "similarity",
            "report",
        ),
    shell:
        "nightskynet report --settings {params.settings:q} --catalog {input.catalog} --labels {input.labels}"
        " --labels-summary {input.labels_summary} --scrape-manifests {input.scrape_manifests} --chunk-tars {input.chunk_tars}"
        " --shards-manifest {input.shards_manifest} --history {input.history} --model {input.model}"
        " --metrics {input.metrics} --predictions-test {input.predictions_test}"
        " --predictions-uncertain {input.predictions_uncertain} --confusion {input.confusion} --roc-pr {input.roc_pr}"
        " --reliability {input.reliability} --mistakes {input.mistakes}"
        " --morphology-comparison {input.morphology_comparison} --morphology-vs-votes {input.morphology_vs_votes}"
        " --morphology-by-votes {input.morphology_by_votes} --morphology-disagreements {input.morphology_disagreements}"
        " --similarity-summary {input.similarity_summary} --similarity-unusual {input.similarity_unusual}"
        " --similarity-neighbours {input.similarity_neighbours} --similarity-map {input.similarity_map}"
        " --similarity-merger-like {input.similarity_merger_like}"
        " --examples {output.examples}"
        " --network {output.network} --curves {output.curves} --sky-map {output.sky_map} --out {output.html} > {log} 2>&1"
