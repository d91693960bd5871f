"""Training-time behaviour: landscape batches with portrait samples, symmetrized batches,
DUSt3R -> Align3R initialisation, and the input checks."""

from __future__ import annotations

import pytest
import torch

from align3r.errors import CheckpointError, InputError
from align3r.model import Align3RNet, FrameFeatures, init_align3r_from_dust3r, preset
from align3r.model.checkpoints.pth import read_official_pth
from align3r.model.state_dict import official_to_native
from align3r.train import symmetrize_batch

OUTPUTS = ("pts3d1", "conf1", "pts3d_in_other_view2", "conf2")
TOL = 1e-4


@pytest.fixture(scope="module")
def training_net(official_net):
    """Tiny A with the training patch embedding and landscape-only heads, official weights."""
    inference = official_net("a3r_tiny_a")
    net = Align3RNet(inference.config.for_training()).eval()
    net.load_state_dict(inference.state_dict())
    return net


def _landscape_layout(view: dict) -> dict:
    """A portrait view stored the way training batches store it (transposed to landscape)."""
    return {"img": view["img"].transpose(-1, -2), "true_shape": view["true_shape"],
            "prior_pts3d": view["prior_pts3d"].transpose(1, 2)}


def _transposed(ref: dict) -> dict:
    return {k: torch.from_numpy(v).transpose(1, 2) for k, v in ref.items()}


def test_portrait_sample_in_landscape_batch_equals_inference_forward(training_net, case, rel_err, outputs_of):
    c = case("a3r_tiny_a", "portrait_96x64_b1")
    v1, v2 = c.views()
    ours = outputs_of(training_net, _landscape_layout(v1), _landscape_layout(v2))
    expected = _transposed({k: c[k] for k in OUTPUTS})  # the reference transposes portrait outputs back
    for key in OUTPUTS:
        assert ours[key].shape[1:3] == (64, 96)
        assert rel_err(ours[key], expected[key].numpy()) < TOL, key


def test_mixed_orientation_batch(training_net, case, rel_err, outputs_of):
    land, port = case("a3r_tiny_a", "landscape_64x96_b1"), case("a3r_tiny_a", "portrait_96x64_b1")
    views = []
    for k in (1, 2):
        lv, pv = land.view(k), _landscape_layout(port.view(k))
        views.append({key: torch.cat((lv[key], pv[key])) for key in lv})
    ours = outputs_of(training_net, *views)
    expected_port = _transposed({k: port[k] for k in OUTPUTS})
    for key in OUTPUTS:
        assert rel_err(ours[key][:1], land[key]) < TOL, key
        assert rel_err(ours[key][1:], expected_port[key].numpy()) < TOL, key
    # The training layout needs landscape tensors.
    with pytest.raises(InputError, match="landscape"):
        training_net(port.view(1), port.view(2))


def test_symmetrized_batch_encodes_each_frame_once(official_net, case, rel_err, outputs_of):
    net, c = official_net("a3r_tiny_a"), case("a3r_tiny_a", "square_64x64_b2")
    v1, v2 = c.views()
    # Training interleaves each pair with its swap: (a, b), (b, a), (c, d), (d, c).
    sym1 = {k: torch.stack((v1[k], v2[k]), 1).flatten(0, 1) for k in v1}
    sym2 = {k: torch.stack((v2[k], v1[k]), 1).flatten(0, 1) for k in v1}
    names1, names2 = ["a", "b", "c", "d"], ["b", "a", "d", "c"]
    seen = []
    hook = net.patch_embed.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[0]))
    try:
        shortcut = outputs_of(net, dict(sym1, instance=names1), dict(sym2, instance=names2), symmetrized=True)
        full = outputs_of(net, sym1, sym2)
    finally:
        hook.remove()
    assert seen == [4, 8]  # 4 distinct frames encoded once vs 8 views
    for key in OUTPUTS:
        assert rel_err(shortcut[key], full[key].numpy()) < 1e-5, key
        assert rel_err(shortcut[key][::2], c[key]) < TOL, key


def test_the_explicit_symmetrized_path_is_what_the_instance_detection_chose(official_net, case, rel_err, outputs_of):
    """``symmetrized=True`` computes exactly what the network computed when it detected the swap
    from the ``instance`` names (official ``dust3r/utils/misc.py``, ``is_symmetrized``; which batches
    the trainer flags is tested in ``tests/train/test_trainer.py``): the shortcut is taken only when
    asked, names are ignored."""
    net, c = official_net("a3r_tiny_a"), case("a3r_tiny_a", "square_64x64_b2")
    v1, v2 = c.views()
    v1, v2 = dict(v1, instance=["a", "c"]), dict(v2, instance=["b", "d"])
    sym1, sym2 = symmetrize_batch(v1, v2)
    seen = []
    hook = net.patch_embed.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[0]))
    try:
        explicit = outputs_of(net, sym1, sym2, symmetrized=True)
        # the detection's shortcut, spelled out: distinct frames encoded once, features re-interleaved
        with torch.no_grad():
            frames = net.encode_frames(torch.cat((v1["img"], v2["img"])), torch.cat((v1["true_shape"],
                                       v2["true_shape"])), torch.cat((v1["prior_pts3d"], v2["prior_pts3d"])))
            first, second = frames.split(2)
            order = torch.tensor([0, 2, 1, 3])
            res1, res2 = net.decode_pairs(FrameFeatures.cat([first, second])[order],
                                          FrameFeatures.cat([second, first])[order])
        names_only = outputs_of(net, sym1, sym2)  # instance names alone no longer pick the shortcut
    finally:
        hook.remove()
    assert seen == [4, 4, 8]
    detected = {"pts3d1": res1["pts3d"], "conf1": res1["conf"], "pts3d_in_other_view2": res2["pts3d_in_other_view"],
                "conf2": res2["conf"]}
    for key in OUTPUTS:
        assert torch.equal(explicit[key], detected[key]), key
        assert rel_err(names_only[key], explicit[key].numpy()) < 1e-5, key
    with pytest.raises(InputError, match="even number of pairs"):
        net({k: v[:1] for k, v in v1.items()}, {k: v[:1] for k, v in v2.items()}, symmetrized=True)


def test_dust3r_to_align3r_init(model_dir, case, rel_err, outputs_of):
    state_dict, _ = read_official_pth(model_dir / "a3r_tiny_a.pth")
    dust3r = {k: v for k, v in state_dict.items()
              if not k.startswith(("patch_embed_point_cloud.", "dec_blocks_pc.", "zero_convs."))}
    before = dict(dust3r)
    config = preset("tiny-a")
    init = init_align3r_from_dust3r(dust3r, config, seed=3)
    assert dust3r.keys() == before.keys() and all(dust3r[k] is before[k] for k in dust3r)  # pure
    net = Align3RNet(config).eval()
    net.load_state_dict(init)  # strict: complete
    assert all(bool((v == 0).all()) for k, v in init.items() if k.startswith("zero_convs."))
    assert init["patch_embed_point_cloud.proj.weight"].abs().sum() > 0
    assert torch.equal(init["dec_blocks_pc.0.attn.qkv.bias"], torch.zeros(3 * 96))
    # Zero injections: the new network is exactly the DUSt3R network, whatever the prior.
    c = case("a3r_tiny_a", "landscape_64x96_b1")
    ours = outputs_of(net, *c.views())
    for key in OUTPUTS:
        assert rel_err(ours[key], c[f"dbg_zeroconvs0_{key}"]) < TOL, key
    again = init_align3r_from_dust3r(dust3r, config, seed=3)
    assert all(torch.equal(again[k], init[k]) for k in init)


def test_croco_style_init_copies_dec_blocks_only(model_dir):
    state_dict, _ = read_official_pth(model_dir / "a3r_tiny_a.pth")
    croco = {k: v for k, v in official_to_native(state_dict).items()
             if not k.startswith(("patch_embed_point_cloud.", "dec_blocks_pc.", "zero_convs.", "dec_blocks2.",
                                  "downstream_head"))}
    croco["prediction_head.weight"] = torch.zeros(768, 96)
    init = init_align3r_from_dust3r(croco, preset("tiny-a"))
    for key in (k for k in croco if k.startswith("dec_blocks.")):
        assert torch.equal(init["dec_blocks2." + key[len("dec_blocks."):]], croco[key])
    assert not any(k.startswith("prediction_head") for k in init)
    assert not any(k.startswith("dec_blocks2_pc") for k in init)
    with pytest.raises(CheckpointError, match="already has a prior branch"):
        init_align3r_from_dust3r(state_dict, preset("tiny-a"))
    with pytest.raises(CheckpointError, match="unknown keys"):
        init_align3r_from_dust3r({**croco, "enc_pos_embed": torch.zeros(3)}, preset("tiny-a"))


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda v: v.pop("prior_pts3d"), "needs the depth prior"),
    (lambda v: v.update(prior_pts3d=v["prior_pts3d"][:, :32]), "must be \\(1, 64, 96, 3\\)"),
    (lambda v: v["prior_pts3d"].__setitem__((0, 0, 0, 0), float("nan")), "NaN"),
    (lambda v: v.update(img=v["img"][..., :90]), "multiple of the patch size 16"),
    (lambda v: v.update(true_shape=torch.tensor([[96, 64]])), "true_shape"),
    (lambda v: v.update(img=v["img"][0]), "\\(B, 3, H, W\\)"),
])
def test_bad_inputs_are_named(official_net, case, edit, fragment):
    c = case("a3r_tiny_a", "landscape_64x96_b1")
    v1, v2 = c.views()
    v1 = {k: t.clone() for k, t in v1.items()}
    edit(v1)
    with pytest.raises(InputError, match=fragment):
        official_net("a3r_tiny_a")(v1, v2)
