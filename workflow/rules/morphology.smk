rule morphology_chunk:
    input:
        model=rules.train.output.model,
        catalog=rules.query.output.catalog,
        labels=rules.labels.output.labels,
        tar=rules.scrape.output.tar,
        manifest=rules.scrape.output.manifest,
    output:
        chunk_csv=results("morphology/chunk_{chunk}.csv"),
        # each galaxy's representation, row for row; beside it their objids
        chunk_representations=results("morphology/chunk_{chunk}.representations.npy"),
        chunk_representations_objid=results(
            "morphology/chunk_{chunk}.representations_objid.npy"
        ),
    log:
        results("logs/morphology/chunk_{chunk}.log"),
    benchmark:
        results("benchmarks/morphology/chunk_{chunk}.tsv")
    wildcard_constraints:
        chunk=r"\d+",
    conda:
        "../../envs/learn.yaml"
    threads: 2
    resources:
        device=config["train"]["device"],
        batch_size=config["morphology"]["batch_size"],
    params:
        code=code("morphology"),
        settings=settings("scrape.chunks", "morphology"),
        files=files,
    shell:
        nightskynet("morphology-chunk")


rule morphology:
    input:
        chunk_csvs=expand(rules.morphology_chunk.output.chunk_csv, chunk=CHUNKS),
        chunk_representations=expand(
            rules.morphology_chunk.output.chunk_representations, chunk=CHUNKS
        ),
        chunk_representations_objid=expand(
            rules.morphology_chunk.output.chunk_representations_objid, chunk=CHUNKS
        ),
        chunk_tars=expand(rules.scrape.output.tar, chunk=CHUNKS),
    output:
        catalog=results(layout.CATALOG),
        catalog_fits=results(layout.CATALOG_FITS),
        # the catalog's rows' representations, row for row; beside it their objids
        representations=results(layout.REPRESENTATIONS),
        representations_objid=results(layout.REPRESENTATIONS_OBJID),
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
        files=files,
    shell:
        nightskynet("morphology")
