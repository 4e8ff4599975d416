from snakemake.utils import min_version

min_version("9.0")


# The digits demo, unless a config file is given (`--configfile FILE`), which then replaces it
# rather than adding to it. (`--replace-workflow-config` did that, but Snakemake 9.27 does not
# pass it on to the jobs it submits to a cluster, which would then add the demo's runs.)
if not workflow.config_settings.configfiles:

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
