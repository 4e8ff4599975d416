rule download:
    input:
        code=code("download"),
    output:
        directory(DATA.raw),
    log:
        RESULTS.log("download", "{dataset}"),
    retries: 2
    resources:
        runtime=120,
        mem_mb=2000,
    params:
        vgg16=VGG16,
        format=lambda w: dataset_of(w)["format"],
        source=source_flags,
        downloads=str(DATA.downloads),
    shell:
        "{params.vgg16} download --dataset {params.format} {params.source} "
        "--downloads {params.downloads} --output {output} > {log} 2>&1"


rule verify:
    input:
        raw=DATA.raw,
        code=code("verify"),
    output:
        DATA.verified,
    log:
        RESULTS.log("verify", "{dataset}"),
    resources:
        runtime=240,
        mem_mb=2000,
    params:
        vgg16=VGG16,
        format=lambda w: dataset_of(w)["format"],
        num_classes=classes_flag,
        expect=expect_flags,
    shell:
        "{params.vgg16} verify --dataset {params.format} --data_path {input.raw} "
        "{params.num_classes} {params.expect} --output {output} > {log} 2>&1"


rule prepare:
    input:
        raw=DATA.raw,
        verified=DATA.verified,
        code=code("prepare"),
    output:
        DATA.prepared.manifest,
    log:
        RESULTS.log("prepare", "{dataset}"),
    benchmark:
        RESULTS.benchmark("prepare", "{dataset}")
    resources:
        runtime=600,
        mem_mb=8000,
    params:
        vgg16=VGG16,
        format=lambda w: dataset_of(w)["format"],
        folder=prepared_folder,
        val_fraction=lambda w: dataset_of(w)["val_fraction"],
        test_fraction=lambda w: dataset_of(w)["test_fraction"],
        shards=lambda w: dataset_of(w)["shards"],
        seed=lambda w: dataset_of(w)["seed"],
    shell:
        "{params.vgg16} prepare --dataset {params.format} --data_path {input.raw} "
        "--output {params.folder} --val_fraction {params.val_fraction} "
        "--test_fraction {params.test_fraction} "
        "--shards {params.shards} --seed {params.seed} > {log} 2>&1"


rule fetch:
    output:
        RESULTS.pretrained("{digest}", "{name}"),
    log:
        RESULTS.log("fetch", "{digest}/{name}"),
    retries: 2
    resources:
        runtime=120,
        mem_mb=2000,
    params:
        vgg16=VGG16,
        source=fetch_flags,
    shell:
        "{params.vgg16} fetch {params.source} --output {output} > {log} 2>&1"
