"""Jupyter server settings of the sandbox image.

In a sandbox session the browser sees only the Guacamole desktop; JupyterLab runs
inside it, shown by the kiosk browser, so it listens on the pod's loopback only.
"""

c = get_config()  # noqa: F821

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.open_browser = False
