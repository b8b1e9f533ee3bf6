"""Code imported by Superset itself (inside its own virtualenv) through the generated
``superset_config.py``; see ``spaces_superset.py``. Nothing here imports
jupyterhub-spaces."""
