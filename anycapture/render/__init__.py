"""Renderers: attention maps (numpy) + token layout + input view -> PNG figures.

``paper`` figures (matplotlib) carry titles, colour bars, prefix-token cells and the
query box; ``bare`` figures (Pillow only) are the picture alone at the model's
input resolution, for composing figures and for tests.  Each figure kind is one
module in ``kinds/``, described by a record in the registry (``registry.py``).
"""
