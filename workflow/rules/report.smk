# One job per run draws all its figures: the test-set ones take a second, so redrawing the
# training plots when only the evaluation changed costs nothing worth a second rule.
rule plot:
    input:
        history="results/runs/{run}/train/history.csv",
        selection="results/runs/{run}/select/selection.csv",
        metrics="results/runs/{run}/eval/metrics.json",
        confusion="results/runs/{run}/eval/confusion.csv",
        mistakes="results/runs/{run}/eval/mistakes.csv",
        mistake_images="results/runs/{run}/eval/mistakes.npz",
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
        confusion=report(
            "results/runs/{run}/plots/confusion.png",
            caption="../report/confusion_plot.rst",
            category="{run}",
            subcategory="test set",
        ),
        per_class=report(
            "results/runs/{run}/plots/per_class.png",
            caption="../report/per_class.rst",
            category="{run}",
            subcategory="test set",
        ),
        mistakes=report(
            "results/runs/{run}/plots/mistakes.png",
            caption="../report/mistakes.rst",
            category="{run}",
            subcategory="mistakes",
        ),
    log:
        "results/logs/plot/{run}.log",
    params:
        vgg16=VGG16,
        eval=lambda w, input: Path(input.metrics).parent,
        folder=lambda w, output: Path(output[0]).parent,
    shell:
        "{params.vgg16} plot --history {input.history} --selection {input.selection} "
        "--eval {params.eval} --output {params.folder} > {log} 2>&1"


rule summary:
    input:
        history=expand("results/runs/{run}/train/history.csv", run=RUNS),
        selection=expand("results/runs/{run}/select/selection.csv", run=RUNS),
        metrics=expand("results/runs/{run}/eval/metrics.json", run=RUNS),
        code=code("summary"),
    output:
        table=report(
            "results/summary.csv", caption="../report/summary.rst", category="Summary"
        ),
        comparison=report(
            "results/comparison.png",
            caption="../report/comparison.rst",
            category="Summary",
        ),
    log:
        "results/logs/summary.log",
    params:
        vgg16=VGG16,
        runs=RUNS,
        recipes=[config["runs"][run]["recipe"] for run in RUNS],
    shell:
        "{params.vgg16} summary --output {output.table} --comparison {output.comparison} "
        "--runs {params.runs:q} "
        "--history {input.history:q} --selection {input.selection:q} "
        "--metrics {input.metrics:q} --recipes {params.recipes:q} > {log} 2>&1"
