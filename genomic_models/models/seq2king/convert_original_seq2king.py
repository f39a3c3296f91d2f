"""Convert a state dict of the original Seq2KING (src/lib/models.py TokenizedInputTransformer / TokenizedPopTransformer)
to this package's layout.

The original stacked torch's nn.TransformerEncoder/Decoder: attention projections are packed as one (3d, d)
`in_proj_weight`, layers name their norms norm1..norm3 and their feed-forward linear1/linear2, and the head is
`outshape`. Its decoder feed-forwards ran ReLU (see `Seq2KingConfig.decoder_hidden_act`), so a converted checkpoint
needs `decoder_hidden_act="relu"` to reproduce the original's outputs.

    python -m genomic_models.models.seq2king.convert_original_seq2king original.pt out_dir --hidden_size 120 ...
"""

from __future__ import annotations

import argparse
import re

import torch

_LAYER = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)$")
_ATTENTION = {"self_attn": "self_attn", "multihead_attn": "cross_attn"}
_NORMS = {
    "encoder": {"norm1": "self_attn_norm", "norm2": "feed_forward_norm"},
    "decoder": {"norm1": "self_attn_norm", "norm2": "cross_attn_norm", "norm3": "feed_forward_norm"},
}


def convert_original_state_dict(state_dict: dict[str, torch.Tensor], head: str = "kinship") -> dict[str, torch.Tensor]:
    """Map original keys to Seq2KingForKinshipRegression (head="kinship") or ...ForPopulationClassification
    (head="population") keys; packed attention projections are split into q, k and v."""
    if head not in ("kinship", "population"):
        raise ValueError(f"head must be 'kinship' or 'population', got {head!r}")
    converted: dict[str, torch.Tensor] = {}
    unused = []
    for key, tensor in state_dict.items():
        if key == "embed.weight":
            converted["seq2king.embeddings.person_embeddings.weight"] = tensor
        elif key.startswith("outshape."):
            name = "kinship_head" if head == "kinship" else "classifier"
            converted[f"{name}.{key.split('.', 1)[1]}"] = tensor
        elif key in ("encoder.norm.weight", "encoder.norm.bias", "decoder.norm.weight", "decoder.norm.bias"):
            converted[f"seq2king.{key}"] = tensor
        elif match := _LAYER.match(key):
            stack, index, rest = match.groups()
            prefix = f"seq2king.{stack}.layers.{index}."
            module, _, parameter = rest.partition(".")
            if module in _ATTENTION:
                target = prefix + _ATTENTION[module] + "."
                if parameter in ("in_proj_weight", "in_proj_bias"):
                    suffix = "weight" if parameter == "in_proj_weight" else "bias"
                    for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                        converted[f"{target}{name}.{suffix}"] = part.clone()
                elif parameter.startswith("out_proj."):
                    converted[target + "o_proj." + parameter.split(".", 1)[1]] = tensor
                else:
                    unused.append(key)
            elif module in _NORMS[stack]:
                converted[prefix + _NORMS[stack][module] + "." + parameter] = tensor
            elif module in ("linear1", "linear2"):
                name = "up_proj" if module == "linear1" else "down_proj"
                converted[f"{prefix}feed_forward.{name}.{parameter}"] = tensor
            else:
                unused.append(key)
        else:
            unused.append(key)
    if unused:
        raise KeyError(f"keys of the original state dict this converter does not know: {unused[:5]}")
    return converted


def main(argv: list[str] | None = None) -> None:
    from . import Seq2KingConfig, Seq2KingForKinshipRegression, Seq2KingForPopulationClassification

    parser = argparse.ArgumentParser(description="Convert an original Seq2KING state dict to a checkpoint folder.")
    parser.add_argument("state_dict", help="torch.save'd state dict of the original model (loaded weights_only)")
    parser.add_argument("output_dir")
    parser.add_argument("--head", choices=("kinship", "population"), default="kinship")
    parser.add_argument("--num_attention_heads", type=int, default=1)
    parser.add_argument("--num_encoder_layers", type=int, default=3)
    parser.add_argument("--num_decoder_layers", type=int, default=2)
    parser.add_argument("--no_positional_encoding", action="store_true")
    args = parser.parse_args(argv)
    state = convert_original_state_dict(torch.load(args.state_dict, map_location="cpu", weights_only=True), args.head)
    vocab_size, hidden_size = state["seq2king.embeddings.person_embeddings.weight"].shape
    head = state["kinship_head.weight" if args.head == "kinship" else "classifier.weight"]
    config = Seq2KingConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        pad_token_id=vocab_size - 1,
        num_attention_heads=args.num_attention_heads,
        num_encoder_layers=args.num_encoder_layers,
        num_decoder_layers=args.num_decoder_layers,
        intermediate_size=state["seq2king.encoder.layers.0.feed_forward.up_proj.weight"].shape[0],
        decoder_hidden_act="relu",
        use_positional_encoding=not args.no_positional_encoding,
        max_sequence_length=head.shape[0] if args.head == "kinship" else 100,
        num_labels=head.shape[0] if args.head == "population" else 2,
    )
    model_class = Seq2KingForKinshipRegression if args.head == "kinship" else Seq2KingForPopulationClassification
    model = model_class(config)
    model.load_state_dict(state, strict=True)
    model.save_pretrained(args.output_dir)
    print(f"wrote {args.output_dir}")


if __name__ == "__main__":
    from genomic_models.console import run_command

    run_command(main)
