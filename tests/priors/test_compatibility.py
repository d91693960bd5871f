"""Which prior, and which prior representation, a network wants: the released names' priors, what
`align3r train` recorded, "auto" resolved, contradicting explicit settings warned about; and the
one parser of prior names that ``load_prior`` shares."""

from __future__ import annotations

import json
import logging

import pytest

from align3r.errors import InputError
from align3r.model.checkpoints.read import read_checkpoint
from align3r.model.registry import REGISTRY
from align3r.priors.compatibility import (
    PRIOR_OF_MODEL,
    effective_prior_input,
    prior_family,
    resolve_prior_input,
    resolve_prior_name,
    training_metadata,
)
from align3r.priors.registry import parse_prior_name

RECORDED = {"prior": "depthanything", "prior_input": "depthmap"}


def test_the_recorded_prior_is_read_back_and_resolves_auto(finetuned_net_dir, tiny_net_dir, caplog):
    finetuned = finetuned_net_dir
    assert json.loads((finetuned / "config.json").read_text())["training"] == RECORDED
    assert read_checkpoint(finetuned).training == RECORDED
    assert training_metadata(finetuned) == training_metadata(str(finetuned / "model.safetensors")) == RECORDED
    assert training_metadata(tiny_net_dir) == {}  # not an align3r train output: unknown
    assert resolve_prior_name(str(finetuned), "auto") == "depthanything"
    assert resolve_prior_name(str(tiny_net_dir), "auto") == "depthpro"  # unknown: Depth Pro, as before
    assert resolve_prior_name("align3r-depthanything", "auto") == "depthanything"
    assert effective_prior_input(str(finetuned), "auto") == "depthmap"
    assert effective_prior_input(str(tiny_net_dir), "auto") == "pointmap"
    with caplog.at_level(logging.WARNING, logger="align3r.priors.compatibility"):
        assert resolve_prior_input(str(finetuned), "auto", "auto") == "depthmap"
        assert not caplog.text
        assert resolve_prior_input(str(finetuned), "pointmap", "depthpro") == "pointmap"  # explicit: kept, warned
    assert "prior_input=pointmap, but model" in caplog.text and "with depthmap priors" in caplog.text
    assert "prior=depthpro, but model" in caplog.text and "with depthanything priors" in caplog.text


def test_the_released_networks_record_their_prior():
    assert PRIOR_OF_MODEL == {"align3r-depthpro": "depthpro", "align3r-depthanything": "depthanything",
                              "dust3r-512-dpt": "none", "dust3r-224-linear": "none", "monst3r": "none"}
    assert all((entry.prior != "none") == entry.with_prior for entry in REGISTRY.values())


@pytest.mark.parametrize(("name", "family"), [
    ("depthpro", "depthpro"), ("depthanything", "depthanything"), ("depthanything-small", "depthanything"),
    ("official-cache:depthpro", "depthpro"), ("official-cache:depthanything:/data/frames", "depthanything"),
    ("external:/data/depth", None), ("none", None), ("auto", None), ("something-else", None),
])
def test_prior_names_have_one_parser(name, family):
    assert prior_family(name) == family


def test_the_parser_splits_every_form_and_refuses_others():
    assert parse_prior_name("depthanything").size == "large"
    assert parse_prior_name("DepthAnything_Small").size == "small"  # as load_prior always accepted
    parsed = parse_prior_name("official-cache:depthanything:/data/frames")
    assert (parsed.kind, parsed.model, parsed.folder) == ("official-cache", "depthanything", "/data/frames")
    assert parse_prior_name("external:/d").folder == "/d"
    for bad in ("external:", "official-cache:", "depthpro:x", "midas"):
        with pytest.raises(InputError, match="unknown depth prior"):
            parse_prior_name(bad)
