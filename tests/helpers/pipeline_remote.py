"""Child process that runs the pipelines checkpoints carry, the way a colleague without genomic_models does.

Arguments: a JSON file naming the checkpoints and inputs (see tests/test_pipelines.py: polygene_classifier,
polygene_masked_lm, gperceiver, chromoformer, haplotype, seq2king, cells (.h5ad), genotypes and other_inputs
(.npz)) and the .npz to write every task's outputs to.
"""

import json
import sys
from pathlib import Path

sys.modules["genomic_models"] = None  # the package must not be importable here

import warnings  # noqa: E402

import anndata  # noqa: E402
import numpy as np  # noqa: E402
from transformers import pipeline  # noqa: E402

spec = json.loads(Path(sys.argv[1]).read_text())
output = sys.argv[2]
warnings.simplefilter("ignore")

try:
    pipeline("cell-classification", model=spec["polygene_classifier"])
except ValueError as error:  # a task the checkpoint carries runs only with trust_remote_code
    assert "trust_remote_code" in str(error), error
else:
    raise AssertionError("the checkpoint's pipeline ran without trust_remote_code")


def remote(task: str, checkpoint: str):
    pipe = pipeline(task, model=spec[checkpoint], trust_remote_code=True)
    assert type(pipe).__module__.startswith("transformers_modules"), type(pipe).__module__
    assert type(pipe.model).__module__.startswith("transformers_modules"), type(pipe.model).__module__
    return pipe


annotate = remote("cell-classification", "polygene_classifier")
embed = remote("cell-feature-extraction", "polygene_masked_lm")
generate = remote("cell-generation", "polygene_masked_lm")
predict = remote("phenotype-prediction", "gperceiver")
cells = anndata.read_h5ad(spec["cells"])
annotated = annotate(cells.copy(), batch_size=16)
embedded = embed(cells.copy(), batch_size=16)
generated = generate({"cell_type": "CD19+ B"}, num_cells=3, steps=2, seed=4)  # a dict: no anndata import here
try:
    annotate(spec["cells"])
except ValueError as error:
    assert "genomic_models package" in str(error), error
else:
    raise AssertionError("a path was read without the package")
genotypes = np.load(spec["genotypes"])
rows = predict({"names": list(genotypes["names"]), "markers": list(genotypes["markers"]), "codes": genotypes["codes"]})

inputs = np.load(spec["other_inputs"])
chromatin = remote("chromatin-expression-prediction", "chromoformer")
gene = {"promoter_signal": inputs["promoter"], "pcre_signals": [inputs["pcre"]], "strand": "-"}
expressed = chromatin({**gene, "interaction_scores": [1.2], "gene_id": "G"})
haplotype_inputs = [{"gene": gene, "genotypes": str(letters)} for gene, letters in zip(("G1", "G2"), inputs["letters"])]
expression = remote("haplotype-expression-prediction", "haplotype")(haplotype_inputs, batch_size=2)
haplotype_embeddings = remote("haplotype-feature-extraction", "haplotype")(haplotype_inputs, method="rolling", stride=3)
kinship = remote("kinship-prediction", "seq2king")(["P01", "P03", "P07", "P11"])
cohort = {"person_ids": [str(person) for person in inputs["persons"]], "kinship": inputs["kinship"]}
persons = remote("person-feature-extraction", "seq2king")(cohort, fit_steps=3, sequences_per_step=4, seed=1)
try:
    remote("person-feature-extraction", "seq2king")(spec["other_inputs"])
except ValueError as error:
    assert "genomic_models package" in str(error), error
else:
    raise AssertionError("a kinship file was read without the package")
imputer = remote("genotype-imputation", "imputer")
imputation_items = [{"chunk": str(inputs["imputation_chunk"]), "genotypes": row} for row in inputs["imputation_counts"]]
imputed = imputer(imputation_items, batch_size=2)
try:
    imputer(spec["other_inputs"], output="imputed.vcf.gz")
except ValueError as error:
    assert "genomic_models package" in str(error), error
else:
    raise AssertionError("a VCF was imputed without the package")

np.savez(
    output,
    imputed=np.stack([result["probabilities"] for result in imputed]),
    labels=np.array(annotated.obs["polygene_cell_type"].tolist()),
    probabilities=annotated.obsm["polygene_cell_type_probabilities"],
    embedding=embedded.obsm["X_polygene"],
    generated_bins=generated["bins"],
    predictions=np.array([row["prediction"] for row in rows]),
    chromatin_probability=np.array(expressed["probability"]),
    expression=np.array([result["expression"] for result in expression]),
    haplotype_embeddings=np.stack([result["embedding"] for result in haplotype_embeddings]),
    kinship=kinship["kinship"],
    person_embeddings=persons["embeddings"],
    in_vocabulary=persons["in_vocabulary"],
)
print("remote pipelines ok", type(annotate).__name__, type(predict).__name__, type(chromatin).__name__)
