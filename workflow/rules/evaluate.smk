rule select:
    input:
        history="results/runs/{run}/train/history.csv",
        manifest=run_manifest,
        recipe=run_recipe,
        code=code("evaluate"),
    output:
        table=report(
            "results/runs/{run}/select/selection.csv",
            caption="../report/selection.rst",
            category="{run}",
            subcategory="checkpoint selection",
        ),
        best="results/runs/{run}/select/best.ckpt",
    log:
        "results/logs/select/{run}.log",
    benchmark:
        "results/benchmarks/select/{run}.tsv"
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
        ckpt="results/runs/{run}/train/ckpt",
        folder=lambda w, output: Path(output[0]).parent,
        overrides=recipe_flags,
        parallel=parallel_flags,
    shell:
        "{params.vgg16} select --config {input.recipe} {params.overrides} {params.parallel} --data_path {params.data} "
        "--ckpt_path {params.ckpt} --output {params.folder} > {log} 2>&1"


rule evaluate:
    input:
        best="results/runs/{run}/select/best.ckpt",
        manifest=run_manifest,
        recipe=run_recipe,
        code=code("evaluate"),
    output:
        metrics=report(
            "results/runs/{run}/eval/metrics.json",
            caption="../report/metrics.rst",
            category="{run}",
            subcategory="test set",
        ),
        confusion=report(
            "results/runs/{run}/eval/confusion.csv",
            caption="../report/confusion.rst",
            category="{run}",
            subcategory="test set",
        ),
    log:
        "results/logs/evaluate/{run}.log",
    benchmark:
        "results/benchmarks/evaluate/{run}.tsv"
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
        folder=lambda w, output: Path(output[0]).parent,
        overrides=recipe_flags,
        parallel=parallel_flags,
        eval=eval_flags,
    shell:
        "{params.vgg16} eval --config {input.recipe} {params.overrides} {params.eval} {params.parallel} "
        "--data_path {params.data} --pre_trained {input.best} --output {params.folder} "
        "> {log} 2>&1"
