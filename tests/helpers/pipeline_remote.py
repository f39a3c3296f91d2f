"""Child process that runs the pipelines a checkpoint carries, the way a colleague without genomic_models does.

Arguments: the Polygene classifier and masked-LM checkpoints, the gperceiver checkpoint, an .h5ad of cells, a .npz
of gperceiver inputs (names, markers, codes) and the .npz to write the outputs to.
"""

import sys

sys.modules["genomic_models"] = None  # the package must not be importable here

import warnings  # noqa: E402

import anndata  # noqa: E402
import numpy as np  # noqa: E402
from transformers import pipeline  # noqa: E402

classifier, masked_lm, gperceiver, cells_file, genotypes_file, output = sys.argv[1:7]
warnings.simplefilter("ignore")

try:
    pipeline("cell-classification", model=classifier)
except ValueError as error:  # a task the checkpoint carries runs only with trust_remote_code
    assert "trust_remote_code" in str(error), error
else:
    raise AssertionError("the checkpoint's pipeline ran without trust_remote_code")

annotate = pipeline("cell-classification", model=classifier, trust_remote_code=True)
embed = pipeline("cell-feature-extraction", model=masked_lm, trust_remote_code=True)
generate = pipeline("cell-generation", model=masked_lm, trust_remote_code=True)
predict = pipeline("phenotype-prediction", model=gperceiver, trust_remote_code=True)
for pipe in (annotate, embed, generate, predict):
    assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
    assert type(pipe.model).__module__.startswith("transformers_modules"), type(pipe.model).__module__

cells = anndata.read_h5ad(cells_file)
annotated = annotate(cells.copy(), batch_size=16)
embedded = embed(cells.copy(), batch_size=16)
generated = generate({"cell_type": "CD19+ B"}, num_cells=3, steps=2, seed=4)  # a dict: no anndata import here
try:
    annotate(cells_file)
except ValueError as error:
    assert "genomic_models package" in str(error), error
else:
    raise AssertionError("a path was read without the package")
genotypes = np.load(genotypes_file)
rows = predict({"names": list(genotypes["names"]), "markers": list(genotypes["markers"]), "codes": genotypes["codes"]})
np.savez(
    output,
    labels=np.array(annotated.obs["polygene_cell_type"].tolist()),
    probabilities=annotated.obsm["polygene_cell_type_probabilities"],
    embedding=embedded.obsm["X_polygene"],
    generated_bins=generated["bins"],
    predictions=np.array([row["prediction"] for row in rows]),
)
print("remote pipelines ok", type(annotate).__name__, type(predict).__name__)
