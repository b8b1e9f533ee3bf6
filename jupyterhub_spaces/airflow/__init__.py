"""The Airflow side of jupyterhub-spaces: imported by Airflow's own processes.

It imports nothing of the hub or the spaces service (only the standard library and
Airflow), and talks to the spaces service's API with the token of the JupyterHub
service it runs as, so it works wherever Airflow runs:

- :mod:`.dags`: builds one DAG per Task from the definitions the service gives
  (the DAGs folder holds one fixed file calling it; no user code is ever imported);
- :mod:`.operator`: the one operator of those DAGs: asks the service before every run
  (refused runs fail without retry), runs the command the service hands back in its
  own process, and reports the end (the service revokes the run's credentials and
  publishes its outputs);
- :mod:`.component`: starts an Airflow component after its database is migrated;
- :mod:`.spec`: the strict schema of YAML DAGs (also used by the service to check a
  space's files), and the dag-factory configuration of a checked one;
- :mod:`.yamldags` and :mod:`.steps`: every space's YAML DAGs built by dag-factory
  with our three step operators only (a second fixed DAG file calls it);
- :mod:`.secrets_backend`: a run reads its own space's connections and variables,
  with the run's own credential.
"""
