"""Checkpoint formats: detection, conversion round trips, metadata, and every refusal."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from dav2_ros.model import DepthAnythingV2
from dav2_ros.model.checkpoints import (
    CheckpointError,
    ModelMeta,
    default_checkpoint,
    infer_encoder,
    load_model,
    save_hf_model,
    save_model,
)
from dav2_ros.model.formats import official_to_hf
from dav2_ros.model.random_weights import randomize_weights_


@pytest.fixture(scope="module")
def tiny():
    """A ViT-Tiny student (5 M parameters): the official layout, random but fixed."""
    return randomize_weights_(DepthAnythingV2("vitt", "metric", 20.0), seed=2).eval()


@pytest.fixture
def official_pth(tmp_path, tiny):
    path = tmp_path / "depth_anything_v2_vitt.pth"
    torch.save(tiny.state_dict(), path)
    return path


def assert_same_tensors(model, reference):
    got, expected = model.state_dict(), reference.state_dict()
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


def test_official_to_own_to_hf_round_trip_keeps_tensors_and_metadata(tmp_path, tiny, official_pth):
    first = load_model(official_pth, depth_type="metric", max_depth=20.0)
    assert first.meta.format == "official" and first.meta.encoder == "vitt"
    assert_same_tensors(first.model, tiny)

    meta = ModelMeta(
        encoder="vitt",
        depth_type="metric",
        max_depth=20.0,
        input_size=266,
        provenance={"teacher": "vitb", "steps": 1000},
        metrics={"abs_rel": 0.12},
    )
    written = save_model(first.model, meta, tmp_path / "own" / "student")
    assert written == tmp_path / "own" / "student.safetensors"
    assert (tmp_path / "own" / "student.json").is_file()
    own = load_model(written)
    assert own.meta.format == "dav2"
    assert (own.meta.input_size, own.meta.max_depth) == (266, 20.0)
    assert own.meta.provenance == meta.provenance and own.meta.metrics == meta.metrics
    assert_same_tensors(own.model, tiny)

    save_hf_model(own.model, tmp_path / "hf")
    hf = load_model(tmp_path / "hf")
    assert (hf.meta.format, hf.meta.depth_type, hf.meta.max_depth) == ("hf", "metric", 20.0)
    assert_same_tensors(hf.model, tiny)


def test_loaded_model_is_ready_for_inference(official_pth):
    model = load_model(official_pth).model
    assert not model.training
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 126, 126)).shape == (1, 126, 126)


def test_own_format_accepts_the_stem_or_the_json(tmp_path, tiny):
    save_model(tiny, ModelMeta("vitt", "metric", 20.0), tmp_path / "m.safetensors")
    for path in (tmp_path / "m", tmp_path / "m.json", tmp_path / "m.safetensors"):
        assert load_model(path).meta.source == str(tmp_path / "m.safetensors")


@pytest.mark.parametrize(
    ("name", "depth_type", "max_depth"),
    [
        ("depth_anything_v2_metric_hypersim_vitt.pth", "metric", 20.0),
        ("depth_anything_v2_metric_vkitti_vitt.pth", "metric", 80.0),
        ("depth_anything_v2_vitt.pth", "relative", 20.0),
    ],
)
def test_depth_type_of_official_files_comes_from_the_file_name(
    tmp_path, official_pth, name, depth_type, max_depth
):
    path = official_pth.rename(tmp_path / name)
    meta = load_model(path).meta
    assert (meta.depth_type, meta.max_depth) == (depth_type, max_depth)
    assert load_model(path).model.depth_type == depth_type


def test_arguments_override_the_file_name(tmp_path, official_pth):
    path = official_pth.rename(tmp_path / "depth_anything_v2_metric_vkitti_vitt.pth")
    assert load_model(path, max_depth=50.0).meta.max_depth == 50.0
    assert load_model(path, depth_type="relative").meta.depth_type == "relative"


def test_metric_without_known_max_depth_is_refused(tmp_path, official_pth):
    path = official_pth.rename(tmp_path / "my_metric_student.pth")
    with pytest.raises(CheckpointError, match=r"my_metric_student\.pth.*--max-depth"):
        load_model(path)
    assert load_model(path, max_depth=10.0).meta.max_depth == 10.0


@pytest.mark.parametrize("encoder", ["vits", "vitb", "vitl", "vitg", "vitt", "vitt6"])
def test_encoder_is_inferred_from_tensor_shapes(encoder):
    with torch.device("meta"):
        state = DepthAnythingV2(encoder).state_dict()
    assert infer_encoder(state).name == encoder


def test_code_carrying_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload_ran"

    class Payload:
        def __init__(self, target):
            self.target = str(target)

        def __reduce__(self):
            return (exec, (f"open({self.target!r}, 'w').write('pwned')",))

    evil = tmp_path / "depth_anything_v2_vits.pth"
    torch.save({"pretrained.cls_token": torch.zeros(1, 1, 384), "x": Payload(marker)}, evil)

    with pytest.raises(CheckpointError, match=r"depth_anything_v2_vits\.pth.*run code"):
        load_model(evil)
    assert not marker.exists()

    # The payload is live: an unsafe load would have run it (so the check above means something).
    control = tmp_path / "control.pth"
    torch.save({"x": Payload(tmp_path / "control_ran")}, control)
    torch.load(control, weights_only=False)
    assert (tmp_path / "control_ran").read_text() == "pwned"


def test_truncated_official_file_is_refused(tmp_path, official_pth):
    data = official_pth.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth.*truncated or corrupt"):
        load_model(cut)


def test_truncated_own_format_is_refused(tmp_path, tiny):
    written = save_model(tiny, ModelMeta("vitt", "metric", 20.0), tmp_path / "m")
    data = written.read_bytes()
    written.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match=r"m\.safetensors.*truncated or corrupt"):
        load_model(written)


def test_random_bytes_are_refused(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match=r"junk\.pth: not a PyTorch checkpoint") as caught:
        load_model(junk)
    assert "run code" not in str(caught.value)


def test_a_pickle_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(CheckpointError, match=r"list\.pth: expected a state dict.*list"):
        load_model(path)


def test_training_checkpoint_wrappers_are_unwrapped(tmp_path, tiny):
    path = tmp_path / "ddp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in tiny.state_dict().items()}}, path)
    assert_same_tensors(load_model(path, depth_type="metric", max_depth=20.0).model, tiny)


def _drop_last_bias(state):
    del state["depth_head.scratch.output_conv2.2.bias"]


def _add_extra(state):
    state["depth_head.extra.weight"] = torch.zeros(2)


def _shrink_pos_embed(state):
    state["pretrained.pos_embed"] = torch.zeros(1, 257, 192)  # a 16x16 grid, not 37x37


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop_last_bias, r"1 missing tensors.*output_conv2\.2\.bias"),
        (_add_extra, r"1 unexpected tensors.*depth_head\.extra"),
        (_shrink_pos_embed, r"wrong shape.*pos_embed is \(1, 257, 192\)"),
    ],
)
def test_incomplete_or_misshapen_files_are_refused_naming_the_tensors(
    tmp_path, tiny, edit, message
):
    state = dict(tiny.state_dict())
    edit(state)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"edited\.pth.*" + message):
        load_model(path)


def test_encoder_argument_that_contradicts_the_tensors_is_refused(official_pth):
    with pytest.raises(CheckpointError, match=r"vitt\.pth.*'vits'.*embed 192.*fit vitt"):
        load_model(official_pth, encoder="vits")


def test_unknown_shapes_are_refused_with_the_known_encoders(tmp_path):
    from dav2_ros.model import EncoderSpec

    odd = EncoderSpec("odd", 96, 2, 2, 16, (8, 16, 32, 96), (0, 1, 1, 1))
    path = tmp_path / "odd.pth"
    torch.save(DepthAnythingV2(odd).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"odd\.pth: no known encoder.*embed 96.*vits"):
        load_model(path)


def _claim_other_encoder(document):
    document["encoder"] = "vitt6"
    del document["encoder_spec"]


def _claim_other_heads(document):
    document["encoder_spec"]["num_heads"] = 6


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_claim_other_encoder, r"m\.safetensors.*'vitt6'.*12 blocks"),  # the tensors say 12
        (_claim_other_heads, r"m\.json.*other shapes"),  # vitt is registered with 3 heads
    ],
)
def test_own_json_that_disagrees_with_the_tensors_or_registry_is_refused(
    tmp_path, tiny, edit, message
):
    written = save_model(tiny, ModelMeta("vitt", "metric", 20.0), tmp_path / "m")
    json_path = tmp_path / "m.json"
    document = json.loads(json_path.read_text())
    edit(document)
    json_path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=message):
        load_model(written)


def test_unregistered_student_loads_from_its_own_json(tmp_path):
    from dav2_ros.model import EncoderSpec

    spec = EncoderSpec("unregistered-s", 96, 2, 2, 16, (8, 16, 32, 96), (0, 1, 1, 1))
    model = randomize_weights_(DepthAnythingV2(spec, "relative"), seed=4)
    save_model(model, ModelMeta("unregistered-s", "relative", 20.0), tmp_path / "s")
    loaded = load_model(tmp_path / "s")
    assert loaded.model.spec == spec
    assert_same_tensors(loaded.model, model)


def test_hf_tensors_without_config_are_refused(tmp_path, tiny):
    path = tmp_path / "model.safetensors"
    save_file(official_to_hf(tiny.state_dict()), str(path))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*no config\.json"):
        load_model(path)


def test_hf_directory_without_weights_is_refused(tmp_path, tiny):
    save_hf_model(tiny, tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"hf: no model\.safetensors"):
        load_model(tmp_path / "hf")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothing\.pth: no such checkpoint"):
        load_model(tmp_path / "nothing.pth")


def test_official_licences_are_recorded(tmp_path):
    with torch.device("meta"):
        small = DepthAnythingV2("vits")
    # Real tensors are needed on disk; a zero-filled copy of the small model is enough.
    state = {k: torch.zeros(v.shape) for k, v in small.state_dict().items()}
    path = tmp_path / "depth_anything_v2_vits.pth"
    torch.save(state, path)
    assert load_model(path).meta.provenance["licence"] == "Apache-2.0"


def test_default_checkpoint_says_how_to_get_one(tmp_path, tiny):
    with pytest.raises(CheckpointError, match=r"make weights.*--checkpoint"):
        default_checkpoint(tmp_path)
    save_model(tiny, ModelMeta("vitt", "metric", 20.0), tmp_path / "student")
    assert default_checkpoint(tmp_path) == tmp_path / "student.safetensors"
    shutil.copy(tmp_path / "student.safetensors", tmp_path / "other.safetensors")
    shutil.copy(tmp_path / "student.json", tmp_path / "other.json")
    with pytest.raises(CheckpointError, match="several models"):
        default_checkpoint(tmp_path)


def test_save_model_refuses_metadata_that_contradicts_the_model(tmp_path, tiny):
    with pytest.raises(CheckpointError, match="depth_type 'relative'"):
        save_model(tiny, ModelMeta("vitt", "relative", 20.0), tmp_path / "m")
    assert not (tmp_path / "m.safetensors").exists()


def test_hub_style_config_with_omitted_defaults_loads(tmp_path, tiny):
    """Hub config.json files leave transformers' defaults out (e.g. num_hidden_layers)."""
    save_hf_model(tiny, tmp_path / "hub")
    config_path = tmp_path / "hub" / "config.json"
    config = json.loads(config_path.read_text())
    for key in ("depth_estimation_type", "max_depth"):  # relative releases omit both
        del config[key]
    backbone = config["backbone_config"]
    for key in ("num_hidden_layers", "mlp_ratio", "layerscale_value", "use_swiglu_ffn"):
        del backbone[key]
    backbone["out_features"] = ["stage3", "stage6", "stage9", "stage12"]
    config.update(backbone=None, use_pretrained_backbone=False, torch_dtype="float32")
    config_path.write_text(json.dumps(config))

    loaded = load_model(tmp_path / "hub")
    assert (loaded.meta.encoder, loaded.meta.depth_type) == ("vitt", "relative")
    assert_same_tensors(loaded.model, tiny)


def test_canonical_focal_length_round_trips_and_marks_the_format_version(tmp_path, tiny):
    canonical = ModelMeta("vitt", "metric", 20.0, 168, canonical_focal_px=168.0)
    save_model(tiny, canonical, tmp_path / "canonical")
    document = json.loads((tmp_path / "canonical.json").read_text())
    # Version 3: a reader that would ignore the record refuses the file instead.
    assert (document["canonical_focal_px"], document["format_version"]) == (168.0, 3)
    assert load_model(tmp_path / "canonical").meta.canonical_focal_px == 168.0
    save_model(tiny, ModelMeta("vitt", "metric", 20.0, 168), tmp_path / "plain")
    document = json.loads((tmp_path / "plain.json").read_text())
    assert "canonical_focal_px" not in document and document["format_version"] == 1
    assert load_model(tmp_path / "plain").meta.canonical_focal_px is None
    document.update(format_version=4)
    (tmp_path / "plain.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="format_version 4 is newer"):
        load_model(tmp_path / "plain")


@pytest.mark.parametrize("value", [0, -5.0, "wide", float("inf")])
def test_a_canonical_focal_length_that_is_not_positive_is_refused(tmp_path, tiny, value):
    save_model(tiny, ModelMeta("vitt", "metric", 20.0, canonical_focal_px=168.0), tmp_path / "m")
    document = json.loads((tmp_path / "m.json").read_text())
    document["canonical_focal_px"] = value
    (tmp_path / "m.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"m\.json: canonical_focal_px must be .* > 0"):
        load_model(tmp_path / "m")
    with pytest.raises(CheckpointError, match="canonical_focal_px"):
        save_model(tiny, ModelMeta("vitt", "metric", 20.0, canonical_focal_px=-1.0), tmp_path / "n")
    relative = DepthAnythingV2("vitt", "relative")
    with pytest.raises(CheckpointError, match="relative model"):
        save_model(
            relative, ModelMeta("vitt", "relative", 20.0, canonical_focal_px=168.0), tmp_path / "r"
        )
