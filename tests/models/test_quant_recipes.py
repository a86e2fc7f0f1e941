"""What each layer becomes under each recipe, and the option clashes refused."""

from __future__ import annotations

import pytest

from mlx_gen.errors import ConvertError
from mlx_gen.models.quant_recipes import Quant, make_recipe

EXPERT = "model.layers.3.mlp.experts.down_proj"
ROUTER = "model.layers.3.mlp.router"
ATTENTION = "model.layers.3.self_attn.q_proj"


def test_default_is_4_bit_affine_with_an_8_bit_router():
    recipe = make_recipe()
    assert recipe.name == "affine-4"
    assert recipe.for_path(ATTENTION) == Quant("affine", 4, 64)
    assert recipe.for_path(EXPERT) == Quant("affine", 4, 64)
    assert recipe.for_path(ROUTER) == Quant("affine", 8, 64)


def test_mxfp4_q8_is_the_community_gpt_oss_layout():
    recipe = make_recipe(recipe="mxfp4-q8")
    assert recipe.for_path(EXPERT) == Quant("mxfp4", 4, 32)
    assert recipe.for_path(ATTENTION) == Quant("affine", 8, 64)
    assert recipe.for_path("lm_head") == Quant("affine", 8, 64)
    assert str(recipe.for_path(EXPERT)) == "mxfp4 g32"


def test_options_shape_the_uniform_recipes():
    assert make_recipe(bits=8, group_size=32).for_path(EXPERT) == Quant("affine", 8, 32)
    assert make_recipe(mode="mxfp4").for_path(ATTENTION) == Quant("mxfp4", 4, 32)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"recipe": "mxfp4-q8", "group_size": 64}, "sets bits, group size and mode"),
        ({"mode": "mxfp4", "group_size": 64}, "4 bits in groups of 32"),
        ({"bits": 3}, "--bits must be 4 or 8"),
        ({"group_size": 48}, "--group-size must be 32, 64 or 128"),
        ({"mode": "nvfp4"}, "unknown mode 'nvfp4'"),
        ({"recipe": "q2"}, "unknown recipe 'q2'"),
    ],
)
def test_clashing_options_are_refused(options, message):
    with pytest.raises(ConvertError, match=message):
        make_recipe(**options)
