from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"


rule all:
    input:
        RESULTS.summary,
        RESULTS.comparison,
        expand(RUN.plots.files(), run=RUNS),
        expand(RUN.export.path, run=EXPORTED),
