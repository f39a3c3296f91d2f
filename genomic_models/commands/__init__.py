"""Console commands that answer questions about new data with a trained checkpoint, through the pipelines.

Each command reads the user's files with the package's readers, feeds them to a `genomic_models.pipelines` task in
blocks (the file is never held whole when the format allows it), and writes the field's standard file: an annotated
copy of the h5ad, a TSV or Parquet table. The same command runs on one process or several (`accelerate launch`,
`torchrun`): each process takes one contiguous block of the items (`genomic_models.inference.process_block`), the
main process gathers the results in input order and writes the output, and progress shows on the main process.

    genomic-models-annotate-cells    cell-classification      h5ad -> h5ad (obs, obsm) [+ TSV/Parquet table]
    genomic-models-embed-cells       cell-feature-extraction  h5ad -> h5ad (obsm["X_polygene"]), Parquet or TSV
    genomic-models-generate-cells    cell-generation          control labels -> h5ad
    genomic-models-predict-phenotypes phenotype-prediction    VCF/BCF, PLINK or markers.tsv -> predictions TSV
"""
