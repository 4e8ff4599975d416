# The selected checkpoint as models to serve, beside the preprocessing.json that feeds them;
# only for the runs whose config lists `export` formats. Its inputs are the selection and the
# code of `vgg16 export`, so a new selection or an edit of that code exports again, and
# nothing else does.
rule export:
    input:
        best=RUN.select.best,
        recipe=RUN.train.recipe,
        code=code("export"),
    output:
        directory(RUN.export.path),
    log:
        RESULTS.log("export", "{run}"),
    resources:
        runtime=30,
        mem_mb=8000,
    params:
        vgg16=VGG16,
        formats=export_formats,
    shell:
        "{params.vgg16} export --config {input.recipe} --pre_trained {input.best} "
        "--file_format {params.formats} --output {output} > {log} 2>&1"
