# Checkpoints live in train/ckpt/, which is deliberately not a declared output: Snakemake
# deletes declared outputs before a job runs, and an interrupted run must resume from them.
rule train:
    input:
        manifest=run_manifest,
        recipe=run_recipe,
        code=code("train"),
    output:
        history="results/runs/{run}/train/history.csv",
        recipe=report(
            "results/runs/{run}/train/recipe.yaml",
            caption="../report/recipe.rst",
            category="{run}",
            subcategory="recipe",
        ),
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    threads: 8
    resources:
        workers=workers,
        nodes=1,
        gpu=0,
        mem_mb=16000,
        runtime=2880,
    params:
        vgg16=VGG16,
        data=run_data,
        folder=lambda w, output: Path(output.history).parent,
        overrides=recipe_flags,
        parallel=parallel_flags,
    shell:
        "{params.vgg16} train --config {input.recipe} {params.overrides} {params.parallel} "
        "--data_path {params.data} --output {params.folder} > {log} 2>&1"
