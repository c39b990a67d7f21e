"""The distributed roles (docs/distributed.md): ``engine`` publishes a shard's events on the bus;
``recorder``, ``analytics`` and the API's hub feed consume them. Thin assemblies of the parts;
the CLI entry points are in ``cli/roles.py``."""
