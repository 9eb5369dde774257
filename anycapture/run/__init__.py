"""A render run in pieces, one job each.

- :mod:`.maps_file`: one image's maps (:class:`ImageMaps`) and the ``--save-maps``
  file format; :class:`SavedMaps` reads such files as a run's source.
- :mod:`.forward`: the model side: batches -> forward pass -> each image's maps
  (:class:`ModelSource`).
- :mod:`.selection`: the layer, head, token and query choices, per image.
- :mod:`.outdir`: the output directory: lock, folder names, atomic writes.
- :mod:`.manifest`: ``manifest.json`` as typed records.
- :mod:`.maps_check`: a ``--from-maps`` file checked from its headers before loading.
- :mod:`.jobs`: how many drawing workers (``--jobs``).
- :mod:`.render_run`: :class:`RenderRun`, built by ``from_model`` or ``from_maps``.

Only the light names are imported here; ``render_run`` loads torch-side code.
"""
