rule plot:
    input:
        history="results/runs/{run}/train/history.csv",
        selection="results/runs/{run}/select/selection.csv",
        code=code("plot"),
    output:
        loss=report(
            "results/runs/{run}/plots/loss.png",
            caption="../report/loss.rst",
            category="{run}",
            subcategory="training",
        ),
        lr=report(
            "results/runs/{run}/plots/lr.png",
            caption="../report/lr.rst",
            category="{run}",
            subcategory="training",
        ),
        accuracy=report(
            "results/runs/{run}/plots/accuracy.png",
            caption="../report/accuracy.rst",
            category="{run}",
            subcategory="checkpoint selection",
        ),
    log:
        "results/logs/plot/{run}.log",
    params:
        vgg16=VGG16,
        folder=lambda w, output: Path(output[0]).parent,
    shell:
        "{params.vgg16} plot --history {input.history} --selection {input.selection} "
        "--output {params.folder} > {log} 2>&1"


rule summary:
    input:
        history=expand("results/runs/{run}/train/history.csv", run=RUNS),
        selection=expand("results/runs/{run}/select/selection.csv", run=RUNS),
        metrics=expand("results/runs/{run}/eval/metrics.json", run=RUNS),
        code=code("summary"),
    output:
        report(
            "results/summary.csv", caption="../report/summary.rst", category="Summary"
        ),
    log:
        "results/logs/summary.log",
    params:
        vgg16=VGG16,
        runs=RUNS,
        recipes=[config["runs"][run]["recipe"] for run in RUNS],
    shell:
        "{params.vgg16} summary --output {output} --runs {params.runs:q} "
        "--history {input.history:q} --selection {input.selection:q} "
        "--metrics {input.metrics:q} --recipes {params.recipes:q} > {log} 2>&1"
