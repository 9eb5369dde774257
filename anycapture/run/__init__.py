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
- :mod:`.pipeline`: ``run_job``, the one path of every run (plain, ``--image-list``,
  ``--resume``, ``--shard``): :mod:`.job` plans a process's share, :mod:`.previous`
  reads and replaces what earlier runs left (checked paths only), :mod:`.publish`
  writes the manifest and the HTML page; :mod:`.model` prepares a model.

Only the light names are imported here; ``render_run`` loads torch-side code.
"""
