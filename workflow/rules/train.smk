# Checkpoints live in the run's train folder but are deliberately not a declared output:
# Snakemake deletes declared outputs before a job runs, and an interrupted run must resume
# from them.
rule train:
    input:
        manifest=run_manifest,
        recipe=run_recipe,
        pre_trained=pre_trained,
        code=code("train"),
    output:
        history=RUN.train.history,
        recipe=report(
            RUN.train.recipe,
            caption="../report/recipe.rst",
            category="{run}",
            subcategory="recipe",
        ),
    log:
        RESULTS.log("train", "{run}"),
    benchmark:
        RESULTS.benchmark("train", "{run}")
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
        folder=run_folder("train"),
        overrides=recipe_flags,
        parallel=parallel_flags,
        start=lambda w, input: (
            f"--pre_trained {input.pre_trained}" if input.pre_trained else ""
        ),
    shell:
        "{params.vgg16} train --config {input.recipe} {params.overrides} {params.parallel} "
        "{params.start} --data_path {params.data} --output {params.folder} > {log} 2>&1"
