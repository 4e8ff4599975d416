rule select:
    input:
        history=RUN.train.history,
        recipe=RUN.train.recipe,
        manifest=run_manifest,
        code=code("select"),
    output:
        table=report(
            RUN.select.selection,
            caption="../report/selection.rst",
            category="{run}",
            subcategory="checkpoint selection",
        ),
        best=RUN.select.best,
    log:
        RESULTS.log("select", "{run}"),
    benchmark:
        RESULTS.benchmark("select", "{run}")
    threads: 8
    resources:
        workers=workers,
        nodes=1,
        gpu=0,
        mem_mb=8000,
        runtime=240,
    params:
        vgg16=VGG16,
        data=run_data,
        train=run_folder("train"),
        folder=run_folder("select"),
        parallel=parallel_flags,
    shell:
        "{params.vgg16} select --train {params.train} {params.parallel} "
        "--data_path {params.data} --output {params.folder} > {log} 2>&1"


rule evaluate:
    input:
        best=RUN.select.best,
        recipe=RUN.train.recipe,
        manifest=run_manifest,
        code=code("evaluate"),
    output:
        metrics=report(
            RUN.eval.metrics,
            caption="../report/metrics.rst",
            category="{run}",
            subcategory="test set",
        ),
        confusion=report(
            RUN.eval.confusion,
            caption="../report/confusion.rst",
            category="{run}",
            subcategory="test set",
        ),
        mistakes=report(
            RUN.eval.mistakes,
            caption="../report/mistakes_table.rst",
            category="{run}",
            subcategory="mistakes",
        ),
        mistake_images=RUN.eval.mistake_images,
    log:
        RESULTS.log("evaluate", "{run}"),
    benchmark:
        RESULTS.benchmark("evaluate", "{run}")
    threads: 8
    resources:
        workers=workers,
        nodes=1,
        gpu=0,
        mem_mb=8000,
        runtime=120,
    params:
        vgg16=VGG16,
        data=run_data,
        folder=run_folder("eval"),
        parallel=parallel_flags,
        eval=eval_flags,
    shell:
        "{params.vgg16} evaluate --config {input.recipe} {params.eval} {params.parallel} "
        "--data_path {params.data} --pre_trained {input.best} --output {params.folder} "
        "> {log} 2>&1"
