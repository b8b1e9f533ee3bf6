"""Code Assets and Tasks, the service side.

- :mod:`.codeasset`: content-addressed, immutable versions of code saved from a space;
- :mod:`.schedule`: checks of a Task's schedule and settings;
- :mod:`.engine`: Apache Airflow, the engine that runs Tasks (its configuration, the
  hub's managed services that run it, and the one client of its REST API);
- :mod:`.runs`: what happens when the engine starts and ends a run (the governance
  check, the run's own database credentials, the command, publishing outputs).

The Airflow side (the DAG file, the operator) is :mod:`jupyterhub_spaces.airflow`.
"""
