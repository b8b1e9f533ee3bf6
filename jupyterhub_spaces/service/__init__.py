"""The spaces service: the JSON API and the Spaces web app, run as a JupyterHub managed service."""
