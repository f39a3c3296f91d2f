"""Tiny stand-ins for the checkpoints the README's Python snippets name, built in a folder the snippets run in.

- `quickstart_output`: a haplotype-dss masked LM with its tokenizer (what training_scripts/quickstart.sh writes);
- `finetuned`: a haplotype-dss expression head whose genes are chunks of the real chr20 panel, with its
  `chunk_sites.tsv` (what run_expression.py writes);
- `s2k`: a Seq2KING kinship head with its tokenizer (what genomic-models-run-seq2king writes);
- `out`: a Chromoformer classifier with the synthetic genome under `out/data` (what
  `run_chromoformer.py --simulate --output_dir out` writes).

The models are untrained: the snippets show how to call them, not what they predict.
"""

from __future__ import annotations

from pathlib import Path

import torch

CHR20_PANEL = Path("/usr/share/doc/shapeit4/examples/test/reference.vcf.gz")


def build_snippet_checkpoints(root: Path) -> Path:
    from genomic_models import (
        ChromoformerConfig,
        ChromoformerFeatureExtractor,
        ChromoformerForSequenceClassification,
        HaplotypeDSSConfig,
        HaplotypeDSSForExpressionRegression,
        HaplotypeDSSForMaskedLM,
        HaplotypeTokenizer,
        KinshipTokenizer,
        Seq2KingConfig,
        Seq2KingForKinshipRegression,
    )
    from genomic_models.data import load_haplotype_cohort, place_genes, read_vcf, select_common_snps
    from genomic_models.data.haplotypes import write_chunk_sites
    from genomic_models.data.simulate_chromatin import simulate_chromatin

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tiny = dict(hidden_size=8, num_hidden_layers=2, state_size=4, num_residual_blocks=1)

    mlm = HaplotypeDSSForMaskedLM(HaplotypeDSSConfig(**tiny, gene_vocab=["SIMG0001", "SIMG0002"], max_variants=300))
    mlm.save_pretrained(root / "quickstart_output")
    HaplotypeTokenizer(model_max_length=300).save_pretrained(root / "quickstart_output")

    region = "20:1000000-1300000"
    genes = place_genes(select_common_snps(read_vcf(CHR20_PANEL, region=region)).variants, 2, seed=0, margin=30_000)
    cohort = load_haplotype_cohort(CHR20_PANEL, gene_table=genes, region=region, window=30_000, max_variants=40)
    labels = [chunk.label for chunk in cohort.chunks]
    config = HaplotypeDSSConfig(**tiny, gene_vocab=labels, max_variants=40, num_labels=1, problem_type="regression")
    head = HaplotypeDSSForExpressionRegression(config)
    head.config.expression_scaling = {gene: [2.0, 0.5] for gene in labels}
    head.save_pretrained(root / "finetuned")
    HaplotypeTokenizer(model_max_length=40).save_pretrained(root / "finetuned")
    write_chunk_sites(cohort.sites(), root / "finetuned")

    persons = [f"P{index:03d}" for index in range(30)]
    tokenizer = KinshipTokenizer(person_ids=persons, model_max_length=12)
    seq2king = Seq2KingForKinshipRegression(
        Seq2KingConfig(
            vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id, hidden_size=12,
            num_attention_heads=2, intermediate_size=16, num_encoder_layers=1, num_decoder_layers=1,
            max_sequence_length=12, kinship_min=-0.3, kinship_max=0.5,
        )  # fmt: skip
    )
    seq2king.save_pretrained(root / "s2k")
    tokenizer.save_pretrained(root / "s2k")

    chromoformer = ChromoformerForSequenceClassification(
        ChromoformerConfig(
            hidden_size=16, embedding_intermediate_size=16, pairwise_intermediate_size=16, regulation_num_layers=1,
            regulation_num_heads=2, regulation_attention_size=16, regulation_intermediate_size=16, head_hidden_size=8,
        )  # fmt: skip
    )
    chromoformer.save_pretrained(root / "out")
    ChromoformerFeatureExtractor().save_pretrained(root / "out")
    simulate_chromatin(root / "out" / "data", n_genes=4, seed=0, write_npy=False)
    return root


__all__ = ["CHR20_PANEL", "build_snippet_checkpoints"]
