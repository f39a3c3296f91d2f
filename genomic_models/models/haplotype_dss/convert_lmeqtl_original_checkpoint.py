"""Convert an lm-eQTL checkpoint (`epoch_N_weights_model.pt`, a `DSSResNetEmb` state dict) to a transformers checkpoint.

    genomic-models-convert-lmeqtl epoch_100_weights_model.pt out_dir --gene_vocab genes.txt

The original derives its gene (segment) labels from the order in which genes first appear in its dataset.parquet and
does not store them; pass that order with `--gene_vocab` (one gene id per line; `gene_vocabulary(read_seed_layout(...))`
reproduces it), or the genes are named segment_0, segment_1, ...

The file is read with `torch.load(weights_only=True)`: tensors only, no unpickling of arbitrary objects. The original
pads every chunk to 5000 sites and does not mask padding; the converted config keeps `max_variants=5000` and sets
`mask_padding=False` so that padded inputs give the original's outputs exactly.
"""

from __future__ import annotations

import argparse
import os
import re

import torch

from genomic_models.tokenization import HaplotypeTokenizer

from .configuration_haplotype_dss import HaplotypeDSSConfig
from .modeling_haplotype_dss import HaplotypeDSSForMaskedLM

_RULES = [
    (r"^encoder\.(weight|bias)$", r"haplotype_dss.embeddings.stem.\1"),
    (r"^species_encoder\.species_embedder\.weight$", "haplotype_dss.embeddings.gene_embeddings.weight"),
    (r"^resnet_layer\.(\d+)\.conv([12])\.(.+)$", r"haplotype_dss.encoder.residual_blocks.\1.conv\2.\3"),
    (r"^resnet_layer\.(\d+)\.bn([12])\.(.+)$", r"haplotype_dss.encoder.residual_blocks.\1.norm\2.\3"),
    (r"^s4_layers\.(\d+)\.D$", r"haplotype_dss.encoder.layers.\1.mixer.D"),
    (r"^s4_layers\.(\d+)\.kernel\.(log_dt|Lambda|W)$", r"haplotype_dss.encoder.layers.\1.mixer.kernel.\2"),
    (r"^s4_layers\.(\d+)\.output_linear\.0\.(weight|bias)$", r"haplotype_dss.encoder.layers.\1.mixer.output_linear.\2"),
    (r"^norms\.(\d+)\.(weight|bias)$", r"haplotype_dss.encoder.layers.\1.norm.\2"),
    (r"^decoder\.(weight|bias)$", r"head.\1"),
]
# L1Block keeps its modules twice (as attributes and inside an nn.Sequential): the aliases carry no new tensors.
_ALIAS = re.compile(r"^resnet_layer\.\d+\.layer\.\d+\.")


def convert_state_dict(original: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the original's keys and reshape its pointwise linear (TransposedLinear -> 1x1 Conv1d)."""
    converted = {}
    for key, tensor in original.items():
        if _ALIAS.match(key):
            continue
        for pattern, replacement in _RULES:
            if re.match(pattern, key):
                new_key = re.sub(pattern, replacement, key)
                break
        else:
            raise KeyError(f"unexpected key {key!r} in the lm-eQTL checkpoint")
        if new_key.endswith("output_linear.weight"):
            tensor = tensor.unsqueeze(-1)
        elif new_key.endswith("output_linear.bias"):
            tensor = tensor.squeeze(-1)
        converted[new_key] = tensor
    return converted


def config_from_state_dict(original: dict[str, torch.Tensor], gene_vocab: list[str] | None) -> HaplotypeDSSConfig:
    hidden_size, classes, stem_kernel = original["encoder.weight"].shape
    layers = len({key.split(".")[1] for key in original if key.startswith("s4_layers.")})
    blocks = len({key.split(".")[1] for key in original if key.startswith("resnet_layer.")})
    genes = original.get("species_encoder.species_embedder.weight")
    n_genes = 0 if genes is None else genes.shape[0]
    if gene_vocab is not None and len(gene_vocab) != n_genes:
        raise ValueError(f"--gene_vocab lists {len(gene_vocab)} genes but the checkpoint embeds {n_genes}")
    return HaplotypeDSSConfig(
        num_allele_classes=classes,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        state_size=original["s4_layers.0.kernel.Lambda"].shape[0],
        stem_kernel_size=stem_kernel,
        head_kernel_size=original["decoder.weight"].shape[-1],
        num_residual_blocks=blocks,
        residual_kernel_size=original["resnet_layer.0.conv1.weight"].shape[-1] if blocks else 7,
        gene_vocab=gene_vocab if gene_vocab is not None else [f"segment_{index}" for index in range(n_genes)],
        use_gene_embedding=n_genes > 0,
        max_variants=5000,
        mask_padding=False,
    )


def convert_checkpoint(path: str | os.PathLike, gene_vocab: list[str] | None = None) -> HaplotypeDSSForMaskedLM:
    original = torch.load(path, map_location="cpu", weights_only=True)
    if "model" in original and isinstance(original["model"], dict):
        original = original["model"]
    config = config_from_state_dict(original, gene_vocab)
    model = HaplotypeDSSForMaskedLM(config)
    missing, unexpected = model.load_state_dict(convert_state_dict(original), strict=False)
    if missing or unexpected:
        raise KeyError(f"conversion left missing keys {missing} and unexpected keys {unexpected}")
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="lm-eQTL epoch_N_weights_model.pt")
    parser.add_argument("output_dir")
    parser.add_argument("--gene_vocab", help="file with the gene ids in embedding order, one per line")
    args = parser.parse_args(argv)
    genes = None
    if args.gene_vocab:
        with open(args.gene_vocab) as handle:
            genes = [line.strip() for line in handle if line.strip()]
    model = convert_checkpoint(args.checkpoint, genes)
    model.save_pretrained(args.output_dir)
    HaplotypeTokenizer(model_max_length=model.config.max_variants).save_pretrained(args.output_dir)
    print(
        f"wrote {args.output_dir}: {model.config.num_hidden_layers} layers, width {model.config.hidden_size}, "
        f"{model.config.num_genes} genes"
    )


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
