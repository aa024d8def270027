"""Checkpoint-format adapters: pure ``state_dict -> state_dict`` functions.

The model's own parameter names are the official release's (``pretrained.*``,
``depth_head.*``), so the official layout needs no renaming. The Hugging Face
``transformers`` layout is mapped key by key as in dav2-reference.md; q/k/v are
split there and merged here. Both spellings are read: 4.x (hub files:
``attention.attention.query`` … ``attention.output.dense``) and 5.x (``q_proj`` …
``o_proj``). These functions know nothing of files; ``checkpoints`` does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

from dav2_ros.model.sizes import EncoderSpec

StateDict = dict[str, Tensor]

OFFICIAL_PREFIXES = ("pretrained.", "depth_head.")
HF_PREFIXES = ("backbone.", "neck.", "head.")
# A bare DINOv2 encoder (``dinov2_vit{s,b,l,g}14_pretrain.pth``): the official encoder's
# tensors without the ``pretrained.`` prefix and without a head.
DINOV2_PREFIX = "pretrained."
DINOV2_NAMES = (
    "cls_token",
    "pos_embed",
    "mask_token",
    "register_tokens",
    "patch_embed.",
    "blocks.",
    "norm.",
)
_DINOV2_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")

# Official name -> transformers name for everything except the attention and SwiGLU
# tensors (split or merged below). ``{i}`` is a block or stage index kept as is.
_RENAMES: tuple[tuple[str, str], ...] = (
    ("pretrained.cls_token", "backbone.embeddings.cls_token"),
    ("pretrained.mask_token", "backbone.embeddings.mask_token"),
    ("pretrained.pos_embed", "backbone.embeddings.position_embeddings"),
    ("pretrained.patch_embed.proj.", "backbone.embeddings.patch_embeddings.projection."),
    ("pretrained.norm.", "backbone.layernorm."),
    ("pretrained.blocks.{i}.norm1.", "backbone.encoder.layer.{i}.norm1."),
    ("pretrained.blocks.{i}.norm2.", "backbone.encoder.layer.{i}.norm2."),
    ("pretrained.blocks.{i}.ls1.gamma", "backbone.encoder.layer.{i}.layer_scale1.lambda1"),
    ("pretrained.blocks.{i}.ls2.gamma", "backbone.encoder.layer.{i}.layer_scale2.lambda1"),
    ("pretrained.blocks.{i}.mlp.fc1.", "backbone.encoder.layer.{i}.mlp.fc1."),
    ("pretrained.blocks.{i}.mlp.fc2.", "backbone.encoder.layer.{i}.mlp.fc2."),
    ("depth_head.projects.{i}.", "neck.reassemble_stage.layers.{i}.projection."),
    ("depth_head.resize_layers.{i}.", "neck.reassemble_stage.layers.{i}.resize."),
    ("depth_head.scratch.output_conv1.", "head.conv1."),
    ("depth_head.scratch.output_conv2.0.", "head.conv2."),
    ("depth_head.scratch.output_conv2.2.", "head.conv3."),
    *((f"depth_head.scratch.layer{n + 1}_rn.", f"neck.convs.{n}.") for n in range(4)),
    # refinenet{1,2,3,4} (fine to coarse) -> fusion_stage.layers.{3,2,1,0} (coarse first)
    *(
        (f"depth_head.scratch.refinenet{n + 1}.{src}.", f"neck.fusion_stage.layers.{3 - n}.{dst}.")
        for n in range(4)
        for src, dst in (
            ("out_conv", "projection"),
            ("resConfUnit1.conv1", "residual_layer1.convolution1"),
            ("resConfUnit1.conv2", "residual_layer1.convolution2"),
            ("resConfUnit2.conv1", "residual_layer2.convolution1"),
            ("resConfUnit2.conv2", "residual_layer2.convolution2"),
        )
    ),
)


def _template_rules(forward: bool) -> list[tuple[re.Pattern, str]]:
    """Compile ``_RENAMES`` into prefix regexes, official->hf or hf->official."""
    rules = []
    for official, hf in _RENAMES:
        source, target = (official, hf) if forward else (hf, official)
        pattern = re.escape(source).replace(r"\{i\}", r"(?P<i>\d+)")
        rules.append((re.compile("^" + pattern), target))
    return rules


# transformers spellings of one block's attention / FFN tensors (without the block prefix).
_HF_ATTENTION_SPELLINGS = {
    "4.x": {
        "q": "attention.attention.query",
        "k": "attention.attention.key",
        "v": "attention.attention.value",
        "o": "attention.output.dense",
    },
    "5.x": {
        "q": "attention.q_proj",
        "k": "attention.k_proj",
        "v": "attention.v_proj",
        "o": "attention.o_proj",
    },
}
_HF_BLOCK = re.compile(r"backbone\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


class FormatError(ValueError):
    """The tensors do not fit the layout an adapter expects; the message says which."""


def detect_layout(state_dict: Mapping[str, Tensor]) -> str:
    """``"official"`` (also the own format), ``"hf"``, ``"dinov2"`` (a bare encoder) or
    ``"unknown"``, from key prefixes."""
    keys = list(state_dict)
    if keys and all(k.startswith(OFFICIAL_PREFIXES) for k in keys):
        return "official"
    if keys and all(k.startswith(HF_PREFIXES) for k in keys):
        return "hf"
    if "cls_token" in state_dict and all(k.startswith(DINOV2_NAMES) for k in keys):
        return "dinov2"
    return "unknown"


def dinov2_to_official(state_dict: Mapping[str, Tensor]) -> StateDict:
    """DINOv2 encoder tensors -> the official encoder names (``pretrained.*``).

    Chunked checkpoints (``blocks.<chunk>.<block>.*``, DINOv2's FSDP layout) are
    flattened; register tokens are refused: Depth Anything V2 uses DINOv2 without them.
    """
    if "register_tokens" in state_dict:
        raise FormatError(
            "this DINOv2 checkpoint has register tokens (a *_reg variant); Depth Anything V2 "
            "uses DINOv2 without registers (dinov2_vit*14_pretrain.pth)"
        )
    out: StateDict = {}
    for key, tensor in state_dict.items():
        if not key.startswith(DINOV2_NAMES):
            raise FormatError(f"{key!r} is not a DINOv2 encoder tensor name")
        chunked = _DINOV2_CHUNKED_BLOCK.match(key)
        if chunked:
            key = f"blocks.{chunked.group(1)}." + key[chunked.end() :]
        out[DINOV2_PREFIX + key] = tensor
    return out


def unwrap_state_dict(obj: object) -> object:
    """Training checkpoints often nest the weights (``{"model": …}``, DDP's ``module.``)."""
    if isinstance(obj, Mapping):
        for wrapper in ("model", "state_dict"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping) and not any(isinstance(v, Tensor) for v in obj.values()):
                obj = inner
                break
        if obj and all(isinstance(k, str) and k.startswith("module.") for k in obj):
            obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def hf_to_official(state_dict: Mapping[str, Tensor]) -> StateDict:
    """transformers ``DepthAnythingForDepthEstimation`` tensors -> official names.

    Unknown keys are kept under their original name, so that strict loading later
    reports them as unexpected instead of silently dropping them.
    """
    out: StateDict = {}
    pending_qkv: dict[tuple[int, str], dict[str, Tensor]] = {}
    pending_swiglu: dict[tuple[int, str], dict[str, Tensor]] = {}
    for key, tensor in state_dict.items():
        block = _HF_BLOCK.match(key)
        if block:
            index, part, kind = int(block.group(1)), block.group(2), block.group(3)
            role = _attention_role(part)
            if role in ("q", "k", "v"):
                pending_qkv.setdefault((index, kind), {})[role] = tensor
                continue
            if role == "o":
                out[f"pretrained.blocks.{index}.attn.proj.{kind}"] = tensor
                continue
            ffn = _swiglu_role(part)
            if ffn in ("w12", "w3"):
                out[f"pretrained.blocks.{index}.mlp.{ffn}.{kind}"] = tensor
                continue
            if ffn in ("gate", "up"):
                pending_swiglu.setdefault((index, kind), {})[ffn] = tensor
                continue
            if ffn == "down":
                out[f"pretrained.blocks.{index}.mlp.w3.{kind}"] = tensor
                continue
        out[_rename(key, _TO_OFFICIAL)] = tensor
    for (index, kind), parts in pending_qkv.items():
        if set(parts) != {"q", "k", "v"}:
            missing = sorted({"q", "k", "v"} - set(parts))
            raise FormatError(f"block {index}: attention {kind} lacks {missing} (q, k, v expected)")
        # The official qkv Linear stacks q, k, v row-wise.
        out[f"pretrained.blocks.{index}.attn.qkv.{kind}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0
        )
    for (index, kind), parts in pending_swiglu.items():
        if set(parts) != {"gate", "up"}:
            raise FormatError(f"block {index}: SwiGLU {kind} needs gate_proj and up_proj")
        # official w12 output = [gate half (SiLU), up half]
        out[f"pretrained.blocks.{index}.mlp.w12.{kind}"] = torch.cat(
            [parts["gate"], parts["up"]], dim=0
        )
    return out


def official_to_hf(state_dict: Mapping[str, Tensor], spelling: str = "4.x") -> StateDict:
    """Official names -> transformers names (``spelling`` "4.x" as on the hub, or "5.x")."""
    if spelling not in _HF_ATTENTION_SPELLINGS:
        raise ValueError(f"spelling must be one of {sorted(_HF_ATTENTION_SPELLINGS)}")
    names = _HF_ATTENTION_SPELLINGS[spelling]
    block_re = re.compile(r"pretrained\.blocks\.(\d+)\.(attn\.qkv|attn\.proj|mlp\.w12|mlp\.w3)\.")
    out: StateDict = {}
    for key, tensor in state_dict.items():
        block = block_re.match(key)
        if not block:
            out[_rename(key, _TO_HF)] = tensor
            continue
        index, part = block.group(1), block.group(2)
        kind = key.rsplit(".", 1)[1]
        prefix = f"backbone.encoder.layer.{index}."
        if part == "attn.qkv":
            q, k, v = tensor.chunk(3, dim=0)
            out[f"{prefix}{names['q']}.{kind}"] = q.clone()
            out[f"{prefix}{names['k']}.{kind}"] = k.clone()
            out[f"{prefix}{names['v']}.{kind}"] = v.clone()
        elif part == "attn.proj":
            out[f"{prefix}{names['o']}.{kind}"] = tensor
        elif part == "mlp.w12" and spelling == "5.x":
            gate, up = tensor.chunk(2, dim=0)
            out[f"{prefix}mlp.gate_proj.{kind}"] = gate.clone()
            out[f"{prefix}mlp.up_proj.{kind}"] = up.clone()
        elif part == "mlp.w12":
            out[f"{prefix}mlp.weights_in.{kind}"] = tensor
        else:
            out[f"{prefix}mlp.{'down_proj' if spelling == '5.x' else 'weights_out'}.{kind}"] = (
                tensor
            )
    return out


def hf_config(spec: EncoderSpec, depth_type: str, max_depth: float) -> dict:
    """A transformers ``DepthAnythingConfig`` dict (config.json) for these shapes."""
    return {
        "model_type": "depth_anything",
        "architectures": ["DepthAnythingForDepthEstimation"],
        "backbone_config": {
            "model_type": "dinov2",
            "hidden_size": spec.embed_dim,
            "num_hidden_layers": spec.depth,
            "num_attention_heads": spec.num_heads,
            "mlp_ratio": int(spec.mlp_ratio),
            "image_size": spec.pos_grid * spec.patch_size,
            "patch_size": spec.patch_size,
            "layerscale_value": 1.0,
            "use_swiglu_ffn": spec.ffn == "swiglu",
            "layer_norm_eps": 1e-6,
            "apply_layernorm": True,
            "reshape_hidden_states": False,
            "out_indices": [i + 1 for i in spec.tapped_blocks],
        },
        "patch_size": spec.patch_size,
        "reassemble_hidden_size": spec.embed_dim,
        "reassemble_factors": [4, 2, 1, 0.5],
        "neck_hidden_sizes": list(spec.out_channels),
        "fusion_hidden_size": spec.features,
        "head_in_index": -1,
        "head_hidden_size": 32,
        "depth_estimation_type": depth_type,
        # transformers 5.x types max_depth as int (the hub files say 20 / 80)
        "max_depth": _json_number(max_depth) if depth_type == "metric" else 1,
    }


def _json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


# transformers' defaults for what a config.json may leave out: the hub's V2-Small
# file, for one, has no num_hidden_layers. Dinov2Config, then DepthAnythingConfig.
_DINOV2_DEFAULTS = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "mlp_ratio": 4,
    "image_size": 224,
    "patch_size": 14,
    "use_swiglu_ffn": False,
}
_DEFAULT_BACKBONE = {
    "image_size": 518,
    "hidden_size": 384,
    "num_attention_heads": 6,
    "out_indices": [9, 10, 11, 12],
}


def spec_from_hf_config(config: Mapping, name: str = "hf-custom") -> EncoderSpec:
    """The ``EncoderSpec`` a transformers config.json describes (raises FormatError)."""
    try:
        backbone = {**_DINOV2_DEFAULTS, **(config.get("backbone_config") or _DEFAULT_BACKBONE)}
        return EncoderSpec(
            name=name,
            embed_dim=int(backbone["hidden_size"]),
            depth=int(backbone["num_hidden_layers"]),
            num_heads=int(backbone["num_attention_heads"]),
            features=int(config.get("fusion_hidden_size", 64)),
            out_channels=tuple(int(c) for c in config.get("neck_hidden_sizes", (48, 96, 192, 384))),
            tapped_blocks=tuple(int(i) - 1 for i in backbone["out_indices"]),
            ffn="swiglu" if backbone["use_swiglu_ffn"] else "mlp",
            mlp_ratio=float(backbone["mlp_ratio"]),
            patch_size=int(backbone["patch_size"]),
            pos_grid=int(backbone["image_size"]) // int(backbone["patch_size"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FormatError(f"config.json does not describe a Depth Anything model: {exc}") from exc


def shape_signature(state_dict: Mapping[str, Tensor]) -> dict:
    """What the tensors fix about the architecture (official layout).

    Embed dim, block count, FFN kind, DPT ``features`` and ``out_channels``. The
    number of heads and the tapped blocks leave no trace in shapes.
    """
    try:
        embed_dim = int(state_dict["pretrained.cls_token"].shape[-1])
        blocks = {int(m.group(1)) for k in state_dict if (m := _BLOCK_INDEX.match(k))}
        features = int(state_dict["depth_head.scratch.layer1_rn.weight"].shape[0])
        out_channels = tuple(
            int(state_dict[f"depth_head.projects.{i}.weight"].shape[0]) for i in range(4)
        )
    except (KeyError, IndexError) as exc:
        raise FormatError(f"tensor {exc} is missing, so the encoder cannot be inferred") from exc
    ffn = "swiglu" if "pretrained.blocks.0.mlp.w12.weight" in state_dict else "mlp"
    return {
        "embed_dim": embed_dim,
        "depth": len(blocks),
        "ffn": ffn,
        "features": features,
        "out_channels": out_channels,
    }


def spec_signature(spec: EncoderSpec) -> dict:
    return {
        "embed_dim": spec.embed_dim,
        "depth": spec.depth,
        "ffn": spec.ffn,
        "features": spec.features,
        "out_channels": tuple(spec.out_channels),
    }


_BLOCK_INDEX = re.compile(r"pretrained\.blocks\.(\d+)\.")


_TO_HF = _template_rules(forward=True)
_TO_OFFICIAL = _template_rules(forward=False)


def _rename(key: str, rules: list[tuple[re.Pattern, str]]) -> str:
    for pattern, target in rules:
        match = pattern.match(key)
        if match:
            index = match.groupdict().get("i")
            new_prefix = target.replace("{i}", index) if index is not None else target
            return new_prefix + key[match.end() :]
    return key


def _attention_role(part: str) -> str | None:
    for names in _HF_ATTENTION_SPELLINGS.values():
        for role, name in names.items():
            if part == name:
                return role
    return None


def _swiglu_role(part: str) -> str | None:
    return {
        "mlp.weights_in": "w12",
        "mlp.weights_out": "w3",
        "mlp.gate_proj": "gate",
        "mlp.up_proj": "up",
        "mlp.down_proj": "down",
    }.get(part)
