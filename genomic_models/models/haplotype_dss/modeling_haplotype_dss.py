"""PyTorch haplotype masked language model of lm-eQTL: a bidirectional diagonal state-space (DSS) network.

The network reads one haplotype of one gene chunk (letters R, A, N at up to 5000 common variants around a TSS) and
predicts masked letters. It is not a transformer: a convolutional stem, a per-gene embedding, residual convolution
blocks, a stack of bidirectional DSS layers evaluated as long FFT convolutions, and a convolutional head. A second
head predicts a gene's expression from both haplotypes of a person (the lm-eQTL finetuning question).

This file travels with hub checkpoints (trust_remote_code), so it imports only torch, transformers and its sibling.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput
from transformers.utils import torch_compilable_check

from .configuration_haplotype_dss import HaplotypeDSSConfig


def _pad_mask(attention_mask: torch.Tensor | None, config: HaplotypeDSSConfig) -> torch.Tensor | None:
    """(B, 1, L) multiplier that zeroes padded positions, or None when padding is not masked."""
    if attention_mask is None or not config.mask_padding:
        return None
    return attention_mask[:, None, :]


def _apply_pad_mask(hidden_states: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """Zero padded positions; `pad_mask` is (B, 1, L) for channels-first states, (B, L, 1) for channels-last ones."""
    return hidden_states if pad_mask is None else hidden_states * pad_mask.to(hidden_states.dtype)


class HaplotypeDSSEmbeddings(nn.Module):
    """One-hot letters through a wide convolution, plus a learned vector of the chunk's gene at every position.

    Special tokens ([PAD], [MASK]) enter as all-zero vectors, exactly as the original encodes masked and padded sites.
    """

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        self.num_allele_classes = config.num_allele_classes
        self.stem = nn.Conv1d(
            config.num_allele_classes,
            config.hidden_size,
            kernel_size=config.stem_kernel_size,
            padding=config.stem_kernel_size // 2,
        )
        self.gene_embeddings = nn.Embedding(config.num_genes, config.hidden_size) if config.num_genes else None
        self.site_embeddings = HaplotypeDSSSiteEmbeddings(config) if config.site_embedding_size else None

    def forward(
        self,
        input_ids: torch.LongTensor,
        gene_ids: torch.LongTensor | None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        classes = self.num_allele_classes
        one_hot = F.one_hot(input_ids.clamp(0, classes), classes + 1)[..., :classes]
        hidden_states = self.stem(one_hot.transpose(1, 2).to(self.stem.weight.dtype))
        if self.site_embeddings is not None:
            hidden_states = hidden_states + self.site_embeddings(input_ids, gene_ids, attention_mask)
        # Value checks are graph-friendly: errors in eager mode, runtime assertions under torch.compile / torch.export.
        if self.gene_embeddings is not None:
            if gene_ids is None:
                raise ValueError("This model has a gene embedding: pass `gene_ids` (one gene index per sequence).")
            genes = self.gene_embeddings.num_embeddings
            torch_compilable_check(
                ((gene_ids >= 0) & (gene_ids < genes)).all(),
                lambda: f"gene_ids must lie in [0, {genes}); got {gene_ids.tolist()[:8]}",
            )
            hidden_states = hidden_states + self.gene_embeddings(gene_ids)[:, :, None]
        elif gene_ids is not None:
            torch_compilable_check(
                (gene_ids == 0).all(),
                "This model is gene-agnostic (no gene embedding) but received non-zero `gene_ids`.",
            )
        return hidden_states


class HaplotypeDSSSiteEmbeddings(nn.Module):
    """A learned vector per (gene, site position, input state), projected to the hidden size.

    States are the letters 0..num_allele_classes-1 and one more for [MASK]/[PAD]: a site's vector tells the network
    both which site it is and what was observed there, which shift-invariant convolutions cannot. A site's position is
    its rank among the sequence's non-padded sites, so any padding side gives the same result.
    """

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        self.max_variants = config.max_variants
        self.states = config.num_allele_classes + 1
        rows = max(config.num_genes, 1) * config.max_variants * self.states
        self.table = nn.Embedding(rows, config.site_embedding_size)
        self.projection = nn.Linear(config.site_embedding_size, config.hidden_size, bias=False)

    def forward(
        self, input_ids: torch.LongTensor, gene_ids: torch.LongTensor | None, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, hidden_size, L) site vectors."""
        if attention_mask is None:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        else:
            positions = (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
        if positions.shape[1] and int(positions.max()) >= self.max_variants:
            raise ValueError(f"a sequence has more than config.max_variants={self.max_variants} sites")
        genes_in_table = self.table.num_embeddings // (self.max_variants * self.states)
        genes = gene_ids if gene_ids is not None and genes_in_table > 1 else torch.zeros_like(positions[:, 0])
        states = input_ids.clamp(0, self.states - 1)
        rows = (genes[:, None] * self.max_variants + positions) * self.states + states
        return self.projection(self.table(rows)).transpose(1, 2)


class HaplotypeDSSResidualBlock(nn.Module):
    """conv -> BatchNorm -> ReLU -> conv -> BatchNorm, plus the input, then ReLU (the original's L1Block)."""

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        width, kernel = config.hidden_size, config.residual_kernel_size
        self.conv1 = nn.Conv1d(width, width, kernel_size=kernel, padding=kernel // 2)
        self.norm1 = nn.BatchNorm1d(width, eps=config.batch_norm_eps)
        self.conv2 = nn.Conv1d(width, width, kernel_size=kernel, padding=kernel // 2)
        self.norm2 = nn.BatchNorm1d(width, eps=config.batch_norm_eps)

    def forward(self, hidden_states: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        inner = _apply_pad_mask(F.relu(self.norm1(self.conv1(hidden_states))), pad_mask)
        return _apply_pad_mask(F.relu(self.norm2(self.conv2(inner)) + hidden_states), pad_mask)


def hippo_skew_eigenvalues(state_size: int) -> torch.Tensor:
    """Eigenvalues with positive imaginary part of the skew-symmetric part of the HiPPO-LegS matrix, shifted by -0.5.

    This is DSS's `hippo_skew_pos_imag` initialisation of Lambda (Gupta et al. 2022), returned as complex128 [N].
    """
    rank = torch.arange(2 * state_size, dtype=torch.float64)
    scale = (2 * rank + 1).sqrt()
    hippo = torch.tril(scale[:, None] * scale[None, :], diagonal=-1)
    eigenvalues = torch.linalg.eigvals((hippo - hippo.T) / 2)
    eigenvalues = eigenvalues[eigenvalues.imag.argsort(descending=True)]
    return eigenvalues[:state_size] - 0.5


class HaplotypeDSSKernel(nn.Module):
    """Softmax-normalised diagonal state-space kernel (DSS_softmax), one per channel and direction.

    Complex parameters are stored as real tensors with a trailing (real, imag) axis, so optimisers treat both parts
    alike.
    """

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        directions = 2 if config.bidirectional else 1
        self.epsilon = config.kernel_epsilon
        self.log_dt = nn.Parameter(torch.empty(config.hidden_size, 2))
        self.Lambda = nn.Parameter(torch.empty(config.state_size, 2))
        self.W = nn.Parameter(torch.empty(directions, config.hidden_size, config.state_size, 2))

    def forward(self, length: int, normalization_length: int | None = None) -> torch.Tensor:
        """Real kernels at lags 0..length-1, shape (directions, hidden_size, length), computed in float32.

        DSS_softmax divides each mode by its sum over `normalization_length` positions. The original always padded
        chunks to 5000 sites, so its kernels were normalised over 5000; fixing this length (the config's
        `max_variants`) keeps a chunk's outputs independent of how much padding its batch needed.
        """
        normalization_length = normalization_length or length
        if length > normalization_length:
            raise ValueError(f"kernel lags {length} exceed the normalisation length {normalization_length}")
        lambda_ = torch.view_as_complex(self.Lambda.float().contiguous())
        dt = self.log_dt.float().exp()
        dt_lambda = torch.complex(dt[:, :1] * lambda_.real, dt[:, 1:] * lambda_.imag)  # (H, N)
        positive = lambda_.real > 0
        # Keep exp() bounded for growing modes; the normalisation below is invariant to this shift.
        shift = (dt_lambda * positive * (normalization_length - 1)).detach()
        dt_lambda_neg = dt_lambda * (1 - 2 * positive.to(dt.dtype))
        numerator = dt_lambda_neg.exp() - 1
        denominator = ((dt_lambda_neg * normalization_length).exp() - 1) * lambda_
        # 1 / (sum over positions of the powers), with a bounded-norm reciprocal as in DSS.
        reciprocal = denominator.conj() / (denominator * denominator.conj() + self.epsilon)
        weights = torch.view_as_complex(self.W.float().contiguous()) * numerator * reciprocal  # (D, H, N)
        return self._vandermonde(weights, dt_lambda, shift, length)

    @staticmethod
    def _vandermonde(weights: torch.Tensor, dt_lambda: torch.Tensor, shift: torch.Tensor, length: int) -> torch.Tensor:
        """Re(sum_n weights[d,h,n] * exp(dt_lambda[h,n] * l - shift[h,n])) for l < length, as (D, H, length).

        Position l is split as a * block + b, so exp() runs on (H, N, ~2 sqrt(L)) values and the sum over n becomes a
        batched complex matmul, instead of exponentiating the full (H, N, L) tensor (about 40x faster at L=5000).
        """
        block = math.isqrt(length - 1) + 1
        blocks = -(-length // block)
        steps = torch.arange(block, device=dt_lambda.device, dtype=torch.float32)
        block_starts = torch.arange(blocks, device=dt_lambda.device, dtype=torch.float32) * block
        outer = (dt_lambda.unsqueeze(-1) * block_starts - shift.unsqueeze(-1)).exp()  # (H, N, A)
        inner = (dt_lambda.unsqueeze(-1) * steps).exp()  # (H, N, B)
        directions, hidden, state = weights.shape
        left = weights.permute(1, 0, 2).unsqueeze(2) * outer.transpose(1, 2).unsqueeze(1)  # (H, D, A, N)
        kernel = torch.matmul(left.reshape(hidden, directions * blocks, state), inner)  # (H, D*A, B)
        kernel = kernel.reshape(hidden, directions, blocks * block)[..., :length]
        return kernel.real.transpose(0, 1)


class HaplotypeDSSMixer(nn.Module):
    """One DSS sequence mixer: long convolution with the DSS kernel(s), D skip, GELU, then a pointwise GLU."""

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        self.bidirectional = config.bidirectional
        self.max_variants = config.max_variants
        self.kernel = HaplotypeDSSKernel(config)
        self.D = nn.Parameter(torch.empty(1, config.hidden_size))
        self.dropout = nn.Dropout1d(config.hidden_dropout_prob)
        self.output_linear = nn.Conv1d(config.hidden_size, 2 * config.hidden_size, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        length = hidden_states.shape[-1]
        if length > self.max_variants:
            raise ValueError(f"sequence of {length} variants is longer than config.max_variants={self.max_variants}")
        kernel = self.kernel(length, self.max_variants)
        if self.bidirectional:
            # Causal kernel on lags 0..L-1, the flipped anti-causal one on lags -L..-1 of a 2L circular convolution.
            kernel = F.pad(kernel[0], (0, length)) + F.pad(kernel[1].flip(-1), (length, 0))
        else:
            kernel = kernel[0]
        fft_size = 2 * length
        with torch.autocast(device_type=hidden_states.device.type, enabled=False):
            signal = hidden_states.float()
            spectrum = torch.fft.rfft(signal, n=fft_size) * torch.fft.rfft(kernel, n=fft_size)
            mixed = torch.fft.irfft(spectrum, n=fft_size)[..., :length] + signal * self.D.float().reshape(-1, 1)
        mixed = self.dropout(F.gelu(mixed.to(hidden_states.dtype)))
        return F.glu(self.output_linear(mixed), dim=1)


class HaplotypeDSSLayer(GradientCheckpointingLayer):
    """DSS mixer -> channel dropout -> residual -> post LayerNorm over channels.

    It takes and returns channels-last (B, L, H) states, so the hidden states the encoder collects are the very
    tensors that flow from layer to layer (in the autograd graph, as transformers' contract expects).
    """

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        self.mixer = HaplotypeDSSMixer(config)
        self.dropout = nn.Dropout1d(config.hidden_dropout_prob)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden_states (B, L, H); pad_mask (B, L, 1) or None."""
        mixed = self.dropout(self.mixer(hidden_states.transpose(1, 2))).transpose(1, 2)
        return _apply_pad_mask(self.norm(mixed + hidden_states), pad_mask)


class HaplotypeDSSEncoder(nn.Module):
    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        blocks = config.num_residual_blocks
        self.residual_blocks = nn.ModuleList(HaplotypeDSSResidualBlock(config) for _ in range(blocks))
        self.layers = nn.ModuleList(HaplotypeDSSLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self, hidden_states: torch.Tensor, pad_mask: torch.Tensor | None, output_hidden_states: bool
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Channels-first (B, H, L) in (the stem's output), channels-last (B, L, H) out, like every transformers model.

        The hidden states are the output of the residual blocks, then of every DSS layer: the states the layers take
        and return, so gradients reach them.
        """
        for block in self.residual_blocks:
            hidden_states = block(hidden_states, pad_mask)
        hidden_states = hidden_states.transpose(1, 2)
        position_mask = pad_mask.transpose(1, 2) if pad_mask is not None else None
        all_hidden_states = [hidden_states] if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states, position_mask)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
        return hidden_states, tuple(all_hidden_states) if output_hidden_states else None


class HaplotypeDSSExpressionPooler(nn.Module):
    """One vector per haplotype from its per-variant hidden states.

    - "mean": the mean over variants (the embedding lm-eQTL regressed expression on).
    - "attention": softmax attention with a learned query per gene; the query starts at zero, so an untrained
      attention pooler is exactly the mean.
    - "position": a learned weight per gene and variant position (index in the chunk, padding on the right), so the
      head can give each SNP its own effect, which a mean averages away. It starts at zero.
    """

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__()
        self.mode = config.expression_pooling
        rows = max(config.num_genes, 1)
        self.query = nn.Parameter(torch.empty(rows, config.hidden_size)) if self.mode == "attention" else None
        self.position_weight = nn.Parameter(torch.empty(rows, config.max_variants)) if self.mode == "position" else None

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, gene_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """(N, L, H) hidden states, (N, L) mask, (N,) genes -> (N, H)."""
        if attention_mask is None:
            attention_mask = torch.ones(hidden_states.shape[:2], device=hidden_states.device)
        mask = attention_mask.to(hidden_states.dtype)
        if self.mode == "mean":
            return (hidden_states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        table = self.query if self.query is not None else self.position_weight
        rows = gene_ids if gene_ids is not None and table.shape[0] > 1 else torch.zeros_like(mask[:, 0]).long()
        if self.position_weight is not None:
            weights = self.position_weight[rows][:, : hidden_states.shape[1]] * mask
            return torch.einsum("nl,nlh->nh", weights, hidden_states)
        scores = torch.einsum("nlh,nh->nl", hidden_states, self.query[rows]) / math.sqrt(hidden_states.shape[-1])
        weights = torch.softmax(scores.float().masked_fill(mask == 0, float("-inf")), dim=-1).to(hidden_states.dtype)
        return torch.einsum("nl,nlh->nh", weights, hidden_states)


class HaplotypeDSSExpressionReadout(nn.Module):
    """Linear map from a person's combined features to `num_labels` expression values, one map per gene or shared."""

    def __init__(self, config: HaplotypeDSSConfig, width: int):
        super().__init__()
        rows = config.num_genes if config.expression_readout == "per_gene" and config.num_genes else 1
        self.weight = nn.Parameter(torch.empty(rows, config.num_labels, width))
        self.bias = nn.Parameter(torch.empty(rows, config.num_labels))

    def forward(self, features: torch.Tensor, gene_ids: torch.Tensor | None) -> torch.Tensor:
        if self.weight.shape[0] == 1:
            rows = torch.zeros(features.shape[0], dtype=torch.long, device=features.device)
        elif gene_ids is None:
            raise ValueError("This expression head has one readout per gene: pass `gene_ids`.")
        else:
            rows = gene_ids
        return torch.einsum("bw,blw->bl", features, self.weight[rows]) + self.bias[rows]


class HaplotypeDSSPreTrainedModel(PreTrainedModel):
    config_class = HaplotypeDSSConfig
    config: HaplotypeDSSConfig
    base_model_prefix = "haplotype_dss"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["HaplotypeDSSLayer"]
    # Losses are sums divided by `num_items_in_batch`, so Trainer's averaging over ranks and accumulation is exact.
    accepts_loss_kwargs = True
    # Every head lives in this file, so a checkpoint of any of them serves every Auto class (trust_remote_code).
    remote_code_auto_map = {
        "AutoModel": "modeling_haplotype_dss.HaplotypeDSSModel",
        "AutoModelForMaskedLM": "modeling_haplotype_dss.HaplotypeDSSForMaskedLM",
        "AutoModelForSequenceClassification": "modeling_haplotype_dss.HaplotypeDSSForExpressionRegression",
    }
    # Set by `import genomic_models`: writes the model card (README.md) beside the weights. None under remote code.
    model_card_writer = None
    # Set by `import genomic_models`: writes `config.custom_pipelines` and copies the pipeline modules of the tasks
    # this model type serves beside the weights (genomic_models.pipelines.write_pipelines). None under remote code.
    pipeline_writer = None

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        if self._auto_class is not None:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **self.remote_code_auto_map}
        if self.pipeline_writer is not None:
            self.pipeline_writer(save_directory, is_main_process=kwargs.get("is_main_process", True))
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.model_card_writer is not None and kwargs.get("is_main_process", True):
            self.model_card_writer(save_directory)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default layer initialisation, as the original used, and DSS's own for the kernels."""
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight.shape[1] * (module.weight.shape[2] if module.weight.dim() == 3 else 1)
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=1.0)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm1d)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm1d):
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, HaplotypeDSSKernel):
            state_size = module.Lambda.shape[0]
            if self.config.lambda_init == "hippo_skew_pos_imag":
                lambda_ = hippo_skew_eigenvalues(state_size).to(torch.complex64)
            else:
                lambda_ = torch.randn(state_size, dtype=torch.complex64)
            init.copy_(module.Lambda, torch.view_as_real(lambda_))
            log_dt_min, log_dt_max = math.log(self.config.dt_min), math.log(self.config.dt_max)
            log_dt = log_dt_min + torch.rand(module.log_dt.shape[0]) * (log_dt_max - log_dt_min)
            init.copy_(module.log_dt, log_dt[:, None].expand(-1, 2))
            init.normal_(module.W)
        elif isinstance(module, HaplotypeDSSMixer):
            init.normal_(module.D)
        elif isinstance(module, HaplotypeDSSExpressionPooler):
            for parameter in (module.query, module.position_weight):
                if parameter is not None:
                    init.zeros_(parameter)
        elif isinstance(module, HaplotypeDSSExpressionReadout):
            bound = 1 / math.sqrt(module.weight.shape[-1])
            init.uniform_(module.weight, -bound, bound)
            init.zeros_(module.bias)


@dataclass
class HaplotypeDSSModelOutput(BaseModelOutput):
    """`last_hidden_state` is (batch, length, hidden_size): the per-variant embedding (the original's seq_embedding)."""


class HaplotypeDSSModel(HaplotypeDSSPreTrainedModel):
    """The network without a head: per-position embeddings of a haplotype chunk."""

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__(config)
        self.embeddings = HaplotypeDSSEmbeddings(config)
        self.encoder = HaplotypeDSSEncoder(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        gene_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> HaplotypeDSSModelOutput | tuple:
        r"""
        input_ids: (batch, length) token ids from [`HaplotypeTokenizer`]: R=0, A=1, N=2, [PAD], [MASK].
        gene_ids: (batch,) index of each chunk's gene in `config.gene_vocab`.
        attention_mask: (batch, length), 1 on variants and 0 on padding.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        pad_mask = _pad_mask(attention_mask, self.config)
        hidden_states = _apply_pad_mask(self.embeddings(input_ids, gene_ids, attention_mask), pad_mask)
        hidden_states, all_hidden_states = self.encoder(hidden_states, pad_mask, output_hidden_states)
        output = HaplotypeDSSModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)
        return output if return_dict else output.to_tuple()


class HaplotypeDSSForMaskedLM(HaplotypeDSSPreTrainedModel):
    """Masked haplotype modelling: a k=15 convolution from embeddings to R/A/N logits at every position."""

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__(config)
        self.haplotype_dss = HaplotypeDSSModel(config)
        self.head = nn.Conv1d(
            config.hidden_size,
            config.num_allele_classes,
            kernel_size=config.head_kernel_size,
            padding=config.head_kernel_size // 2,
        )
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor,
        gene_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> MaskedLMOutput | tuple:
        r"""
        labels: (batch, length) letter ids (0..num_allele_classes-1) at the positions to score, -100 elsewhere.
        num_items_in_batch: number of scored positions over the whole (accumulated, all-rank) batch; Trainer passes it
            so that the loss is exactly the mean over scored positions.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.haplotype_dss(
            input_ids, gene_ids=gene_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states
        )
        logits = self.head(outputs.last_hidden_state.transpose(1, 2)).transpose(1, 2)
        loss = None
        if labels is not None:
            flat_logits, flat_labels = logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1)
            if num_items_in_batch is None:
                loss = F.cross_entropy(flat_logits, flat_labels, ignore_index=-100)
            else:
                loss = F.cross_entropy(flat_logits, flat_labels, ignore_index=-100, reduction="sum")
                loss = loss / num_items_in_batch
        output = MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return output if return_dict else output.to_tuple()


class HaplotypeDSSForExpressionRegression(HaplotypeDSSPreTrainedModel):
    """Gene expression of a person from the two haplotypes of a gene's chunk: the lm-eQTL finetuning head.

    Each haplotype runs through the network; its per-variant embeddings are pooled (`config.expression_pooling`),
    the two haplotype vectors are combined (`config.haplotype_combination`, default the sum, additive like an allele
    dosage) and a linear readout per gene (`config.expression_readout`) gives `config.num_labels` values.

    It is registered as `AutoModelForSequenceClassification` with `problem_type="regression"`, the transformers
    convention for a sequence-level regression head: the loss is the mean squared error. Classification problem types
    are refused. Call [`freeze_base_model`] to keep the pretrained layers fixed and finetune only the last ones.
    """

    def __init__(self, config: HaplotypeDSSConfig):
        super().__init__(config)
        if config.problem_type is None:
            config.problem_type = "regression"
        if config.problem_type != "regression":
            raise ValueError(
                f"HaplotypeDSSForExpressionRegression predicts expression values (problem_type='regression'); "
                f"got problem_type={config.problem_type!r}"
            )
        self.haplotype_dss = HaplotypeDSSModel(config)
        self.pooler = HaplotypeDSSExpressionPooler(config)
        width = config.hidden_size * (2 if config.haplotype_combination == "concat" else 1)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.readout = HaplotypeDSSExpressionReadout(config, width)
        self.post_init()

    def freeze_base_model(self, num_trainable_layers: int = 0, train_gene_embeddings: bool = False) -> list[str]:
        """Freeze the stem, residual blocks and all DSS layers but the last `num_trainable_layers`.

        The pooler and readout stay trainable. Frozen BatchNorm layers keep their pretrained running statistics in
        training mode too (see `train`). Returns the names of the frozen parameters.
        """
        layers = self.haplotype_dss.encoder.layers
        if not 0 <= num_trainable_layers <= len(layers):
            raise ValueError(f"num_trainable_layers must be in [0, {len(layers)}], got {num_trainable_layers}")
        trainable = {f"encoder.layers.{index}." for index in range(len(layers) - num_trainable_layers, len(layers))}
        if train_gene_embeddings:
            trainable.add("embeddings.gene_embeddings.")
        frozen = []
        for name, parameter in self.haplotype_dss.named_parameters():
            keep = any(name.startswith(prefix) for prefix in trainable)
            parameter.requires_grad_(keep)
            if not keep:
                frozen.append(f"{self.base_model_prefix}.{name}")
        self.train(self.training)
        return frozen

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            for module in self.haplotype_dss.modules():
                if isinstance(module, nn.BatchNorm1d) and not any(p.requires_grad for p in module.parameters()):
                    module.eval()
        return self

    def forward(
        self,
        input_ids: torch.LongTensor,
        gene_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> SequenceClassifierOutput | tuple:
        r"""
        input_ids: (batch, 2, length) both haplotypes of each (person, gene), or (batch, length) a single haplotype.
        gene_ids: (batch,) index of each chunk's gene in `config.gene_vocab`.
        attention_mask: same shape as `input_ids`, 1 on variants and 0 on padding.
        labels: (batch,) or (batch, num_labels) expression values (standardised per gene in training).
        num_items_in_batch: number of label values over the whole (accumulated, all-rank) batch; Trainer passes it
            so that the loss is exactly the mean squared error over them.

        `hidden_states`, when asked for, are those of the flattened (batch * haplotypes) sequences.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if input_ids.dim() == 2:
            input_ids = input_ids[:, None]
            attention_mask = attention_mask[:, None] if attention_mask is not None else None
        batch, copies, length = input_ids.shape
        if self.config.haplotype_combination == "concat" and copies != 2:
            raise ValueError(f"haplotype_combination='concat' needs both haplotypes (batch, 2, length); got {copies}")
        flat_genes = gene_ids.repeat_interleave(copies) if gene_ids is not None else None
        flat_mask = attention_mask.reshape(batch * copies, length) if attention_mask is not None else None
        outputs = self.haplotype_dss(
            input_ids.reshape(batch * copies, length),
            gene_ids=flat_genes,
            attention_mask=flat_mask,
            output_hidden_states=output_hidden_states,
        )
        pooled = self.pooler(outputs.last_hidden_state, flat_mask, flat_genes).view(batch, copies, -1)
        if self.config.haplotype_combination == "sum":
            combined = pooled.sum(1)
        elif self.config.haplotype_combination == "mean":
            combined = pooled.mean(1)
        else:
            combined = pooled.reshape(batch, -1)
        logits = self.readout(self.dropout(combined), gene_ids)
        loss = None
        if labels is not None:
            squared = (logits.float() - labels.float().reshape(logits.shape)) ** 2
            loss = squared.mean() if num_items_in_batch is None else squared.sum() / num_items_in_batch
        output = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return output if return_dict else output.to_tuple()


__all__ = [
    "HaplotypeDSSPreTrainedModel",
    "HaplotypeDSSModel",
    "HaplotypeDSSForMaskedLM",
    "HaplotypeDSSForExpressionRegression",
    "HaplotypeDSSModelOutput",
    "hippo_skew_eigenvalues",
]
