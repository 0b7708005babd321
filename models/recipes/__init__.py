"""The documented models: each module registers its recipes in `edgekit.models.recipe.RECIPES`."""
