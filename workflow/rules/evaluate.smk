rule select:
    input:
        history="results/runs/{run}/train/history.csv",
        recipe="results/runs/{run}/train/recipe.yaml",
        manifest=run_manifest,
        code=code("select"),
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
        train=lambda w, input: Path(input.history).parent,
        folder=lambda w, output: Path(output.table).parent,
        parallel=parallel_flags,
    shell:
        "{params.vgg16} select --train {params.train} {params.parallel} "
        "--data_path {params.data} --output {params.folder} > {log} 2>&1"


rule evaluate:
    input:
        best="results/runs/{run}/select/best.ckpt",
        recipe="results/runs/{run}/train/recipe.yaml",
        manifest=run_manifest,
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
        mistakes=report(
            "results/runs/{run}/eval/mistakes.csv",
            caption="../report/mistakes_table.rst",
            category="{run}",
            subcategory="mistakes",
        ),
        mistake_images="results/runs/{run}/eval/mistakes.npz",
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
        folder=lambda w, output: Path(output.metrics).parent,
        parallel=parallel_flags,
        eval=eval_flags,
    shell:
        "{params.vgg16} evaluate --config {input.recipe} {params.eval} {params.parallel} "
        "--data_path {params.data} --pre_trained {input.best} --output {params.folder} "
        "> {log} 2>&1"
