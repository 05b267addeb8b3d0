rule morphology_chunk:
    input:
        model=results("model/model.pt"),
        catalog=results("catalog/gz1_votes.csv"),
        labels=results("labels/labels.csv"),
        tar=results("images/chunk_{k}.tar"),
        manifest=results("images/chunk_{k}.manifest.csv"),
    output:
        csv=results("morphology/chunk_{k}.csv"),
        # each galaxy's representation, row for row; beside it their objids
        representations=results("morphology/chunk_{k}.representations.npy"),
        representations_objid=results("morphology/chunk_{k}.representations_objid.npy"),
    log:
        results("logs/morphology/chunk_{k}.log"),
    benchmark:
        results("benchmarks/morphology/chunk_{k}.tsv")
    wildcard_constraints:
        k=r"\d+",
    conda:
        "../../envs/learn.yaml"
    threads: 2
    resources:
        device=config["train"]["device"],
        batch_size=config["morphology"]["batch_size"],
    params:
        code=code("morphology"),
        settings=settings("scrape.chunks", "morphology"),
    shell:
        "nightskynet morphology-chunk --settings {params.settings:q} --model {input.model} --catalog {input.catalog}"
        " --labels {input.labels} --tar {input.tar} --manifest {input.manifest} --chunk {wildcards.k} --out {output.csv}"
        " --representations {output.representations}"
        " --device {resources.device} --batch-size {resources.batch_size} --threads {threads} > {log} 2>&1"


rule morphology:
    input:
        chunks=expand(results("morphology/chunk_{k}.csv"), k=CHUNKS),
        chunk_representations=expand(
            results("morphology/chunk_{k}.representations.npy"), k=CHUNKS
        ),
        chunk_tars=expand(results("images/chunk_{k}.tar"), k=CHUNKS),
    output:
        csv=results("morphology/catalog.csv"),
        fits=results("morphology/catalog.fits"),
        # catalog.csv's rows' representations, row for row; beside it their objids
        representations=results("morphology/representations.npy"),
        representations_objid=results("morphology/representations_objid.npy"),
        comparison=results("morphology/comparison.json"),
        vs_votes=report(
            results("morphology/network_vs_votes.png"),
            caption="../report/network_vs_votes.rst",
            category="Network vs human votes",
        ),
        by_votes=report(
            results("morphology/agreement_by_votes.png"),
            caption="../report/agreement_by_votes.rst",
            category="Network vs human votes",
        ),
        disagreements=report(
            results("morphology/disagreements.png"),
            caption="../report/disagreements.rst",
            category="Network vs human votes",
        ),
    log:
        results("logs/morphology/merge.log"),
    benchmark:
        results("benchmarks/morphology/merge.tsv")
    conda:
        "../../envs/report.yaml"
    params:
        code=code("morphology"),
        settings=settings("source", "morphology"),
    shell:
        "nightskynet morphology --settings {params.settings:q} --chunks {input.chunks}"
        " --chunk-representations {input.chunk_representations} --chunk-tars {input.chunk_tars}"
        " --csv {output.csv} --representations {output.representations} --comparison {output.comparison} --vs-votes {output.vs_votes}"
        " --by-votes {output.by_votes} --disagreements {output.disagreements} > {log} 2>&1"
