"""Console commands that answer questions about new data with a trained checkpoint, through the pipelines.

Each command reads the user's files with the package's readers, feeds them to a `genomic_models.pipelines` task in
blocks (the file is never held whole when the format allows it), and writes the field's standard file: an annotated
copy of the h5ad, a TSV or Parquet table. The same command runs on one process or several (`accelerate launch`,
`torchrun`): each process takes one contiguous block of the items (`genomic_models.inference.process_block`), the
main process gathers the results in input order and writes the output, and progress shows on the main process.

    single_cell  genomic-models-annotate-cells       cell-classification              h5ad -> h5ad [+ table]
                 genomic-models-embed-cells          cell-feature-extraction          h5ad -> h5ad, Parquet or TSV
                 genomic-models-generate-cells       cell-generation                  labels -> h5ad
    phenotypes   genomic-models-predict-phenotypes   phenotype-prediction             VCF/PLINK/markers.tsv -> TSV
    chromatin    genomic-models-chromoformer-predict chromatin-expression-prediction  bigWig/.npy + genes -> table
    haplotypes   genomic-models-haplotype-predict    haplotype-expression-prediction  phased VCF -> table
                 genomic-models-embed                haplotype-feature-extraction     phased VCF -> Parquet
    imputation   genomic-models-impute               genotype-imputation              VCF/BCF -> imputed VCF.gz
    kinship      genomic-models-seq2king-embed       person-feature-extraction        VCF/PLINK/KING -> table + PNG
                 genomic-models-seq2king-kinship     kinship-prediction               cohort -> .kin0 or table

A command is `<name>_main(argv)` in `genomic_models/commands/<domain>.py`: `common.parse_arguments` reads
`common.CheckpointArguments` (model_name_or_path, batch_size, device, trust_remote_code) and the command's own
dataclasses, `common.start_command(task, checkpoint)` joins the processes (`genomic_models.inference`) and loads the
pipeline on this process's device, `common.check_output_path` refuses an unwritable output before any work, and the
main process writes and logs one summary line (returning what it wrote; other processes return None). `python -m
genomic_models.commands.<domain> [COMMAND] ...` runs the same under `accelerate launch -m` or `torchrun -m`.
(`genomic-models-generate-cells` is training_scripts/generate_expression.py; `genomic-models-embed` lives with
the expression workflow in genomic_models/expression_cli.py.)
"""
