"""The shell recipes name modules and configs that exist (a moved module breaks a recipe silently)."""

from __future__ import annotations

import glob
import importlib.util
import os
import re

import pytest

from conftest import REPO

RECIPES = sorted(glob.glob(os.path.join(REPO, "train", "recipes", "*.sh")))


@pytest.mark.parametrize("recipe", RECIPES, ids=os.path.basename)
def test_a_recipe_names_modules_and_configs_that_exist(recipe):
    text = open(recipe, encoding="utf-8").read()
    modules = re.findall(r"python -m ([\w.]+)", text)
    configs = re.findall(r"(train/(?:configs|experiments)/[\w.-]+\.yaml)", text)
    assert modules or configs
    for module in modules:
        assert importlib.util.find_spec(module) is not None, (recipe, module)
    for config in configs:
        assert os.path.isfile(os.path.join(REPO, config)), (recipe, config)
