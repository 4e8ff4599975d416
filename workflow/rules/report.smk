# One job per run draws all its figures: the test-set ones take a second, so redrawing the
# training plots when only the evaluation changed costs nothing worth a second rule.
rule plot:
    input:
        history=RUN.train.history,
        selection=RUN.select.selection,
        metrics=RUN.eval.metrics,
        confusion=RUN.eval.confusion,
        mistakes=RUN.eval.mistakes,
        mistake_images=RUN.eval.mistake_images,
        code=code("plot"),
    output:
        loss=report(
            RUN.plots.loss,
            caption="../report/loss.rst",
            category="{run}",
            subcategory="training",
        ),
        lr=report(
            RUN.plots.lr,
            caption="../report/lr.rst",
            category="{run}",
            subcategory="training",
        ),
        accuracy=report(
            RUN.plots.accuracy,
            caption="../report/accuracy.rst",
            category="{run}",
            subcategory="checkpoint selection",
        ),
        confusion=report(
            RUN.plots.confusion,
            caption="../report/confusion_plot.rst",
            category="{run}",
            subcategory="test set",
        ),
        per_class=report(
            RUN.plots.per_class,
            caption="../report/per_class.rst",
            category="{run}",
            subcategory="test set",
        ),
        mistakes=report(
            RUN.plots.mistakes,
            caption="../report/mistakes.rst",
            category="{run}",
            subcategory="mistakes",
        ),
    log:
        RESULTS.log("plot", "{run}"),
    params:
        vgg16=VGG16,
        eval=run_folder("eval"),
        folder=run_folder("plots"),
    shell:
        "{params.vgg16} plot --history {input.history} --selection {input.selection} "
        "--eval {params.eval} --output {params.folder} > {log} 2>&1"


rule summary:
    input:
        history=expand(RUN.train.history, run=RUNS),
        selection=expand(RUN.select.selection, run=RUNS),
        metrics=expand(RUN.eval.metrics, run=RUNS),
        code=code("summary"),
    output:
        table=report(
            RESULTS.summary, caption="../report/summary.rst", category="Summary"
        ),
        comparison=report(
            RESULTS.comparison,
            caption="../report/comparison.rst",
            category="Summary",
        ),
    log:
        RESULTS.log("summary"),
    params:
        vgg16=VGG16,
        runs=RUNS,
        recipes=[config["runs"][run]["recipe"] for run in RUNS],
    shell:
        "{params.vgg16} summary --output {output.table} --comparison {output.comparison} "
        "--runs {params.runs:q} "
        "--history {input.history:q} --selection {input.selection:q} "
        "--metrics {input.metrics:q} --recipes {params.recipes:q} > {log} 2>&1"
