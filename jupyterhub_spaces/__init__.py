"""jupyterhub-spaces: governed, collaborative data Spaces for JupyterHub."""

__version__ = "0.1.0.dev0"
