"""One row per run, from each run's history, selection and test metrics."""

import sys
from pathlib import Path

# As the snakemake-workflows scripts do: everything this script reports goes to the rule's log.
sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 (`snakemake` is injected)

from vgg16.report import format_table, summarise  # noqa: E402

sm = snakemake  # noqa: F821
columns = zip(
    sm.params.runs,
    sm.input.history,
    sm.input.selection,
    sm.input.metrics,
    sm.params.recipes,
    strict=True,
)
runs = {
    run: {"history": Path(h), "selection": Path(s), "metrics": Path(m), "recipe": Path(r)}
    for run, h, s, m, r in columns
}
print(format_table(summarise(runs, Path(sm.output[0]))), file=sys.stderr)
